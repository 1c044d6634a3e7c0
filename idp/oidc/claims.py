"""ID token claims and the claims each scope releases (OIDC Core §2, §5.4)."""

from __future__ import annotations

import time
from typing import Any

from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode

from ..accounts.models import User
from ..state import idp as _idp
from .models import Client
from .tokens import epoch


def id_token_alg(client: Client) -> str:
    """The algorithm of the client's ID tokens (and Logout Tokens)."""
    return client.id_token_signed_response_alg or _idp().settings.default_signing_alg


class OpenIDConnect(OpenIDCode):
    """ID tokens: OIDC Core §2 claims plus ``sid`` and ``amr``/``acr``."""

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # OIDC Core §15.5.2: nonce replay is detected by the relying party.
        return False

    def get_client_algorithm(self, client: Client) -> str:
        return id_token_alg(client)

    def resolve_client_private_key(self, client: Client) -> Any:
        return _idp().keyring.signing_key(self.get_client_algorithm(client)).key

    def get_encode_header(self, client: Client) -> dict[str, str]:
        key = _idp().keyring.signing_key(self.get_client_algorithm(client))
        return {"alg": key.alg, "kid": key.kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        settings = _idp().settings
        now = int(time.time())
        return {
            "iss": settings.issuer,
            "aud": [client.client_id],
            "iat": now,
            "exp": now + settings.id_token_lifetime,
        }

    def get_authorization_code_claims(self, authorization_code: Any) -> dict[str, Any]:
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims  # type: ignore[no-any-return]

    def generate_user_info(self, user: User, scope: str) -> UserInfo:
        return user_info(user, scope)


def user_info(user: User, scope: str) -> UserInfo:
    """OIDC Core §5.4: the claims each scope releases."""
    scopes = set(scope_to_list(scope) or [])
    info = UserInfo(sub=user.sub)
    if "profile" in scopes:
        info.update(
            name=user.name,
            given_name=user.given_name,
            family_name=user.family_name,
            preferred_username=user.username or user.access_number,
            locale=user.locale,
            updated_at=epoch(user.updated_at),
        )
    if "email" in scopes and user.email:
        info.update(email=user.email, email_verified=user.email_verified)
    if "phone" in scopes and user.phone_number:
        info.update(
            phone_number=user.phone_number, phone_number_verified=user.phone_number_verified
        )
    return UserInfo({k: v for k, v in info.items() if v is not None})
