"""Our error tree and the one handler that renders it.

Browsers get a friendly page, API callers one JSON shape:
``{"error": code, "error_description": text, "fields": {name: problem}}``
(``fields`` only where input fields were at fault), the shape of OAuth 2.0
errors (RFC 6749 §5.2). Which requests are API calls is declared per
blueprint (``ApiBlueprint``); elsewhere a client that asks for JSON (Accept,
or a JSON body) gets JSON. Internal detail goes to the log, never into the
response.
"""

from __future__ import annotations

import logging

import redis
import sqlalchemy.exc
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .extensions import db

log = logging.getLogger(__name__)


class IdpError(Exception):
    error = "server_error"
    status = 400
    message = _l("Something went wrong.")

    def __init__(
        self,
        message: object | None = None,
        *,
        detail: str | None = None,
        retry_after: int | None = None,
        fields: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(message or self.message))
        if message is not None:
            self.message = message
        # Safe, protocol-level detail for the page (never internal state).
        self.detail = detail
        # Seconds until a throttled request may succeed (RFC 9110 §10.2.3).
        self.retry_after = retry_after
        # The input fields at fault, each with what is wrong with it.
        self.fields = fields


class InvalidRequest(IdpError):
    """The request is malformed or a field is not acceptable (400
    ``invalid_request``); ``fields`` names the fields at fault."""

    error = "invalid_request"
    status = 400
    message = _l("The request is not valid.")


class Throttled(IdpError):
    """Too many attempts (429 ``too_many_attempts``, with Retry-After)."""

    error = "too_many_attempts"
    status = 429
    message = _l("Too many attempts. Please wait before trying again.")


class ApiBlueprint(Blueprint):
    """A blueprint of an API: every answer, errors included, is JSON."""


class InvalidAuthorizationRequest(IdpError):
    """An authorization request we must not redirect back from (RFC 6749 §4.1.2.1)."""

    error = "invalid_request"
    message = _l("The application sent an invalid sign-in request.")


class LoginTransactionExpired(IdpError):
    error = "login_expired"
    message = _l("This sign-in took too long or was already finished. Please start again.")


class ServiceUnavailable(IdpError):
    error = "temporarily_unavailable"
    status = 503
    message = _l("The service is temporarily unavailable. Please try again in a moment.")


# Werkzeug's own descriptions are English only; people get these instead.
HTTP_MESSAGES = {
    400: _l("The request could not be understood."),
    404: _l("This page does not exist."),
    405: _l("This page cannot be used this way."),
    413: _l("The request is too large."),
    429: _l("Too many requests. Please wait a moment and try again."),
}


def wants_json() -> bool:
    """An API's request (its blueprint, or for a path no rule matched, its
    URL prefix), or a client that sends or asks for JSON."""
    blueprints = current_app.blueprints
    if request.blueprint is not None:
        if isinstance(blueprints.get(request.blueprint), ApiBlueprint):
            return True
    elif any(
        isinstance(bp, ApiBlueprint) and bp.url_prefix and request.path.startswith(bp.url_prefix)
        for bp in blueprints.values()
    ):
        return True
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def render_error(
    error: str,
    message: object,
    status: int,
    detail: str | None = None,
    fields: dict[str, str] | None = None,
) -> Response:
    if wants_json():
        body: dict[str, object] = {"error": error, "error_description": str(message)}
        if fields:
            body["fields"] = fields
        response = jsonify(body)
    else:
        response = Response(
            render_template("error.html", error=error, message=message, detail=detail),
            mimetype="text/html",
        )
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(IdpError)
    def _idp_error(exc: IdpError) -> Response:
        response = render_error(exc.error, exc.message, exc.status, exc.detail, exc.fields)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> Response:
        return render_error(
            "csrf_failed",
            _l("The form has expired or was sent from elsewhere. Please go back and try again."),
            400,
        )

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError) -> Response:
        # DESIGN §2: fail closed; nothing falls back to per-process memory.
        # DESIGN §7: a request that fails leaves durable state as it found it.
        db.session.rollback()
        # What broke, for the operator: a lost or refused connection's message
        # names only the server's address; other errors' could quote data.
        broken = isinstance(exc, redis.ConnectionError | redis.TimeoutError)
        log.error("Redis unavailable: %s%s", type(exc).__name__, f" ({exc})" if broken else "")
        return render_error(ServiceUnavailable.error, ServiceUnavailable.message, 503)

    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.TimeoutError)
    def _database_unavailable(exc: Exception) -> Response:
        # The database cannot be reached, refused the statement for now
        # (SQLite's lock past its busy timeout), or no pooled connection came
        # free in time: a temporary condition, answered as the Redis outage
        # above. (Its message names the statement, never its values.)
        db.session.rollback()
        log.error("database unavailable: %s", exc)
        return render_error(ServiceUnavailable.error, ServiceUnavailable.message, 503)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        code = exc.code or 500
        response = render_error(
            (exc.name or "error").lower().replace(" ", "_"),
            HTTP_MESSAGES.get(code, IdpError.message),
            code,
        )
        allow = dict(exc.get_headers()).get("Allow")
        if allow:
            # RFC 9110 §15.5.6: a 405 names the methods the resource has.
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        db.session.rollback()
        log.exception("unhandled error")
        return render_error("server_error", IdpError.message, 500)
