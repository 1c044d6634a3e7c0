"""Bearer access tokens at our own APIs (RFC 6750), with Authlib's resource
protector behind one function and its errors translated (STYLE rule 4)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import InsufficientScopeError

from ..state import resource_protector

if TYPE_CHECKING:
    from .tokens import AccessToken


class BearerRefused(Exception):
    """The request's bearer token is unknown, expired or revoked."""


class NoBearerToken(BearerRefused):
    """No Authorization header, or not a bearer token."""


class ScopeMissing(BearerRefused):
    """A valid token without the scope the API needs."""


def bearer_token(scopes: list[str]) -> AccessToken:
    """The request's valid access token holding ``scopes``."""
    try:
        token: AccessToken = resource_protector().acquire_token(scopes)
    except (MissingAuthorizationError, UnsupportedTokenTypeError):
        raise NoBearerToken() from None
    except InsufficientScopeError:
        raise ScopeMissing() from None
    except OAuth2Error:
        raise BearerRefused() from None
    return token
