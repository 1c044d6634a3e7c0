"""The demo relying party's settings: defaults, then ``DEMO_RP_*`` environment
variables, then the mapping given to ``create_app``; validated before use."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
ENV_PREFIX = "DEMO_RP_"

DEFAULTS: dict[str, str | None] = {
    "ISSUER": "http://localhost:5000",
    "CLIENT_ID": "financecloud",
    "CLIENT_SECRET": "financecloud-demo-secret",
    "TOKEN_ENDPOINT_AUTH_METHOD": "client_secret_basic",
    "BASE_URL": "http://localhost:5001",
    "SECRET_KEY": None,
    "SCOPE": "openid profile email phone offline_access",
    "ACR_VALUES": None,
}


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str | None
    token_endpoint_auth_method: str
    base_url: str
    secret_key: str
    scope: str
    acr_values: str | None

    @property
    def public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return self.base_url + "/"

    @property
    def backchannel_logout_uri(self) -> str:
        """Where Freigabe posts Logout Tokens (register it with the client)."""
        return self.base_url + "/backchannel-logout"

    @property
    def discovery_url(self) -> str:
        # OIDC Discovery 1.0 §4.1: drop a terminating "/" before appending.
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def issuer_origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name}: {value!r} is not an http(s) URL")
    if parts.query or parts.fragment:
        raise SettingsError(f"{name}: must not have a query or fragment")
    return value


def load_settings(
    config: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    config = config or {}
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")
    values: dict[str, str | None] = dict(DEFAULTS)
    for key in DEFAULTS:
        if environ.get(ENV_PREFIX + key):
            values[key] = environ[ENV_PREFIX + key]
        if key in config:
            values[key] = None if config[key] is None else str(config[key])

    method = values["TOKEN_ENDPOINT_AUTH_METHOD"] or ""
    if method not in AUTH_METHODS:
        raise SettingsError(f"TOKEN_ENDPOINT_AUTH_METHOD: must be one of {', '.join(AUTH_METHODS)}")
    secret = None if method == "none" else values["CLIENT_SECRET"]
    if method != "none" and not secret:
        raise SettingsError(f"CLIENT_SECRET: required with {method}")
    client_id = values["CLIENT_ID"]
    if not client_id:
        raise SettingsError("CLIENT_ID: required")
    scope = " ".join((values["SCOPE"] or "").split())
    if "openid" not in scope.split():
        raise SettingsError("SCOPE: must include openid")
    return Settings(
        issuer=_check_url("ISSUER", values["ISSUER"] or ""),
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        base_url=_check_url("BASE_URL", values["BASE_URL"] or "").rstrip("/"),
        # Random per process when unset: sessions do not survive a restart.
        secret_key=values["SECRET_KEY"] or secrets.token_urlsafe(32),
        scope=scope,
        acr_values=values["ACR_VALUES"] or None,
    )
