"""Client metadata as dynamic client registration sends it (RFC 7591 §2,
OpenID Connect Dynamic Client Registration 1.0 §2) and answers it.

The registration endpoints parse the JSON body into these models at the
edge; a body of the wrong shape is refused with the RFC 7591 §3.2.2 codes
(``invalid_redirect_uri`` for the redirect URIs, ``invalid_client_metadata``
for the rest), the description naming the field. Only shapes are checked
here; the values are checked by ``idp.oidc.clients.validate``, exactly as for
a client an administrator adds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc7591 import InvalidClientMetadataError, InvalidRedirectURIError
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from .clients import GRANT_TYPES, ClientError
from .models import SUPPORTED_SCOPES

# RFC 6749 Appendix A.7: what error_description may contain.
NOT_IN_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def description(text: str) -> str:
    """Text fit for error_description (RFC 6749 §5.2: printable ASCII
    without quote and backslash); client input is echoed only through this."""
    return NOT_IN_DESCRIPTION.sub("?", text)[:300]


def _refuse(value: Any) -> None:
    if value is not None:
        raise ValueError("is not supported")


# Metadata we understand but cannot honour: refused rather than ignored, so a
# client never believes it gets, say, encrypted ID tokens when it does not.
# (Metadata we do not understand is ignored, RFC 7591 §2.)
Unsupported = Annotated[Any, AfterValidator(_refuse)]


class ClientMetadata(BaseModel):
    """The metadata a client registers with, as sent: JSON types exactly
    (strict), unknown names ignored (RFC 7591 §2)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    # validate() refuses a missing name: the consent screen shows it.
    client_name: str | None = None
    redirect_uris: list[str] | None = None
    post_logout_redirect_uris: list[str] | None = None
    # RFC 7591 §2: grant_types defaults to authorization_code, response_types
    # to code.
    grant_types: list[str] | None = None
    response_types: list[Literal["code"]] | None = None
    token_endpoint_auth_method: str | None = None
    scope: str | None = None
    logo_uri: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None
    contacts: list[str] | None = None
    id_token_signed_response_alg: str | None = None
    subject_type: Literal["public"] | None = None
    # OpenID Connect Back-Channel Logout 1.0 §2.2 (default false).
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool | None = None

    id_token_encrypted_response_alg: Unsupported = None
    id_token_encrypted_response_enc: Unsupported = None
    userinfo_signed_response_alg: Unsupported = None
    userinfo_encrypted_response_alg: Unsupported = None
    userinfo_encrypted_response_enc: Unsupported = None
    request_object_encryption_alg: Unsupported = None
    request_object_encryption_enc: Unsupported = None

    def client_fields(self) -> dict[str, Any]:
        """The metadata as ``create_client`` / ``update_client`` arguments,
        omitted fields with their defaults."""
        grant_types = ["authorization_code"] if self.grant_types is None else self.grant_types
        if self.response_types is not None:
            # RFC 7591 §2.1: response_types and grant_types must agree (unknown
            # grant types are validate()'s to report).
            known = set(grant_types) <= set(GRANT_TYPES)
            code = "code" in self.response_types
            if known and code != ("authorization_code" in grant_types):
                raise ClientError(
                    "response_types", "code goes with grant type authorization_code (RFC 7591 2.1)"
                )
        return {
            "name": self.client_name or None,
            "redirect_uris": list(self.redirect_uris or []),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris or []),
            "grant_types": list(grant_types),
            "token_endpoint_auth_method": self.token_endpoint_auth_method or "client_secret_basic",
            "allowed_scopes": self.scope.split() if self.scope else list(SUPPORTED_SCOPES),
            "logo_uri": self.logo_uri or None,
            "jwks": self.jwks or None,
            "jwks_uri": self.jwks_uri or None,
            "contacts": list(self.contacts or []),
            "id_token_signed_response_alg": self.id_token_signed_response_alg or None,
            "backchannel_logout_uri": self.backchannel_logout_uri or None,
            "backchannel_logout_session_required": bool(self.backchannel_logout_session_required),
        }


class ConfigurationUpdate(BaseModel):
    """What an RFC 7592 §2.2 update sends besides the metadata."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    client_id: Any = None
    client_secret: Any = None
    # RFC 7592 §2.2: the client MUST NOT send these (checked with model_fields_set).
    registration_access_token: Any = None
    registration_client_uri: Any = None
    client_secret_expires_at: Any = None
    client_id_issued_at: Any = None


SERVER_FIELDS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


def metadata_error(field: str, message: str) -> OAuth2Error:
    """RFC 7591 §3.2.2: invalid_redirect_uri for redirect_uris, else
    invalid_client_metadata; the description names the field."""
    text = description(f"{field}: {message}")
    if field == "redirect_uris":
        return InvalidRedirectURIError(text)
    return InvalidClientMetadataError(text)


def _validation_error(exc: ValidationError) -> OAuth2Error:
    first = exc.errors(include_url=False)[0]
    field = str(first["loc"][0]) if first["loc"] else "metadata"
    if first["type"] == "value_error":
        message = str(first["ctx"]["error"])
    elif field == "response_types":
        message = "only code is supported"
    elif field == "subject_type":
        message = "only public is supported"
    else:
        message = first["msg"]
    return metadata_error(field, message)


def _object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    return data


def parse_metadata(data: object) -> ClientMetadata:
    """A registration request's JSON body (RFC 7591 §3.1)."""
    try:
        return ClientMetadata.model_validate(_object(data))
    except ValidationError as exc:
        raise _validation_error(exc) from None


def parse_update(data: object, *, client_id: str) -> tuple[ConfigurationUpdate, ClientMetadata]:
    """A client update request's JSON body (RFC 7592 §2.2) for the client
    ``client_id``: the envelope is checked before the metadata."""
    body = _object(data)
    envelope = ConfigurationUpdate.model_validate(body)
    for name in SERVER_FIELDS:
        if name in envelope.model_fields_set:
            raise InvalidRequestError(f"'{name}' must not be sent in an update (RFC 7592 2.2).")
    if envelope.client_id != client_id:
        raise InvalidRequestError("'client_id' must be sent and name this client (RFC 7592 2.2).")
    return envelope, parse_metadata(body)
