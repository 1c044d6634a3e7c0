"""Response headers every page gets."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, Response

from .config import Settings

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self' http: https:; base-uri 'none'"
)


def csp_with_images(origins: Iterable[str]) -> str:
    """The pages' policy, also letting images load from ``origins`` (the
    https origins of the logos a page shows, checked by
    ``idp.redirects.image_url``)."""
    extra = "".join(f" {origin}" for origin in sorted(set(origins)))
    return CSP.replace("img-src 'self' data:;", f"img-src 'self' data:{extra};")


def common_headers(settings: Settings) -> list[tuple[str, str]]:
    """The headers of every response."""
    headers = [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        # Transaction ids travel in URLs; keep them out of Referer headers.
        ("Referrer-Policy", "no-referrer"),
    ]
    # Strict-Transport-Security (RFC 6797) when the issuer is https, whatever
    # this process sees: behind a TLS proxy its requests come in plain http.
    # hsts_max_age = 0 leaves the header to the proxy.
    if settings.is_https and settings.hsts_max_age:
        headers.append(("Strict-Transport-Security", f"max-age={settings.hsts_max_age}"))
    return headers


def init_app(app: Flask, settings: Settings) -> None:
    common = common_headers(settings)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        for name, value in common:
            response.headers.setdefault(name, value)
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("Cache-Control", "no-store")
        return response
