"""Authlib wiring: the authorization server with its grants, client
authentication, token generator and endpoints, and the resource protector.

Authlib's defaults are not trusted on security (STYLE.md): PKCE ``plain`` is
refused, refresh tokens rotate with reuse detection, and authorization codes
are consumed atomically in Redis (idp.oidc.grants, idp.oidc.tokens).
"""

from __future__ import annotations

from typing import Any

from authlib.integrations.flask_oauth2 import (
    AuthorizationServer as FlaskAuthorizationServer,
)
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2 import OAuth2Request
from flask import Flask

from ..state import AUTHORIZATION_SERVER, RESOURCE_PROTECTOR
from .claims import OpenIDConnect
from .client_auth import PrivateKeyJWT, query_client
from .endpoints import AccessTokenValidator, EndSession, Introspection, Revocation
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from .tokens import generate_bearer_token, save_token


class IdpAuthorizationServer(FlaskAuthorizationServer):
    """Accepts a prepared OAuth2Request, so a login transaction can resume the
    authorization request it stored."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)


def init_app(app: Flask) -> None:
    server = IdpAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_bearer_token)
    server.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT())
    server.register_grant(
        AuthorizationCodeGrant, [S256CodeChallenge(required=True), OpenIDConnect()]
    )
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_endpoint(EndSession)

    protector = ResourceProtector()
    protector.register_token_validator(AccessTokenValidator())

    app.extensions[AUTHORIZATION_SERVER] = server
    app.extensions[RESOURCE_PROTECTOR] = protector
