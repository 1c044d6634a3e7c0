"""Language choice: the switch on every page, then ui_locales, then the browser."""

from __future__ import annotations

from flask import Flask, g, has_request_context, request, session
from flask_babel import Babel

from .state import idp


def select_locale() -> str | None:
    if not has_request_context():
        # The CLI and other work outside a request (an error built there).
        return idp().settings.default_language
    languages = list(idp().settings.languages)
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    # OIDC Core §3.1.2.1 ui_locales, set on g by the authorization views.
    for tag in getattr(g, "ui_locales", ()) or ():
        base = tag.split("-")[0].lower()
        if base in languages:
            return str(base)
    return str(request.accept_languages.best_match(languages) or idp().settings.default_language)


def init_app(app: Flask, babel: Babel) -> None:
    babel.init_app(app, locale_selector=select_locale)

    @app.context_processor
    def _languages() -> dict[str, object]:
        from flask_babel import get_locale

        return {
            "languages": app.extensions["idp"].settings.languages,
            "current_language": str(get_locale()),
        }
