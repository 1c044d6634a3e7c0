"""Authlib wiring: the authorization server, resource protector and endpoints."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from . import server, views

    server.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views.api)
