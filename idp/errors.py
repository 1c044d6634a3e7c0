"""Our error tree and the one handler that renders it.

Browsers get a friendly page, API callers a JSON object with the ``error``
code. Internal detail goes to the log, never into the response.
"""

from __future__ import annotations

import logging

import redis
from flask import Flask, Response, jsonify, render_template, request
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
    ) -> None:
        super().__init__(str(message or self.message))
        if message is not None:
            self.message = message
        # Safe, protocol-level detail for the page (never internal state).
        self.detail = detail
        # Seconds until a throttled request may succeed (RFC 9110 §10.2.3).
        self.retry_after = retry_after


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
    if request.path.startswith(
        ("/device/", "/admin/api/", "/token", "/userinfo", "/revoke", "/introspect")
    ):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def render_error(error: str, message: object, status: int, detail: str | None = None) -> Response:
    if wants_json():
        response = jsonify(error=error, error_description=str(message))
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
        response = render_error(exc.error, exc.message, exc.status, exc.detail)
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
        log.error("Redis unavailable: %s", type(exc).__name__)
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
