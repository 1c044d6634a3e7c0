"""Language choice: the switch on every page, then ui_locales, then the browser."""

from __future__ import annotations

from flask import Flask, g, has_request_context, request, session, url_for
from flask_babel import Babel

from .state import idp


def stated_language() -> str | None:
    """The language the current request asks for, or None outside a request
    or when it states none we have (a device API call without Accept-Language)."""
    if not has_request_context():
        return None
    languages = list(idp().settings.languages)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    # OIDC Core §3.1.2.1 ui_locales, set on g by the authorization views.
    for tag in getattr(g, "ui_locales", ()) or ():
        base = tag.split("-")[0].lower()
        if base in languages:
            return str(base)
    best = request.accept_languages.best_match(languages)
    return str(best) if best else None


def select_locale() -> str | None:
    # Outside a request: the CLI and other work (an error built there).
    return stated_language() or idp().settings.default_language


def switch_returns_to(path: str) -> None:
    """The language switch on the page this request renders leads back to
    ``path``: for a page that answers a POST only (a result shown once, a
    refusal), its GET entry point. The switch is a link, so it cannot repeat
    the POST."""
    g.language_return = path


def _language_return() -> str:
    """Where the switch leads back to: the page itself when a GET shows it
    again, else the path its view named, else the start page."""
    named = g.get("language_return")
    if named:
        return str(named)
    rule = request.url_rule
    if request.method in ("GET", "HEAD") or (rule is not None and "GET" in (rule.methods or ())):
        return request.full_path
    return url_for("account.index")


def init_app(app: Flask, babel: Babel) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def _languages() -> dict[str, object]:
        from flask_babel import get_locale

        return {
            "languages": app.extensions["idp"].settings.languages,
            "current_language": str(get_locale()),
            "language_return": _language_return() if has_request_context() else "/",
        }
