"""The published documents: discovery metadata and the JWKS, answered before routing.

Relying parties fetch them often and they change rarely, so a GET or HEAD of
one is answered by a small WSGI layer in front of Flask from bytes serialised
once (the JWKS when the key ring reloads), with a strong ``ETag`` (a
conditional GET gets 304, RFC 9110 §13.1.2), ``Cache-Control`` and the headers
every response of ours carries. Other methods go on to Flask's routes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, Response

from ..state import IDP, idp
from .discovery import discovery_bytes
from .keys import KeyRing

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CACHE_CONTROL = "public, max-age=300"
DISCOVERY_PATHS = ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")
JWKS_PATH = "/jwks.json"


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Document:
        digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()[:18]).decode()
        return cls(body, content_type, f'"{digest}"')

    def headers(self, common: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            ("Cache-Control", CACHE_CONTROL),
            ("Access-Control-Allow-Origin", "*"),
            ("ETag", self.etag),
            *common,
        ]

    def matches(self, if_none_match: str) -> bool:
        """RFC 9110 §13.1.2: weak comparison against each tag, or ``*``."""
        tags = (tag.strip() for tag in if_none_match.split(","))
        return any(tag == "*" or tag.removeprefix("W/") == self.etag for tag in tags)


class PublishedDocuments:
    """WSGI middleware: GET and HEAD of ``documents``' paths, from their loaders."""

    def __init__(
        self,
        app: WSGIApplication,
        documents: dict[str, Callable[[], Document]],
        common_headers: list[tuple[str, str]],
    ) -> None:
        self._app = app
        self._documents = documents
        self._common = common_headers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        load = self._documents.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if load is None or method not in ("GET", "HEAD"):
            return self._app(environ, start_response)
        document = load()
        headers = document.headers(self._common)
        if document.matches(environ.get("HTTP_IF_NONE_MATCH", "")):
            start_response("304 Not Modified", [h for h in headers if h[0] != "Content-Length"])
            return []
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [document.body]


def cached_document(load: Callable[[], bytes], content_type: str) -> Callable[[], Document]:
    """A loader of ``Document`` that hashes the body only when it changes
    (``load`` returns the same bytes object while its own cache holds)."""
    last: tuple[bytes, Document] | None = None

    def document() -> Document:
        nonlocal last
        body = load()
        seen = last
        if seen is None or seen[0] is not body:
            seen = last = (body, Document.of(body, content_type))
        return seen[1]

    return document


def install(app: Flask, common_headers: list[tuple[str, str]]) -> None:
    """Answer the published documents of ``app`` before its routing."""

    made: list[bytes] = []

    def discovery() -> bytes:
        if not made:  # made once (settings do not change while the app runs)
            with app.app_context():
                made.append(discovery_bytes())
        return made[0]

    keyring: KeyRing = app.extensions[IDP].keyring

    def jwks() -> bytes:
        fresh = keyring.fresh_jwks_bytes()
        if fresh is not None:
            return fresh
        with app.app_context():  # the key ring reloads from the database
            return keyring.jwks_bytes()

    discovery_document = cached_document(discovery, "application/json")
    documents = dict.fromkeys(DISCOVERY_PATHS, discovery_document)
    documents[JWKS_PATH] = cached_document(jwks, "application/jwk-set+json")
    app.wsgi_app = PublishedDocuments(app.wsgi_app, documents, common_headers)  # type: ignore[method-assign]


def discovery_response() -> Response:
    """The discovery document as a Flask response (what the layer answers)."""
    return _response(Document.of(discovery_bytes(), "application/json"))


def jwks_response() -> Response:
    return _response(Document.of(idp().keyring.jwks_bytes(), "application/jwk-set+json"))


def _response(document: Document) -> Response:
    response = Response(document.body)
    for name, value in document.headers([]):
        response.headers[name] = value
    return response
