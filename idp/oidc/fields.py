"""A client registration's fields, declared once (STYLE rule 11).

Each ``ClientField`` says what one field is: the ``Client`` column it is kept
in, its kind, its name in client metadata (RFC 7591 §2, OpenID Connect
Dynamic Client Registration 1.0 §2), whether a client may set it itself
(dynamic registration) or only an administrator, its default, its choices,
its label and help for people (both languages, through the catalogs), its
``idp clients`` option and its place on the admin form. From this table come:

- ``idp.oidc.clients``: what ``create_client`` takes and defaults,
  what ``update_client`` may change, the choices ``validate`` checks,
  and ``describe`` (the registration as JSON);
- ``idp.oidc.metadata``: the dynamic registration request model and the
  client information response;
- ``idp.admin.schemas``: the admin API's client models (and so its OpenAPI
  document);
- ``idp.admin.client_form``: the admin form, read and rendered generically;
- the ``idp clients add/update`` options.

Adding a field: a line here, the column in ``idp.oidc.models.Client`` and a
migration. Rules that tie fields together stay in ``clients.validate``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any, Literal

from flask_babel import lazy_gettext as _l
from pydantic import AfterValidator, Field, StringConstraints

from ..auth.amr import ACR_SUPPORTED
from .models import ADMIN_SCOPE, SUPPORTED_SCOPES

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SIGNING_ALGS = ("ES256", "RS256")
# Without a device: refuse the login, or let the password alone do.
MFA_FALLBACKS = ("refuse", "password")
ALL_SCOPES = (*SUPPORTED_SCOPES, ADMIN_SCOPE)
MAX_CONTACTS = 10
MAX_URIS = 50
# The columns' sizes (models.Client): longer values are refused, not left to
# the database.
MAX_NAME_LENGTH = 200
MAX_URI_LENGTH = 500
MIN_LIFETIME = 60
MAX_LIFETIME = 400 * 86400


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it as bad input, not a crash.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# Types of the admin API's fields (pydantic), shared with idp.admin.schemas.
NoNul = AfterValidator(_no_nul)
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH), NoNul]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URI_LENGTH), NoNul]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul]
Contact = Annotated[str, StringConstraints(min_length=1, max_length=254), NoNul]
SearchText = Annotated[str, StringConstraints(max_length=200), NoNul]
Lifetime = Annotated[int, Field(ge=MIN_LIFETIME, le=MAX_LIFETIME)]
SigningAlg = Literal["ES256", "RS256"]

# What a field holds, and so how each surface reads and shows it:
#   text      a short text, required              (str)
#   uri       an optional URI                     (str | None)
#   uris      a list of URIs, one per line        (list[str])
#   list      a list of texts, one per line       (list[str])
#   flag      yes or no                           (bool)
#   choice    one of ``choices``                  (str)
#   option    one of ``choices`` or none          (str | None)
#   choices   some of ``choices``                 (list[str]); ``joined``: in
#             metadata as one space-separated string (``scope``)
#   seconds   a lifetime; none: the server's      (int | None)
#   json      a JSON object                       (dict | None)
Kind = Literal[
    "text", "uri", "uris", "list", "flag", "choice", "option", "choices", "seconds", "json"
]
SECTIONS: tuple[tuple[str, Any], ...] = (
    ("application", _l("The application")),
    ("sign-in", _l("Sign-in")),
    ("sign-out", _l("Sign-out")),
    ("authentication", _l("Client authentication")),
    ("security", _l("Security")),
)


@dataclass(frozen=True)
class ClientField:
    """One field of a client registration."""

    # The Client column and create_client / update_client argument.
    attr: str
    kind: Kind
    # Its name in metadata, the admin API, describe() and ClientError.field.
    key: str
    label: Any
    section: str
    help: Any = None
    # The default of a new registration (a list is copied when used).
    default: Any = None
    # A dynamically registered client's default, where it differs (RFC 7591 §2).
    dcr_default: Any = None
    choices: Sequence[str] = ()
    # What people read for a choice (a select's option; a note after a checkbox).
    choice_labels: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # A client may set it in its own registration (RFC 7591 / 7592).
    dcr: bool = False
    # How the value is written in an "option" or "choices" list for people.
    empty_label: Any = None
    # The idp clients option (without "--"; a list's option is repeated) and
    # its help (default: the label).
    cli: str | None = None
    cli_help: str | None = None
    # The admin API's input type (pydantic) and description.
    api_type: Any = None
    api_doc: str | None = None
    joined: bool = False
    # More input attributes on the admin form (maxlength, rows ...).
    max_length: int | None = None

    def new_default(self, *, dynamically_registered: bool = False) -> Any:
        value = self.default
        if dynamically_registered and self.dcr_default is not None:
            value = self.dcr_default
        return list(value) if isinstance(value, list | tuple) else value

    @property
    def is_list(self) -> bool:
        return self.kind in ("uris", "list", "choices")

    @property
    def cli_option(self) -> str:
        return self.cli or self.attr.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.kind == "text"


FIELDS: tuple[ClientField, ...] = (
    # --- the application
    ClientField(
        "name", "text", "client_name", _l("Name shown to users"), "application",
        dcr=True, cli="name", api_type=Name, max_length=MAX_NAME_LENGTH,
    ),
    ClientField(
        "logo_uri", "uri", "logo_uri", _l("Logo URL"), "application",
        dcr=True, api_type=Uri, max_length=MAX_URI_LENGTH,
    ),
    ClientField(
        "contacts", "list", "contacts", _l("Contacts (e-mail addresses, one per line)"),
        "application", default=(), dcr=True, cli="contact", cli_help="An e-mail address.",
        api_type=Annotated[list[Contact], Field(max_length=MAX_CONTACTS)],
    ),
    # --- sign-in
    ClientField(
        "redirect_uris", "uris", "redirect_uris", _l("Redirect URIs (one per line)"), "sign-in",
        help=_l("Exact URIs: https, or http only for localhost; no wildcards, no fragments."),
        default=(), dcr=True, cli="redirect-uri", cli_help="A redirect URI.",
        api_type=Annotated[list[Uri], Field(max_length=MAX_URIS)],
    ),
    ClientField(
        "post_logout_redirect_uris", "uris", "post_logout_redirect_uris",
        _l("Post-logout redirect URIs (one per line)"), "sign-in",
        default=(), dcr=True, cli="post-logout-redirect-uri",
        cli_help="A post-logout redirect URI.",
        api_type=Annotated[list[Uri], Field(max_length=MAX_URIS)],
    ),
    ClientField(
        "grant_types", "choices", "grant_types", _l("Grant types"), "sign-in",
        default=("authorization_code", "refresh_token"), dcr_default=("authorization_code",),
        choices=GRANT_TYPES, dcr=True, cli="grant-type",
        api_type=Annotated[
            list[Literal["authorization_code", "refresh_token", "client_credentials"]],
            Field(min_length=1),
        ],
    ),
    ClientField(
        "allowed_scopes", "choices", "scope", _l("Allowed scopes"), "sign-in",
        choice_labels=MappingProxyType(
            {ADMIN_SCOPE: _l("(the admin JSON API: only for trusted automation)")}
        ),
        default=SUPPORTED_SCOPES, choices=ALL_SCOPES, dcr=True, joined=True, cli="scope",
        api_type=SearchText,
        api_doc="Allowed scopes, space separated; default: every scope but admin.",
        cli_help="Allowed scopes, space separated. Default: all but admin.",
    ),
    ClientField(
        "first_party", "flag", "first_party",
        _l("First-party application (users are not asked for consent)"), "sign-in",
        default=False, api_type=bool, api_doc="No consent screen.",
        cli_help="Skip the consent screen.",
    ),
    ClientField(
        "require_pkce", "flag", "require_pkce", _l("Require PKCE"), "sign-in",
        default=True, api_type=bool,
    ),
    # --- sign-out
    ClientField(
        "backchannel_logout_uri", "uri", "backchannel_logout_uri",
        _l("Back-channel logout URI"), "sign-out",
        help=_l(
            "When a user signs out of Freigabe (or is locked out), a logout token is posted "
            "here for each session that signed in to this client. https, or http only for "
            "localhost; no fragment."
        ),
        dcr=True, api_type=Uri, max_length=MAX_URI_LENGTH,
        cli_help="Where Logout Tokens are posted (Back-Channel Logout).",
        api_doc="OpenID Connect Back-Channel Logout: where Logout Tokens are posted when a "
        "session the client signed in to ends; null: none. https (http only on loopback), "
        "no fragment.",
    ),
    ClientField(
        "backchannel_logout_session_required", "flag", "backchannel_logout_session_required",
        _l("The client needs the session ID (sid) in logout tokens"), "sign-out",
        default=False, dcr=True, api_type=bool,
        cli_help="The client needs sid in Logout Tokens (always sent).",
        api_doc="The client needs sid in Logout Tokens (Freigabe always sends it).",
    ),
    # --- client authentication
    ClientField(
        "token_endpoint_auth_method", "choice", "token_endpoint_auth_method",
        _l("Token endpoint authentication method"), "authentication",
        help=_l(
            "client_secret_basic / client_secret_post: a secret, shown once; private_key_jwt: "
            "the client's keys below; none: a public client (PKCE)."
        ),
        default="client_secret_basic", choices=AUTH_METHODS, dcr=True, cli="auth-method",
        api_type=Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
    ),
    ClientField(
        "jwks_uri", "uri", "jwks_uri", _l("JWKS URI (for private_key_jwt)"), "authentication",
        dcr=True, api_type=Uri, max_length=MAX_URI_LENGTH,
    ),
    ClientField(
        "jwks", "json", "jwks", _l("Or the JWK set itself (JSON, public keys only)"),
        "authentication", dcr=True, cli="jwks-file",
        cli_help="A file with the public JWK set (private_key_jwt).",
        api_type=dict[str, Any], api_doc="Public keys (private_key_jwt).",
    ),
    # --- security
    ClientField(
        "require_mfa", "flag", "require_mfa",
        _l("Require confirmation in the app or with a passkey (MFA)"), "security",
        default=False, api_type=bool, api_doc="Logins need a second factor.",
        cli_help="Logins need approval on a device.",
    ),
    ClientField(
        "mfa_fallback", "choice", "mfa_fallback",
        _l("When MFA is required but the user has no device"), "security",
        default="refuse", choices=MFA_FALLBACKS,
        choice_labels=MappingProxyType({
            "refuse": _l("refuse the sign-in (and offer to set up a device)"),
            "password": _l("let the password alone do"),
        }),
        api_type=Literal["refuse", "password"],
        api_doc="With require_mfa, for users without a device.",
        cli_help="With --require-mfa, for users without a device.",
    ),
    ClientField(
        "default_acr", "option", "default_acr", _l("Default acr (when the client asks for none)"),
        "security", choices=ACR_SUPPORTED, empty_label=_l("none"), api_type=Identifier,
    ),
    ClientField(
        "id_token_signed_response_alg", "option", "id_token_signed_response_alg",
        _l("ID token signing algorithm"), "security",
        choices=SIGNING_ALGS, empty_label=_l("the server's default"), dcr=True,
        cli="id-token-alg", api_type=SigningAlg,
    ),
    ClientField(
        "access_token_lifetime", "seconds", "access_token_lifetime",
        _l("Access token lifetime in seconds (empty: the server's default)"), "security",
        api_type=Lifetime, api_doc="Seconds; null: the default.", cli_help="Seconds.",
    ),
    ClientField(
        "refresh_token_lifetime", "seconds", "refresh_token_lifetime",
        _l("Refresh token lifetime in seconds (empty: the server's default)"), "security",
        api_type=Lifetime, api_doc="Seconds; null: the default.", cli_help="Seconds.",
    ),
)  # fmt: skip

BY_ATTR = {field.attr: field for field in FIELDS}
BY_KEY = {field.key: field for field in FIELDS}
# What update_client may change: every field but client_id (the secret has
# set_secret / rotate_secret).
EDITABLE_FIELDS = frozenset(BY_ATTR)
DCR_FIELDS = tuple(field for field in FIELDS if field.dcr)


def dump(field: ClientField, value: Any) -> Any:
    """A field's value as JSON (metadata, the admin API, describe)."""
    if field.joined:
        return " ".join(value or [])
    if field.is_list:
        return list(value or [])
    return value


def load(field: ClientField, value: Any) -> Any:
    """A field's value from JSON (metadata, the admin API) as the column's;
    only a ``joined`` field's differs."""
    if field.joined and isinstance(value, str):
        return value.split()
    return value
