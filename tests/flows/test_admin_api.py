"""The admin JSON API (/admin/api/v1) against a live IdP: every operation with
a real admin token, what each change does to the protocol, and who is refused.

Tokens come from the token endpoint (client credentials, or the authorization
code flow for an administrator); nothing of ours is mocked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import requests

from idp.oidc.models import SUPPORTED_SCOPES

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser, RelyingParty, query
from .test_approvals import enrolled, match_code, proceed, to_waiting_page

ADMIN = "admin"


def client_token(idp: Any, client_id: str, secret: str, scope: str = ADMIN) -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(client_id, secret),
        timeout=30,
    )


@dataclass
class AdminApi:
    """Calls /admin/api/v1 with a bearer token."""

    base: str
    token: str | None
    client_id: str = ""
    secret: str = ""

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return requests.request(
            method, f"{self.base}/admin/api/v1{path}", headers=headers, timeout=30, **kwargs
        )

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        assert response.headers["Cache-Control"] == "no-store"
        return response.json() if response.content else None


def automation(idp: Any, **fields: Any) -> AdminApi:
    """A client registered by an administrator for the admin API, and its token."""
    fields.setdefault("allowed_scopes", [ADMIN])
    client_id, secret = idp.add_client(
        name="Automation", grant_types=["client_credentials"], redirect_uris=[], **fields
    )
    assert secret is not None
    issued = client_token(idp, client_id, secret)
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == ADMIN
    return AdminApi(idp.url, issued.json()["access_token"], client_id, secret)


def assert_refused(response: requests.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    if error == "missing_token":
        # RFC 6750 §3.1: no error code when no credentials were sent.
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge


def events(api: AdminApi, **params: Any) -> list[dict[str, Any]]:
    return list(api.ok("GET", "/audit/events", params=params)["items"])


# --- clients -------------------------------------------------------------------------


def test_client_operations(idp: Any) -> None:
    api = automation(idp)
    actor = f"api:{api.client_id}"
    listed = api.ok("GET", "/clients")
    assert [c["client_id"] for c in listed["items"]] == [api.client_id]
    assert listed["total"] == 1 and listed["next_offset"] is None
    assert listed["items"][0]["scope"] == ADMIN and listed["items"][0]["has_secret"]

    created = api.ok(
        "POST",
        "/clients",
        201,
        json={
            "client_name": "Payroll",
            "client_id": "payroll",
            "grant_types": ["client_credentials"],
            "scope": "openid profile",
            "access_token_lifetime": 600,
            "logo_uri": "https://payroll.example.com/logo.png",
        },
    )
    secret = created["client_secret"]
    assert secret and created["client_id"] == "payroll" and created["access_token_lifetime"] == 600
    assert client_token(idp, "payroll", secret, "openid").status_code == 200
    shown = api.ok("GET", "/clients/payroll")
    assert "client_secret" not in shown and secret not in str(shown)
    assert shown["scope"] == "openid profile" and shown["disabled"] is False

    # Every field is checked, and the error object names the field at fault.
    for body, field in [
        ({"client_name": "X", "redirect_uris": ["http://app.example.com/cb"]}, "redirect_uris"),
        ({"client_name": "X", "redirect_uris": ["https://*.example.com/cb"]}, "redirect_uris"),
        ({"client_name": "X", "redirect_uris": []}, "redirect_uris"),
        ({"client_name": "X", "grant_types": ["client_credentials"], "scope": "root"}, "scope"),
        ({"client_name": "X", "client_id": "payroll", "redirect_uris": ["https://a.example/cb"]},
         "client_id"),
        ({"client_name": "", "redirect_uris": ["https://a.example/cb"]}, "client_name"),
        ({"client_name": "X", "colour": "red"}, "colour"),
        ({"client_name": "X\x00", "redirect_uris": ["https://a.example/cb"]}, "client_name"),
        ({"client_name": "X", "access_token_lifetime": 5}, "access_token_lifetime"),
    ]:  # fmt: skip
        refused = api.call("POST", "/clients", json=body)
        assert refused.status_code == 400, (body, refused.text)
        error = refused.json()
        assert error["error"] == "invalid_request" and error["error_description"]
        assert field in error["fields"], (body, error)
    not_json = api.call("POST", "/clients", data="{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_request"

    # Update: only the fields sent change.
    updated = api.ok(
        "PATCH",
        "/clients/payroll",
        json={"client_name": "Payroll 2", "logo_uri": None, "require_mfa": True},
    )
    assert updated["client_name"] == "Payroll 2" and updated["logo_uri"] is None
    assert updated["require_mfa"] and updated["scope"] == "openid profile"
    assert updated["client_secret"] is None
    bad = api.call("PATCH", "/clients/payroll", json={"grant_types": ["authorization_code"]})
    assert bad.status_code == 400 and "redirect_uris" in bad.json()["fields"]
    assert api.ok("GET", "/clients/payroll")["grant_types"] == ["client_credentials"]
    # Becoming public drops the secret; a secret method again makes a new one.
    public = api.ok(
        "PATCH",
        "/clients/payroll",
        json={
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://localhost:9/callback"],
        },
    )
    assert public["has_secret"] is False and public["client_secret"] is None
    confidential = api.ok(
        "PATCH",
        "/clients/payroll",
        json={
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["client_credentials"],
        },
    )
    new_secret = confidential["client_secret"]
    assert new_secret and confidential["has_secret"]
    assert client_token(idp, "payroll", secret, "openid").status_code == 401
    assert client_token(idp, "payroll", new_secret, "openid").status_code == 200

    # Search and pages.
    for n in range(3):
        shop = {"client_name": f"Shop {n}", "redirect_uris": ["https://shop.example/cb"]}
        api.ok("POST", "/clients", 201, json=shop)
    first = api.ok("GET", "/clients", params={"q": "shop", "limit": 2})
    assert first["total"] == 3 and len(first["items"]) == 2 and first["next_offset"] == 2
    second = api.ok("GET", "/clients", params={"q": "SHOP", "offset": 2, "limit": 2})
    assert [c["client_name"] for c in second["items"]] == ["Shop 2"]
    assert second["next_offset"] is None
    assert api.ok("GET", "/clients", params={"q": "%"})["total"] == 0
    paging = api.call("GET", "/clients", params={"limit": 501})
    assert paging.status_code == 400 and "limit" in paging.json()["fields"]

    # Disable: no tokens through the client; enable: again.
    assert api.ok("POST", "/clients/payroll/disable")["disabled"] is True
    assert client_token(idp, "payroll", new_secret, "openid").status_code == 401
    assert api.ok("POST", "/clients/payroll/enable")["disabled"] is False
    assert client_token(idp, "payroll", new_secret, "openid").status_code == 200

    # Rotate: the new secret is shown once, the old one stops working.
    rotated = api.ok("POST", "/clients/payroll/secret")
    assert rotated["client_id"] == "payroll" and rotated["client_secret"] != new_secret
    assert client_token(idp, "payroll", new_secret, "openid").status_code == 401
    assert client_token(idp, "payroll", rotated["client_secret"], "openid").status_code == 200
    public_id = api.ok("POST", "/clients", 201, json={
        "client_name": "App", "token_endpoint_auth_method": "none",
        "redirect_uris": ["com.example.app:/cb"]})["client_id"]  # fmt: skip
    no_secret = api.call("POST", f"/clients/{public_id}/secret")
    assert no_secret.status_code == 400
    assert "token_endpoint_auth_method" in no_secret.json()["fields"]

    # Delete.
    assert api.ok("DELETE", "/clients/payroll", 204) is None
    gone = api.call("GET", "/clients/payroll")
    assert gone.status_code == 404 and gone.json()["error"] == "not_found"
    assert api.call("DELETE", "/clients/payroll").status_code == 404
    assert client_token(idp, "payroll", rotated["client_secret"], "openid").status_code == 401

    # Every change is in the audit log with the API client as the actor.
    logged = events(api, client_id="payroll")
    assert [e["type"] for e in logged] == [
        "client_deleted", "client_secret_rotated", "client_enabled", "client_disabled",
        "client_updated", "client_updated", "client_updated", "client_created",
    ]  # fmt: skip
    assert {e["actor"] for e in logged} == {actor}
    assert logged[-2]["detail"]["fields"] == ["client_name", "logo_uri", "require_mfa"]


# --- users and devices ---------------------------------------------------------------


def test_user_and_device_operations(idp: Any) -> None:
    api = automation(idp)
    user, device = enrolled(idp, email="erika@example.org", given_name="Erika")
    other = idp.add_user(username="max", family_name="Mustermann")

    found = api.ok("GET", "/users", params={"q": "erika"})
    assert [u["sub"] for u in found["items"]] == [user.sub] and found["total"] == 1
    assert api.ok("GET", "/users", params={"q": "muster"})["items"][0]["sub"] == other.sub
    everyone = api.ok("GET", "/users", params={"limit": 1})
    assert everyone["total"] == 2 and everyone["next_offset"] == 1
    # In any case, umlauts too (SQL's lower() folds only ASCII on SQLite).
    umlaut = idp.add_user(username="ÖzilFan", email="Ärger@Example.org")
    for q in ("özil", "ÖZILFAN", "ärger@"):
        found = api.ok("GET", "/users", params={"q": q})
        assert [u["sub"] for u in found["items"]] == [umlaut.sub], q

    details = api.ok("GET", f"/users/{user.sub}")
    assert details["access_number"] == user.access_number and details["status"] == "active"
    assert [d["id"] for d in details["devices"]] == [device.device_id]
    assert details["devices"][0]["kind"] == "cli" and details["passkeys"] == []
    assert details["restoration"] == {"active": False, "activated_at": None}
    assert "device_enrolled" in {e["type"] for e in details["recent_events"]}
    assert api.call("GET", "/users/nobody").status_code == 404

    # Lock: no password login; unlock: again.
    locked = api.ok("POST", f"/users/{user.sub}/lock")
    assert locked["status"] == "locked"
    rp = RelyingParty(idp.url, *idp.add_client(first_party=True))
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert "code=" not in page.headers.get("Location", "")
    assert api.ok("POST", f"/users/{user.sub}/unlock")["status"] == "active"

    reset = api.ok("POST", f"/users/{user.sub}/force-password-reset")
    assert reset["password_reset_required"] is True

    assert api.ok("PUT", f"/users/{other.sub}/admin")["is_admin"] is True
    assert api.ok("GET", f"/users/{other.sub}")["is_admin"] is True
    assert api.ok("DELETE", f"/users/{other.sub}/admin")["is_admin"] is False

    # Devices: list, and remove at once (the device's token is dead).
    listed = api.ok("GET", f"/users/{user.sub}/devices")
    assert [d["id"] for d in listed["items"]] == [device.device_id] and listed["total"] == 1
    assert api.call("DELETE", f"/users/{other.sub}/devices/{device.device_id}").status_code == 404
    assert api.ok("DELETE", f"/users/{user.sub}/devices/{device.device_id}", 204) is None
    assert device.call("GET", "/status").json()["error"] == "device_revoked"
    assert api.ok("GET", f"/users/{user.sub}/devices")["items"] == []
    assert api.call("DELETE", f"/users/{user.sub}/devices/{device.device_id}").status_code == 404

    actor = f"api:{api.client_id}"
    changes = ["user_locked", "user_unlocked", "password_reset_forced", "device_deleted"]
    logged = events(api, user=user.sub, type=changes)
    assert [e["type"] for e in logged] == [
        "device_deleted",
        "password_reset_forced",
        "user_unlocked",
        "user_locked",
    ]
    assert {e["actor"] for e in logged} == {actor}
    assert logged[0]["device_id"] == device.device_id and logged[0]["user"] == user.sub
    granted = events(api, user=other.sub)
    assert [e["type"] for e in granted] == ["admin_revoked", "admin_granted"]


# --- keys and the audit log ----------------------------------------------------------


def test_keys_and_audit_log(idp: Any) -> None:
    api = automation(idp)
    keys = api.ok("GET", "/keys")
    assert sorted(k["alg"] for k in keys["items"]) == ["ES256", "RS256"]
    assert {k["state"] for k in keys["items"]} == {"active"} and keys["total"] == 2

    rotated = api.ok("POST", "/keys/rotate", json={"algs": ["ES256"]})["rotated"]
    assert [k["alg"] for k in rotated] == ["ES256"] and rotated[0]["state"] == "active"
    after = {k["kid"]: k for k in api.ok("GET", "/keys")["items"]}
    old_es = next(k for k in keys["items"] if k["alg"] == "ES256")["kid"]
    assert len(after) == 3 and after[old_es]["state"] == "retiring"
    assert after[old_es]["retire_after"]
    assert api.ok("POST", "/keys/retire-expired") == {"retired": 0}
    both = api.ok("POST", "/keys/rotate")["rotated"]  # no body: every algorithm
    assert sorted(k["alg"] for k in both) == ["ES256", "RS256"]
    bad = api.call("POST", "/keys/rotate", json={"algs": ["HS256"]})
    assert bad.status_code == 400 and "algs.0" in bad.json()["fields"]

    vapid = api.ok("GET", "/keys/vapid")["public_key"]
    with idp.app.app_context():
        assert vapid == idp.app.extensions["idp"].push.public_key()

    # The audit log: filters, pages, export as JSON lines.
    logged = events(api, type="signing_key_rotated")
    assert len(logged) == 3 and {e["actor"] for e in logged} == {f"api:{api.client_id}"}
    assert {e["detail"]["alg"] for e in logged} == {"ES256", "RS256"}
    first = logged[-1]
    since = api.ok("GET", "/audit/events", params={"type": "signing_key_rotated",
                                                   "since": first["at"], "limit": 2})  # fmt: skip
    assert since["total"] == 3 and len(since["items"]) == 2 and since["next_offset"] == 2
    assert events(api, type="signing_key_rotated", until=first["at"]) == []
    assert events(api, user="nobody") == []
    assert "signing_key_rotated" in api.ok("GET", "/audit/types")["types"]
    bad_time = api.call("GET", "/audit/events", params={"since": "yesterday"})
    assert bad_time.status_code == 400 and "since" in bad_time.json()["fields"]

    export = api.call("GET", "/audit/export", params={"type": "signing_key_rotated"})
    assert export.status_code == 200
    assert export.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [e["id"] for e in lines] == sorted(e["id"] for e in logged)  # oldest first
    assert lines[0] == logged[-1]


# --- who may call --------------------------------------------------------------------


def test_refused_tokens(idp: Any) -> None:
    api = automation(idp)
    base = api.ok("GET", "/clients")["total"]
    nobody = AdminApi(idp.url, None)
    assert_refused(nobody.call("GET", "/clients"), 401, "missing_token")
    basic = nobody.call("GET", "/clients", auth=(api.client_id, api.secret))
    assert_refused(basic, 401, "missing_token")
    assert_refused(AdminApi(idp.url, "not-a-token").call("GET", "/clients"), 401, "invalid_token")
    # The document is public; nothing else is.
    assert nobody.call("GET", "/openapi.json").status_code == 200

    # A client not allowed the admin scope cannot obtain it at all.
    plain_id, plain_secret = idp.add_client(
        grant_types=["client_credentials"], redirect_uris=[], allowed_scopes=list(SUPPORTED_SCOPES)
    )
    asked = client_token(idp, plain_id, plain_secret, "openid admin")
    assert asked.status_code == 400 and asked.json()["error"] == "invalid_scope"
    plain = client_token(idp, plain_id, plain_secret, "openid")
    assert plain.status_code == 200 and plain.json()["scope"] == "openid"
    assert_refused(
        AdminApi(idp.url, plain.json()["access_token"]).call("GET", "/clients"),
        403,
        "insufficient_scope",
    )

    # A revoked token (RFC 7009), and one past its expiry.
    revoked = automation(idp)
    assert revoked.ok("GET", "/keys/vapid")
    requests.post(
        f"{idp.url}/revoke",
        data={"token": revoked.token},
        auth=(revoked.client_id, revoked.secret),
        timeout=30,
    ).raise_for_status()
    assert_refused(revoked.call("GET", "/keys/vapid"), 401, "invalid_token")
    expired = AdminApi(idp.url, stored_token(idp, api.client_id, expires_in=-1))
    assert_refused(expired.call("GET", "/keys/vapid"), 401, "invalid_token")

    # The grant behind a token ends: its client disabled, or not allowed admin any more.
    disabled = automation(idp)
    api.ok("POST", f"/clients/{disabled.client_id}/disable")
    assert_refused(disabled.call("GET", "/keys/vapid"), 401, "invalid_token")
    demoted = automation(idp)
    api.ok("PATCH", f"/clients/{demoted.client_id}", json={"scope": "openid"})
    assert_refused(demoted.call("GET", "/keys/vapid"), 401, "invalid_token")
    assert client_token(idp, demoted.client_id, demoted.secret).json()["error"] == "invalid_scope"

    # Nothing changed through any refused call.
    assert api.ok("GET", "/clients")["total"] == base + 4


def stored_token(idp: Any, client_id: str, *, expires_in: int) -> str:
    """An admin access token saved as the token endpoint saves one, but whose
    lifetime is already over (Redis would drop it only a little later)."""
    from idp.oidc.tokens import ACCESS_TOKENS, AccessToken
    from idp.tokens import new_token

    token, now = new_token(32), int(time.time())
    with idp.app.app_context():
        ext = idp.app.extensions["idp"]
        record = AccessToken(
            digest=ext.digester.digest(token, purpose="access-token"),
            client_id=client_id,
            scope=ADMIN,
            issued_at=now - 60,
            expires_at=now + expires_in,
        )
        ACCESS_TOKENS.put(record.digest, record, ttl=60)
    return token


def admin_login(
    idp: Any, user: Any, device: SoftDevice | None, client: tuple[str, str | None]
) -> dict[str, Any]:
    """Sign ``user`` in through ``client`` asking for the admin scope; with a
    device, the push approval is answered (an MFA login)."""
    rp = RelyingParty(idp.url, client[0], client[1])
    if device is None:
        browser = Browser(idp.url)
        url, req = rp.authorize_url(scope="openid admin")
        page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    else:
        browser, page, req = to_waiting_page(idp, rp, user, scope="openid admin")
        approval = device.approvals()[0]
        assert device.answer(approval["id"], "approve", match_code(page)).status_code == 200
        page = proceed(browser, page)
    assert page.status_code == 302, page.text[:300]
    tokens = rp.redeem(query(page.headers["Location"])["code"], req["verifier"])
    assert tokens.status_code == 200, tokens.text
    return dict(tokens.json())


def test_administrators_tokens(idp: Any) -> None:
    api = automation(idp)
    admin, phone = enrolled(idp, username="root")
    api.ok("PUT", f"/users/{admin.sub}/admin")
    scopes = [*SUPPORTED_SCOPES, ADMIN]
    console = idp.add_client(first_party=True, require_mfa=True, allowed_scopes=scopes)

    # An administrator after an MFA login gets the admin scope and may call.
    tokens = admin_login(idp, admin, phone, console)
    assert tokens["scope"].split() == ["openid", ADMIN]
    own = AdminApi(idp.url, tokens["access_token"])
    assert own.ok("GET", f"/users/{admin.sub}")["is_admin"] is True
    own.ok("POST", "/clients", 201, json={"client_name": "By hand", "redirect_uris": []
                                           , "grant_types": ["client_credentials"]})  # fmt: skip
    created = events(api, type="client_created")[0]
    assert created["actor"] == f"admin:{admin.id} api:{console[0]}"
    # Not on themselves: the pages' rule holds for the API as well.
    for method, path in (("POST", "lock"), ("DELETE", "admin")):
        refused = own.call(method, f"/users/{admin.sub}/{path}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "not_on_yourself"
    assert own.ok("GET", f"/users/{admin.sub}")["status"] == "active"

    # Without a second factor, or not an administrator: no admin scope.
    password_only = idp.add_client(first_party=True, allowed_scopes=scopes)
    weak = admin_login(idp, admin, None, password_only)
    assert weak["scope"] == "openid"
    assert_refused(
        AdminApi(idp.url, weak["access_token"]).call("GET", "/clients"), 403, "insufficient_scope"
    )
    user, user_phone = enrolled(idp, username="jane")
    plain = admin_login(idp, user, user_phone, console)
    assert plain["scope"] == "openid"
    assert_refused(
        AdminApi(idp.url, plain["access_token"]).call("GET", "/users"), 403, "insufficient_scope"
    )

    # The role revoked, or the account locked: the token stops at once.
    api.ok("DELETE", f"/users/{admin.sub}/admin")
    assert_refused(own.call("GET", "/users"), 401, "invalid_token")
    api.ok("PUT", f"/users/{admin.sub}/admin")
    assert own.ok("GET", "/keys/vapid")
    api.ok("POST", f"/users/{admin.sub}/lock")
    assert_refused(own.call("GET", "/users"), 401, "invalid_token")
