"""The ``idp`` CLI's administration commands, run in-process (Click's runner
on the live IdP's app): users show / force-password-reset / admin, devices,
clients update, keys vapid and the audit log. They call the same service as
the admin API, so what they change takes effect and is audited as "cli".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import Result

from .test_admin_api import client_token
from .test_approvals import enrolled


def run(idp: Any, *args: str) -> Result:
    result = idp.app.test_cli_runner().invoke(args=list(args))
    return result


def ok(idp: Any, *args: str) -> Result:
    result = run(idp, *args)
    assert result.exit_code == 0, (args, result.output)
    return result


def as_json(idp: Any, *args: str) -> Any:
    return json.loads(ok(idp, *args, "--json").stdout)


def test_users_and_devices(idp: Any) -> None:
    user, device = enrolled(idp, email="erika@example.org", username="erika")

    shown = as_json(idp, "users", "show", "erika")
    assert shown["sub"] == user.sub and shown["status"] == "active"
    assert [d["id"] for d in shown["devices"]] == [device.device_id]
    assert shown["passkeys"] == [] and shown["restoration"]["active"] is False
    assert "device_enrolled" in {e["type"] for e in shown["recent_events"]}
    text = ok(idp, "users", "show", user.sub).stdout  # by sub, too
    assert device.device_id in text and "restoration" in text and "device_enrolled" in text
    missing = run(idp, "users", "show", "nobody")
    assert missing.exit_code != 0 and "no user nobody" in missing.output

    ok(idp, "users", "force-password-reset", user.access_number)
    assert as_json(idp, "users", "show", "erika")["password_reset_required"] is True
    assert "is an administrator" in ok(idp, "users", "admin", "grant", "erika").stdout
    assert as_json(idp, "users", "list", "--search", "erika")[0]["is_admin"] is True
    assert "is not an administrator" in ok(idp, "users", "admin", "revoke", "erika").stdout
    assert run(idp, "users", "admin", "promote", "erika").exit_code != 0

    listed = as_json(idp, "devices", "list", "erika@example.org")
    assert [d["id"] for d in listed] == [device.device_id] and listed[0]["kind"] == "cli"
    assert device.device_id in ok(idp, "devices", "list", "erika").stdout
    removed = ok(idp, "devices", "remove", "erika", device.device_id)
    assert "0 device(s) left" in removed.stdout
    assert device.call("GET", "/status").json()["error"] == "device_revoked"
    again = run(idp, "devices", "remove", "erika", device.device_id)
    assert again.exit_code != 0 and "no active device" in again.output
    assert as_json(idp, "devices", "list", "erika") == []

    changes = ["device_deleted", "admin_revoked", "admin_granted", "password_reset_forced"]
    logged = as_json(idp, "audit", "list", "--user", "erika")
    assert [e["type"] for e in logged][:4] == changes
    assert {e["actor"] for e in logged[:4]} == {"cli"}


def test_clients_update(idp: Any) -> None:
    # Ids are base64url and may begin with "-" (as the generated ones do): still the id.
    created = as_json(
        idp, "clients", "add", "--name", "Shop", "--client-id=-shop",
        "--redirect-uri", "https://shop.example/cb", "--logo-uri", "https://shop.example/l.png",
        "--access-token-lifetime", "600",
    )  # fmt: skip
    assert created["logo_uri"] and created["access_token_lifetime"] == 600

    updated = ok(
        idp, "clients", "update", "-shop", "--name", "Shop 2", "--logo-uri", "",
        "--redirect-uri", "https://shop.example/a", "--redirect-uri", "https://shop.example/b",
        "--first-party", "--access-token-lifetime", "0",
    )  # fmt: skip
    assert updated.stdout.strip() == "updated -shop"
    shown = as_json(idp, "clients", "show", "-shop")
    assert shown["client_name"] == "Shop 2" and shown["logo_uri"] is None
    assert shown["redirect_uris"] == ["https://shop.example/a", "https://shop.example/b"]
    assert shown["first_party"] is True and shown["access_token_lifetime"] is None
    assert shown["token_endpoint_auth_method"] == "client_secret_basic"

    # Refused with the field's message, and nothing changes.
    bad = run(idp, "clients", "update", "-shop", "--redirect-uri", "http://shop.example/cb")
    assert bad.exit_code != 0 and "redirect_uris" in bad.output and "https" in bad.output
    assert as_json(idp, "clients", "show", "-shop")["redirect_uris"][0] == "https://shop.example/a"
    assert run(idp, "clients", "update", "nope", "--name", "X").exit_code != 0
    unknown_acr = run(idp, "clients", "update", "-shop", "--default-acr", "urn:example:gold")
    assert unknown_acr.exit_code == 1 and "default_acr" in unknown_acr.output

    # To client credentials with the admin scope: a new secret is printed once.
    public = ok(idp, "clients", "update", "-shop", "--auth-method", "none", "--no-first-party")
    assert "client_secret" not in public.stdout
    assert as_json(idp, "clients", "show", "-shop")["has_secret"] is False
    secret_out = ok(
        idp, "clients", "update", "-shop", "--auth-method", "client_secret_basic",
        "--grant-type", "client_credentials", "--redirect-uri", "", "--scope", "admin",
    ).stdout  # fmt: skip
    secret = secret_out.split("client_secret:")[1].strip()
    issued = client_token(idp, "-shop", secret)
    assert issued.status_code == 200 and issued.json()["scope"] == "admin"

    assert [c["client_id"] for c in as_json(idp, "clients", "list", "--search", "SHOP")] == [
        "-shop"
    ]
    assert as_json(idp, "clients", "list", "--search", "nothing") == []
    logged = as_json(idp, "audit", "list", "--client", "-shop", "--type", "client_updated")
    assert len(logged) == 3 and {e["actor"] for e in logged} == {"cli"}
    assert logged[-1]["detail"]["fields"] == [
        "access_token_lifetime", "client_name", "first_party", "logo_uri", "redirect_uris"
    ]  # fmt: skip


def test_keys_and_audit_log(idp: Any) -> None:
    ok(idp, "keys", "rotate", "--alg", "RS256")
    with idp.app.app_context():
        assert (
            ok(idp, "keys", "vapid").stdout.strip() == idp.app.extensions["idp"].push.public_key()
        )
    user = idp.add_user(username="max")
    ok(idp, "users", "lock", "max")
    ok(idp, "users", "unlock", "max")

    text = ok(idp, "audit", "list").stdout.splitlines()
    assert "user_unlocked" in text[0] and "actor=cli" in text[0] and f"user={user.sub}" in text[0]
    locked = as_json(idp, "audit", "list", "--type", "user_locked", "--type", "user_unlocked")
    assert [e["type"] for e in locked] == ["user_unlocked", "user_locked"]
    assert len(as_json(idp, "audit", "list", "--limit", "1")) == 1
    paged = ok(idp, "audit", "list", "--limit", "1")
    assert "--offset 1" in paged.stderr

    today = datetime.now(UTC)
    tomorrow = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    assert as_json(idp, "audit", "list", "--since", tomorrow) == []
    assert as_json(idp, "audit", "list", "--until", yesterday) == []
    assert len(as_json(idp, "audit", "list", "--since", yesterday, "--user", "max")) == 2
    assert run(idp, "audit", "list", "--since", "last week").exit_code != 0

    exported = ok(idp, "audit", "export", "--since", yesterday).stdout.splitlines()
    events = [json.loads(line) for line in exported]
    assert [e["type"] for e in events][-3:] == [
        "signing_key_rotated", "user_locked", "user_unlocked"
    ]  # fmt: skip
    assert events == sorted(events, key=lambda e: e["id"])  # oldest first
    only = ok(idp, "audit", "export", "--type", "user_locked").stdout.splitlines()
    assert [json.loads(line)["user"] for line in only] == [user.sub]
