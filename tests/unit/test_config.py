"""Configuration: sources in order, and refusal of unsafe settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from idp.config import ConfigError, Settings, load_settings, write_demo_settings

SECRETS = {"secret_key": "s" * 40, "key_encryption_key": "k" * 43}


def test_defaults_are_the_embedded_localhost_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    # An instance folder without a demo.toml (./instance may have one).
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    settings = load_settings()
    assert settings.issuer == "http://localhost:5000"
    assert settings.is_local
    assert settings.database_url == "" and settings.redis_url == ""


def test_toml_then_environment_then_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "idp.toml"
    config.write_text('access_token_lifetime = 900\nid_token_lifetime = 700\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("IDP_CONFIG", str(config))
    monkeypatch.setenv("IDP_ID_TOKEN_LIFETIME", "800")
    settings = load_settings({"log_level": "WARNING"})
    assert settings.access_token_lifetime == 900  # from the file
    assert settings.id_token_lifetime == 800  # environment beats the file
    assert settings.log_level == "WARNING"  # the mapping beats both


def test_the_issuer_idp_demo_left_in_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IDP_CONFIG", "IDP_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    written = write_demo_settings(tmp_path, issuer="http://localhost:6000")
    assert written == tmp_path / "demo.toml"
    assert load_settings().issuer == "http://localhost:6000"
    # The instance folder named in the mapping or in the IDP_CONFIG file counts too.
    monkeypatch.delenv("IDP_INSTANCE_PATH")
    assert load_settings({"instance_path": str(tmp_path)}).issuer == "http://localhost:6000"
    config = tmp_path / "idp.toml"
    config.write_text(f'instance_path = "{tmp_path}"\n')
    monkeypatch.setenv("IDP_CONFIG", str(config))
    assert load_settings().issuer == "http://localhost:6000"

    # Only the issuer is read from it, and every other source comes first.
    written.write_text('issuer = "http://localhost:6000"\nlog_level = "DEBUG"\n')
    assert load_settings().log_level == "INFO"
    config.write_text(f'instance_path = "{tmp_path}"\nissuer = "http://localhost:7000"\n')
    assert load_settings().issuer == "http://localhost:7000"
    monkeypatch.setenv("IDP_ISSUER", "http://localhost:8000")
    assert load_settings().issuer == "http://localhost:8000"

    # A broken file is no file.
    written.write_text("issuer = ")
    monkeypatch.delenv("IDP_ISSUER")
    monkeypatch.delenv("IDP_CONFIG")
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    assert load_settings().issuer == "http://localhost:5000"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"issuer": "http://login.example.org", **SECRETS}, "https"),
        ({"issuer": "https://login.example.org/?a=1", **SECRETS}, "query"),
        ({"issuer": "https://login.example.org"}, "secret_key, key_encryption_key must be set"),
        ({"issuer": "ftp://x"}, "absolute http(s) URL"),
        ({"secret_key": "short"}, "at least 32 characters"),
        ({"access_token_lifetime": 5}, "access_token_lifetime"),
        ({"no_such_setting": 1}, "no_such_setting"),
        (
            {"issuer": "https://login.example.org", **SECRETS, "password_hash_memory_kib": 8192},
            "below OWASP's minimum",
        ),
        (
            {"issuer": "https://login.example.org", **SECRETS, "password_hash_time_cost": 1},
            "below OWASP's minimum",
        ),
    ],
)
def test_unsafe_or_wrong_settings_are_refused_with_a_clear_message(
    overrides: dict[str, object], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    with pytest.raises(ConfigError) as raised:
        load_settings(overrides)
    assert message in str(raised.value)


def test_missing_or_broken_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDP_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()
    broken = tmp_path / "broken.toml"
    broken.write_text("issuer = ")
    monkeypatch.setenv("IDP_CONFIG", str(broken))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_production_settings_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    settings = load_settings({"issuer": "https://login.example.org/", **SECRETS})
    assert settings.issuer == "https://login.example.org"
    assert not settings.is_local
    # OWASP's equivalents of its argon2id minimum: less memory, more iterations.
    for memory, time in ((47 * 1024, 1), (12 * 1024, 3), (7 * 1024, 5)):
        load_settings(
            {
                "issuer": "https://login.example.org/",
                **SECRETS,
                "password_hash_memory_kib": memory,
                "password_hash_time_cost": time,
            }
        )


def test_cheap_password_hashing_only_for_a_localhost_issuer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    cheap = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1}
    assert load_settings(cheap).password_hash_memory_kib == 1024
    with pytest.raises(ConfigError, match="below OWASP's minimum"):
        load_settings({"issuer": "https://login.example.org", **SECRETS, **cheap})


def test_example_config_documents_every_setting_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    text = example.read_text()
    for name in Settings.model_fields:
        assert f"{name} =" in text or f"# {name} =" in text, f"{name} is not documented"
    monkeypatch.setenv("IDP_CONFIG", str(example))
    settings = load_settings()
    assert settings.issuer == "http://localhost:5000"
    assert settings.languages == ("en", "de")


def test_passkey_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    settings = load_settings()
    assert settings.passkey_attestation == "none"
    assert settings.webauthn_refuse_sign_count_regression is True
    assert load_settings({"passkey_attestation": "direct"}).passkey_attestation == "direct"
    with pytest.raises(ConfigError, match="passkey_attestation"):
        load_settings({"passkey_attestation": "enterprise"})


def test_trusted_proxies_from_toml_environment_and_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    monkeypatch.delenv("IDP_TRUSTED_PROXIES", raising=False)
    assert load_settings().trusted_proxies == 0  # default: no proxy is trusted

    config = tmp_path / "idp.toml"
    monkeypatch.setenv("IDP_CONFIG", str(config))
    config.write_text("trusted_proxies = 2\n")
    assert load_settings().trusted_proxies == 2
    config.write_text('trusted_proxies = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]\n')
    assert load_settings().trusted_proxies == ("10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32")
    config.write_text("trusted_proxies = []\n")
    assert not load_settings().trusted_proxies

    # The environment: a count, or addresses separated by commas (not JSON).
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", "1")
    assert load_settings().trusted_proxies == 1
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7,::1")
    assert load_settings().trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32", "::1/128")
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", "")
    assert load_settings().trusted_proxies == 0
    assert load_settings({"trusted_proxies": ["127.0.0.1"]}).trusted_proxies == ("127.0.0.1/32",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1/8", "trusted_proxies: 10.0.0.1/8 has host bits set"),
        ("proxy.internal", "trusted_proxies: 'proxy.internal' does not appear to be"),
        ("10.0.0.0/8,,192.0.2.7", "trusted_proxies: '' is not an IP address or network"),
        ("-1", "trusted_proxies: '-1' does not appear to be"),
    ],
)
def test_trusted_proxies_refused_from_the_environment(
    value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    monkeypatch.setenv("IDP_TRUSTED_PROXIES", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "trusted_proxies must be a number of proxies or a list"),
        (-1, "trusted_proxies must not be negative"),
        (1.5, "trusted_proxies must be a number of proxies or a list"),
        ([10], "trusted_proxies: 10 is not an IP address or network"),
        (["2001:db8::1/32"], "trusted_proxies: 2001:db8::1/32 has host bits set"),
    ],
)
def test_trusted_proxies_refused_from_a_mapping(
    value: object, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    monkeypatch.delenv("IDP_TRUSTED_PROXIES", raising=False)
    with pytest.raises(ConfigError) as raised:
        load_settings({"trusted_proxies": value})
    assert message in str(raised.value)


def test_the_match_code_has_2_to_6_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IDP_CONFIG", raising=False)
    assert load_settings().approval_code_digits == 2
    assert load_settings({"approval_code_digits": 6}).approval_code_digits == 6
    for digits, bound in ((1, "greater than or equal to 2"), (7, "less than or equal to 6")):
        with pytest.raises(ConfigError) as raised:
            load_settings({"approval_code_digits": digits})
        assert "approval_code_digits" in str(raised.value) and bound in str(raised.value)
