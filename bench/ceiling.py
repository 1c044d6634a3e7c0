"""C, the ceiling: a Flask app that returns a small JSON, served by gunicorn
with the same worker settings as `idp serve` (idp/serving.py)."""

from __future__ import annotations

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/")
def index() -> Response:
    return jsonify(issuer="http://localhost", ok=True)
