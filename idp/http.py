"""Response headers every page gets."""

from __future__ import annotations

from flask import Flask, Response

from .config import Settings

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'"
)


def init_app(app: Flask, settings: Settings) -> None:
    # Strict-Transport-Security (RFC 6797) when the issuer is https, whatever
    # this process sees: behind a TLS proxy its requests come in plain http.
    # hsts_max_age = 0 leaves the header to the proxy.
    hsts = None
    if settings.is_https and settings.hsts_max_age:
        hsts = f"max-age={settings.hsts_max_age}"

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # Transaction ids travel in URLs; keep them out of Referer headers.
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if hsts is not None:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Cache-Control", "no-store")
        return response
