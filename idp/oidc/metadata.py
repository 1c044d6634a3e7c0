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
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, create_model

from .clients import ClientError
from .fields import DCR_FIELDS, GRANT_TYPES, SECRET_METHODS, ClientField, dump, load
from .models import Client

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
    (strict), unknown names ignored (RFC 7591 §2). Its client fields are
    added from ``idp.oidc.fields`` (``MODEL``); here are the names of the
    protocol itself."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    # RFC 7591 §2: response_types defaults to code.
    response_types: list[Literal["code"]] | None = None
    subject_type: Literal["public"] | None = None

    id_token_encrypted_response_alg: Unsupported = None
    id_token_encrypted_response_enc: Unsupported = None
    userinfo_signed_response_alg: Unsupported = None
    userinfo_encrypted_response_alg: Unsupported = None
    userinfo_encrypted_response_enc: Unsupported = None
    request_object_encryption_alg: Unsupported = None
    request_object_encryption_enc: Unsupported = None

    def sent(self, field: ClientField) -> Any:
        """A client field's value as sent, None when omitted (or empty)."""
        value = getattr(self, field.key)
        if value == "" or (field.kind == "json" and not value):
            return None
        return value

    def client_fields(self) -> dict[str, Any]:
        """The metadata as ``create_client`` / ``update_client`` arguments,
        omitted fields with a registered client's defaults."""
        fields = {
            field.attr: field.new_default(dynamically_registered=True)
            if self.sent(field) is None
            else load(field, self.sent(field))
            for field in DCR_FIELDS
        }
        if self.response_types is not None:
            # RFC 7591 §2.1: response_types and grant_types must agree (unknown
            # grant types are validate()'s to report).
            grant_types = fields["grant_types"]
            known = set(grant_types) <= set(GRANT_TYPES)
            code = "code" in self.response_types
            if known and code != ("authorization_code" in grant_types):
                raise ClientError(
                    "response_types", "code goes with grant type authorization_code (RFC 7591 2.1)"
                )
        return fields


def _json_type(field: ClientField) -> Any:
    """What JSON carries a field as (strictly, RFC 7591 §2)."""
    if field.kind in ("uris", "list") or (field.kind == "choices" and not field.joined):
        return list[str]
    return {"flag": bool, "seconds": int, "json": dict[str, Any]}.get(field.kind, str)


# The registration request's model: the protocol's names and every client
# field a client may set itself.
_FIELDS: dict[str, Any] = {field.key: (_json_type(field) | None, None) for field in DCR_FIELDS}
MODEL: type[ClientMetadata] = create_model(
    "RegistrationMetadata", __base__=ClientMetadata, **_FIELDS
)


def client_information(client: Client, registration_client_uri: str) -> dict[str, Any]:
    """RFC 7591 §3.2.1 / RFC 7592 §3: the metadata as registered, including
    values the server chose, plus the client's identifiers."""
    info: dict[str, Any] = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        **{field.key: dump(field, getattr(client, field.attr)) for field in DCR_FIELDS},
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "subject_type": "public",
        "registration_client_uri": registration_client_uri,
    }
    if client.token_endpoint_auth_method in SECRET_METHODS:
        # RFC 7591 §3.2.1: 0, the secret does not expire.
        info["client_secret_expires_at"] = 0
    return {k: v for k, v in info.items() if v is not None}


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
        return MODEL.model_validate(_object(data))
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
