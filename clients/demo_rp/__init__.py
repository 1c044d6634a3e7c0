"""FinanceCloud, a portal for financial advisers: the demo relying party that
signs its users in with Freigabe (OpenID Connect, authorization code flow with
PKCE). It plays a third party and uses only what the IdP publishes."""

from __future__ import annotations

from typing import Any

from flask import Flask

from . import views
from .oidc import Provider, RpError, Tokens
from .settings import Settings, SettingsError, load_settings
from .state import EXTENSION, DemoRp
from .store import MemoryStore

__all__ = ["DemoRp", "RpError", "Settings", "SettingsError", "Tokens", "create_app"]


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Settings from defaults, ``DEMO_RP_*`` variables and ``config``, in that order."""
    settings = load_settings(config)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Not "session": cookies ignore ports, and the IdP runs on localhost too.
        SESSION_COOKIE_NAME="financecloud_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # the callback is a top-level GET from the IdP
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=16 * 1024,
    )
    store = MemoryStore()
    app.extensions[EXTENSION] = DemoRp(
        settings=settings, store=store, provider=Provider(app, settings, store)
    )
    app.register_blueprint(views.bp)
    return app
