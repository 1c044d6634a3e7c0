"""Who may hold the admin scope: clients an administrator registered with it,
and with a user, only an administrator (the token endpoint's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from idp.accounts.models import User
from idp.oidc.clients import ClientError, validate
from idp.oidc.models import ADMIN_SCOPE, SUPPORTED_SCOPES, Client
from idp.oidc.tokens import granted_scope


def client(**fields: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": "c",
        "name": "Automation",
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "allowed_scopes": [ADMIN_SCOPE],
        "mfa_fallback": "refuse",
        "require_pkce": True,
        "contacts": [],
        "dynamically_registered": False,
        **fields,
    }
    return Client(**values)


def test_admin_scope_is_never_a_default_nor_advertised() -> None:
    assert ADMIN_SCOPE not in SUPPORTED_SCOPES


def test_only_an_administrator_registers_a_client_with_the_admin_scope() -> None:
    validate(client())
    with pytest.raises(ClientError) as refused:
        validate(client(dynamically_registered=True))
    assert refused.value.field == "scope"


def test_tokens_carry_the_admin_scope_only_when_allowed() -> None:
    allowed = client(allowed_scopes=["openid", ADMIN_SCOPE])
    admin, plain = User(is_admin=True), User(is_admin=False)
    assert granted_scope(allowed, None, "openid admin") == "openid admin"
    assert granted_scope(allowed, admin, "openid admin") == "openid admin"
    assert granted_scope(allowed, plain, "openid admin") == "openid"
    assert granted_scope(client(allowed_scopes=["openid"]), admin, "openid admin") == "openid"
    assert granted_scope(allowed, None, None) == ""
