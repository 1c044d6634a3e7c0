"""OIDC Discovery 1.0 §3 / RFC 8414 §2 metadata, serialised once per app.

Everything listed here is implemented; nothing is advertised that is not.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app

from ..auth.amr import ACR_SUPPORTED
from ..state import idp
from .client_auth import ALL_AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from .keys import ALGORITHMS
from .models import SUPPORTED_SCOPES


def metadata() -> dict[str, Any]:
    settings = idp().settings
    issuer = settings.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "end_session_endpoint": f"{issuer}/logout",
        # RFC 7591 §3 (RFC 8414 §2): with an initial access token unless
        # client_registration_open is set.
        "registration_endpoint": f"{issuer}/register",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "token_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": ALL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "locale",
            "updated_at",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(ACR_SUPPORTED),
        "prompt_values_supported": ["none", "login", "consent"],
        "ui_locales_supported": list(settings.languages),
        "claims_locales_supported": list(settings.languages),
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        # OpenID Connect Back-Channel Logout 1.0 §2.1 (idp.oidc.backchannel):
        # Logout Tokens always carry sid, as ID tokens do.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
    }


def discovery_bytes() -> bytes:
    cached: bytes | None = current_app.extensions.get("idp.discovery")
    if cached is None:
        cached = json.dumps(metadata(), separators=(",", ":")).encode()
        current_app.extensions["idp.discovery"] = cached
    return cached
