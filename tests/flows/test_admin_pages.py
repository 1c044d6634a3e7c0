"""The admin pages (/admin) through their forms, with a requests browser.

An administrator signs in at /login (a signed-out browser is sent there and
back), confirms with the software device (tests/flows/devices.py) answering
the push as on the account page, and then uses every page: clients, initial
access tokens, users and devices, keys and the audit log. Also: a non-admin
gets a 403 page, an idle admin session asks for the confirmation again, a form
without its CSRF token is refused, and a password reset forced here must be
done in the next login before anything else happens.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any

import requests

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser, RelyingParty, form_fields, query
from .test_account_devices import approve_step_up, csrf
from .test_approvals import enrolled
from .test_i18n import switch_link

NEW_PASSWORD = "Staple-Battery-42"


# --- helpers ---------------------------------------------------------------------------


def make_admin(idp: Any, user: Any) -> None:
    from idp.accounts.models import User
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(User, user.id)
        row.is_admin = True
        db.session.commit()


def admin_with_device(idp: Any, **fields: Any) -> tuple[Any, SoftDevice]:
    user, device = enrolled(idp, **fields)
    make_admin(idp, user)
    return user, device


def confirm_with_app(
    browser: Browser, page: requests.Response, device: SoftDevice
) -> requests.Response:
    """The admin step-up page: "Confirm in your app", answered on ``device``."""
    assert 'id="step-up-app"' in page.text, page.text[:2000]
    fields = form_fields(page.text)
    assert fields["next"].startswith("/admin"), fields
    waiting = browser.go(
        browser.issuer + "/admin/confirm",
        "POST",
        data={"csrf_token": fields["csrf_token"], "next": fields["next"], "method": "app"},
    )
    return approve_step_up(browser, waiting, device)


def admin_session(idp: Any, user: Any, device: SoftDevice) -> tuple[Browser, requests.Response]:
    """A browser that signed in at /login from /admin and confirmed in the app."""
    browser = Browser(idp.url)
    login = browser.go(f"{idp.url}/admin/")
    assert browser.last is not None and "/login?next=" in browser.last.url, browser.last.url
    confirm = browser.sign_in(login, user.access_number, PASSWORD)
    assert browser.last is not None and browser.last.url == f"{idp.url}/admin/"
    assert 'id="admin-needs-mfa"' in confirm.text, confirm.text[:2000]
    home = confirm_with_app(browser, confirm, device)
    assert home.status_code == 200 and 'id="admin-home"' in home.text, home.text[:2000]
    return browser, home


def get(browser: Browser, path: str, **params: Any) -> requests.Response:
    return browser.go(browser.issuer + path, params=params)


def send(browser: Browser, page: requests.Response, path: str, **values: Any) -> requests.Response:
    """A form on ``page`` posted to ``path`` with the page's CSRF token."""
    return browser.go(browser.issuer + path, "POST", data={"csrf_token": csrf(page), **values})


def by_id(page: requests.Response, element_id: str) -> str:
    """The text of the element with this id (tags inside it dropped)."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page.text, re.S)
    assert found, (element_id, page.text[:3000])
    return " ".join(unescape(re.sub(r"<[^>]+>", "", found.group(2))).split())


def client_form(**values: Any) -> dict[str, Any]:
    """A full client form as the page sends it (checkboxes: "yes" or absent)."""
    form: dict[str, Any] = {
        "client_id": "",
        "name": "Ledger",
        "logo_uri": "",
        "redirect_uris": "https://ledger.example/callback",
        "post_logout_redirect_uris": "",
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "jwks": "",
        "jwks_uri": "",
        "allowed_scopes": ["openid", "profile", "email"],
        "require_pkce": "yes",
        "mfa_fallback": "refuse",
        "default_acr": "",
        "contacts": "",
        "id_token_signed_response_alg": "",
        "access_token_lifetime": "",
        "refresh_token_lifetime": "",
    }
    form.update(values)
    return {k: v for k, v in form.items() if v is not None}


def secret_works(idp: Any, client_id: str, secret: str) -> bool:
    """Whether the token endpoint accepts the client's credentials: a bogus
    code is then invalid_grant, wrong credentials are invalid_client."""
    response = RelyingParty(idp.url, client_id, secret, "https://x.example/cb").redeem(
        "no-such-code", "v" * 43
    )
    error = response.json()["error"]
    assert error in ("invalid_grant", "invalid_client"), response.text
    return bool(error == "invalid_grant")


def clients_named(idp: Any, name: str) -> list[Any]:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.oidc.models import Client

    with idp.app.app_context():
        rows = list(db.session.scalars(select(Client).where(Client.name == name)))
        for row in rows:
            db.session.expunge(row)
        return rows


def user_row(idp: Any, user_id: int) -> Any:
    from idp.accounts.models import User
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(User, user_id)
        db.session.expunge(row)
        return row


# --- who may use the admin pages ------------------------------------------------------------


def test_signed_out_browsers_sign_in_first_and_non_admins_get_403(idp: Any) -> None:
    user = idp.add_user(email="erika@example.org")
    browser = Browser(idp.url)

    # Signed out: to the login page, with the way back to the admin page.
    first = browser.session.get(f"{idp.url}/admin/clients", allow_redirects=False, timeout=30)
    assert first.status_code == 302
    assert first.headers["Location"] == "/login?next=/admin/clients"

    page = browser.sign_in(browser.go(f"{idp.url}/admin/clients"), user.access_number, PASSWORD)
    assert browser.last is not None and browser.last.url == f"{idp.url}/admin/clients"
    assert page.status_code == 403
    assert 'id="admin-forbidden"' in page.text
    # The language switch of every page.
    assert 'hreflang="de"' in page.text
    # No admin operation through a non-admin session either.
    account = get(browser, "/account")
    refused = send(browser, account, "/admin/keys/rotate", algs="ES256")
    assert refused.status_code == 403 and 'id="admin-forbidden"' in refused.text
    assert not idp.events("signing_key_rotated")


def test_next_is_a_local_admin_or_account_path_only(idp: Any) -> None:
    user = idp.add_user()
    for target in ("https://evil.example/", "//evil.example/admin", "/admin/../x", "/\\evil"):
        browser = Browser(idp.url)
        login = browser.go(f"{idp.url}/login", params={"next": target})
        assert "evil" not in login.text.split("<form", 1)[1].split(">", 1)[0]
        browser.sign_in(login, user.access_number, PASSWORD)
        assert browser.last is not None and browser.last.url == f"{idp.url}/account", target


def test_an_admin_confirms_with_the_app_and_again_after_idle_time(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)

    from sqlalchemy import select

    from idp.admin.views.common import ACTIVE_SESSIONS
    from idp.auth.models import LoginSession
    from idp.extensions import db

    with idp.app.app_context():
        sid = db.session.scalars(
            select(LoginSession.id).where(
                LoginSession.user_id == user.id, LoginSession.ended_at.is_(None)
            )
        ).one()
        assert ACTIVE_SESSIONS.exists(sid)
        idle = idp.app.extensions["idp"].settings.admin_idle_timeout
        assert 0 < ACTIVE_SESSIONS.seconds_left(sid) <= idle
        # The idle time passes: the confirmation is older than the idle
        # timeout, and the mark of recent use has expired.
        login = db.session.get(LoginSession, sid)
        login.auth_time -= timedelta(seconds=idle + 1)
        db.session.commit()
        ACTIVE_SESSIONS.expire(sid)

    again = get(browser, "/admin/users")
    assert again.status_code == 200 and 'id="admin-idle"' in again.text, again.text[:2000]
    assert 'id="users"' not in again.text
    # A form sent now is refused the same way, and changes nothing; the
    # confirmation returns to the page the form belongs to.
    refused = send(browser, again, "/admin/keys/rotate", algs="ES256")
    assert refused.status_code == 403 and 'id="admin-idle"' in refused.text
    assert form_fields(refused.text)["next"] == "/admin/keys/rotate"
    assert not idp.events("signing_key_rotated")
    client_id, _secret = idp.add_client()
    refused = send(browser, again, f"/admin/clients/{client_id}/disable")
    assert refused.status_code == 403
    assert form_fields(refused.text)["next"] == f"/admin/clients/{client_id}"
    # The language switch on that page leads there too, not to the POST-only URL.
    assert switch_link(refused, "de") == f"/lang/de?next=/admin/clients/{client_id}"
    assert not idp.events("client_disabled")

    users = confirm_with_app(browser, again, device)
    assert browser.last is not None and browser.last.url == f"{idp.url}/admin/users"
    assert 'id="users"' in users.text


def test_a_passkey_sign_in_from_admin_returns_there_with_mfa(idp: Any) -> None:
    from .test_passkeys import login_page, use_passkey, user_with_passkey

    user, key = user_with_passkey(idp)
    make_admin(idp, user)
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/admin/users")
    _credential, answer = use_passkey(browser, page, key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["redirect"] == "/admin/users"
    # A passkey is both factors: no confirmation asked.
    users = get(browser, "/admin/users")
    assert 'id="users"' in users.text
    mine = get(browser, f"/admin/users/{user.sub}")
    assert "Laptop" in by_id(mine, "passkeys")


# --- clients ----------------------------------------------------------------------------


def test_clients_through_the_forms(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)

    # Validation: the field's message next to it, and what was typed kept.
    form = get(browser, "/admin/clients/new")
    assert form.status_code == 200 and 'id="client-form"' in form.text
    bad = send(
        browser,
        form,
        "/admin/clients/new",
        **client_form(name="Ledger Typed", redirect_uris="http://ledger.example/cb#frag"),
    )
    assert bad.status_code == 400
    assert "fragment" in by_id(bad, "error-redirect_uris")
    assert 'value="Ledger Typed"' in bad.text
    assert "http://ledger.example/cb#frag</textarea>" in bad.text
    bad = send(browser, form, "/admin/clients/new", **client_form(jwks="{not json"))
    assert bad.status_code == 400 and by_id(bad, "error-jwks")
    assert "{not json</textarea>" in bad.text
    bad = send(
        browser,
        form,
        "/admin/clients/new",
        **client_form(token_endpoint_auth_method="none", grant_types=["client_credentials"]),
    )
    assert bad.status_code == 400 and "confidential" in by_id(bad, "error-grant_types")
    bad = send(browser, form, "/admin/clients/new", **client_form(access_token_lifetime="soon"))
    assert bad.status_code == 400 and by_id(bad, "error-access_token_lifetime")
    # Without the CSRF token: refused, nothing registered.
    no_csrf = browser.go(f"{idp.url}/admin/clients/new", "POST", data=client_form())
    assert no_csrf.status_code == 400 and "csrf_failed" in no_csrf.text
    assert not clients_named(idp, "Ledger") and not clients_named(idp, "Ledger Typed")

    # Register: the secret is shown once, on a page nobody stores.
    created = send(
        browser,
        form,
        "/admin/clients/new",
        **client_form(
            post_logout_redirect_uris="https://ledger.example/",
            first_party="yes",
            require_mfa="yes",
            default_acr="urn:freigabe:acr:mfa",
            contacts="ops@ledger.example",
            id_token_signed_response_alg="RS256",
            access_token_lifetime="300",
            logo_uri="https://ledger.example/logo.png",
        ),
    )
    assert created.status_code == 200, created.text[:2000]
    assert created.headers["Cache-Control"] == "no-store"
    assert by_id(created, "secret-warning")
    client_id, secret = by_id(created, "client-id"), by_id(created, "client-secret")
    (row,) = clients_named(idp, "Ledger")
    assert row.client_id == client_id and row.first_party and row.require_mfa
    assert row.default_acr == "urn:freigabe:acr:mfa" and row.id_token_signed_response_alg == "RS256"
    assert row.access_token_lifetime == 300 and row.contacts == ["ops@ledger.example"]
    assert row.logo_uri == "https://ledger.example/logo.png"
    assert secret not in (row.client_secret_digest or "")
    assert secret_works(idp, client_id, secret)
    shown = get(browser, f"/admin/clients/{client_id}")
    assert secret not in shown.text and by_id(shown, "client-name") == "Ledger"
    (event,) = idp.events("client_created")
    assert event.actor == f"admin:{user.id}" and event.client_id == client_id

    # Search and paging.
    for n in range(3):
        idp.add_client(name=f"Payroll {n}")
    found = get(browser, "/admin/clients", q="payroll", limit=2)
    assert found.text.count('class="client-row"') == 2
    assert "Ledger" not in found.text.split('id="clients"')[1]
    assert by_id(found, "page-range") == "1 to 2 of 3"
    rest = get(browser, "/admin/clients", q="payroll", limit=2, offset=2)
    assert rest.text.count('class="client-row"') == 1 and 'id="page-previous"' in rest.text

    # Edit: an error keeps the input and changes nothing; then a change.
    edit = get(browser, f"/admin/clients/{client_id}/edit")
    assert "https://ledger.example/callback</textarea>" in edit.text
    wrong = send(
        browser,
        edit,
        f"/admin/clients/{client_id}/edit",
        **client_form(name="Ledger 2", redirect_uris="https://*.ledger.example/cb"),
    )
    assert wrong.status_code == 400 and "wildcard" in by_id(wrong, "error-redirect_uris")
    assert 'value="Ledger 2"' in wrong.text
    assert clients_named(idp, "Ledger")
    saved = send(
        browser,
        edit,
        f"/admin/clients/{client_id}/edit",
        **client_form(
            name="Ledger 2",
            redirect_uris="https://ledger.example/callback\nhttps://ledger.example/cb2",
        ),
    )
    assert saved.status_code == 200 and by_id(saved, "client-name") == "Ledger 2"
    (row,) = clients_named(idp, "Ledger 2")
    assert row.redirect_uris == ["https://ledger.example/callback", "https://ledger.example/cb2"]
    assert not row.require_mfa and not row.first_party  # unticked boxes are off
    assert idp.events("client_updated")

    # Rotate the secret: confirmation, the new one once, the old one dead.
    confirm = get(browser, f"/admin/clients/{client_id}/secret")
    assert 'id="confirm-rotate"' in confirm.text
    rotated = send(browser, confirm, f"/admin/clients/{client_id}/secret")
    assert rotated.headers["Cache-Control"] == "no-store"
    new_secret = by_id(rotated, "client-secret")
    assert new_secret != secret
    assert not secret_works(idp, client_id, secret)
    assert secret_works(idp, client_id, new_secret)

    # Disable: the client page says so, and /authorize refuses it without
    # redirecting; enable again.
    page = get(browser, f"/admin/clients/{client_id}")
    disabled = send(browser, page, f"/admin/clients/{client_id}/disable")
    assert 'id="client-disabled"' in disabled.text
    rp = RelyingParty(idp.url, client_id, new_secret, "https://ledger.example/callback")
    url, _req = rp.authorize_url()
    refused = requests.get(url, allow_redirects=False, timeout=30)
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert not secret_works(idp, client_id, new_secret)
    enabled = send(browser, disabled, f"/admin/clients/{client_id}/enable")
    assert 'id="client-enabled"' in enabled.text
    assert requests.get(url, allow_redirects=False, timeout=30).status_code == 302

    # Delete, after a confirmation page.
    confirm = get(browser, f"/admin/clients/{client_id}/delete")
    assert 'id="confirm-delete"' in confirm.text
    deleted = send(browser, confirm, f"/admin/clients/{client_id}/delete")
    assert browser.last is not None and browser.last.url.startswith(f"{idp.url}/admin/clients")
    assert "Ledger 2" in deleted.text  # the notice
    assert get(browser, f"/admin/clients/{client_id}").status_code == 404
    assert [e.client_id for e in idp.events("client_deleted")] == [client_id]


def test_initial_access_tokens(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)

    page = get(browser, "/admin/registration-tokens")
    assert 'id="no-tokens"' in page.text
    bad = send(browser, page, "/admin/registration-tokens", uses="0", hours="x")
    assert bad.status_code == 400 and by_id(bad, "error-uses") and by_id(bad, "error-hours")
    assert 'value="x"' in bad.text

    issued = send(browser, page, "/admin/registration-tokens", uses="1", hours="2")
    assert issued.headers["Cache-Control"] == "no-store"
    token = by_id(issued, "initial-token")
    second = by_id(
        send(browser, page, "/admin/registration-tokens", uses="3", hours="1"), "initial-token"
    )
    listing = get(browser, "/admin/registration-tokens")
    assert listing.text.count('<tr id="token-') == 2
    assert token not in listing.text and second not in listing.text

    metadata = {"client_name": "Self-registered", "redirect_uris": ["https://self.example/cb"]}
    registered = requests.post(
        f"{idp.url}/register",
        json=metadata,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text

    # Revoke the second: it is gone from the list and no longer registers.
    listing = get(browser, "/admin/registration-tokens")
    (second_id,) = re.findall(r'<tr id="token-(\d+)">', listing.text)  # the first is used up
    revoked = send(browser, listing, f"/admin/registration-tokens/{second_id}/revoke")
    assert 'id="no-tokens"' in revoked.text
    refused = requests.post(
        f"{idp.url}/register",
        json=metadata,
        headers={"Authorization": f"Bearer {second}"},
        timeout=30,
    )
    assert refused.status_code == 401
    (event,) = idp.events("initial_access_token_revoked")
    assert event.actor == f"admin:{user.id}"


# --- users and devices ---------------------------------------------------------------


def test_users_and_devices_through_the_forms(idp: Any) -> None:
    admin, admin_device = admin_with_device(idp, username="root")
    browser, _home = admin_session(idp, admin, admin_device)
    user, device = enrolled(idp, email="erika@example.org", given_name="Erika")
    idp.add_user(email="max@example.org")

    found = get(browser, "/admin/users", q=user.access_number)
    assert found.text.count('class="user-row"') == 1
    assert get(browser, "/admin/users", q="example.org").text.count('class="user-row"') == 2
    page = get(browser, f"/admin/users/{user.sub}")
    assert by_id(page, "access-number") == user.access_number
    assert f'id="device-{device.device_id}"' in page.text
    assert "Command line" in page.text  # the device's kind
    assert by_id(page, "restoration") == "not set up"
    assert 'id="no-passkeys"' in page.text
    assert 'data-type="device_enrolled"' in page.text  # recent security events

    # Lock: the user can no longer sign in; unlock.
    locked = send(browser, page, f"/admin/users/{user.sub}/lock")
    assert by_id(locked, "user-state") == "locked"
    attempt = Browser(idp.url)
    refused = attempt.sign_in(attempt.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    assert refused.status_code == 403
    unlocked = send(browser, locked, f"/admin/users/{user.sub}/unlock")
    assert by_id(unlocked, "user-state") == "active"

    # Administrator role: granted and taken away; never one's own.
    granted = send(browser, unlocked, f"/admin/users/{user.sub}/admin", action="grant")
    assert by_id(granted, "user-admin") == "yes"
    revoked = send(browser, granted, f"/admin/users/{user.sub}/admin", action="revoke")
    assert by_id(revoked, "user-admin") == "no"
    mine = get(browser, f"/admin/users/{admin.sub}")
    assert 'id="is-self"' in mine.text and 'id="lock-user"' not in mine.text
    self_revoke = send(browser, mine, f"/admin/users/{admin.sub}/admin", action="revoke")
    assert self_revoke.status_code == 409 and "your own administrator role" in by_id(
        self_revoke, "refused"
    )
    self_lock = send(browser, mine, f"/admin/users/{admin.sub}/lock")
    assert self_lock.status_code == 409 and "your own account" in by_id(self_lock, "refused")
    me = user_row(idp, admin.id)
    assert me.is_admin and me.is_active
    assert [e.type for e in idp.events("admin_granted")] == ["admin_granted"]

    # Force a password reset (the login flow: the test below).
    forced = send(browser, revoked, f"/admin/users/{user.sub}/force-password-reset")
    assert "new one must be chosen" in by_id(forced, "user-password")
    assert user_row(idp, user.id).password_reset_required

    # Remove a device, after a confirmation page: it stops working at once.
    confirm = get(browser, f"/admin/users/{user.sub}/devices/{device.device_id}/remove")
    assert by_id(confirm, "device-name") == "Test phone"
    no_csrf = browser.go(
        f"{idp.url}/admin/users/{user.sub}/devices/{device.device_id}/remove", "POST"
    )
    assert no_csrf.status_code == 400
    removed = send(browser, confirm, f"/admin/users/{user.sub}/devices/{device.device_id}/remove")
    assert 'id="no-devices"' in removed.text
    gone = device.call("GET", "/approvals")
    assert gone.status_code == 401 and gone.json()["error"] == "device_revoked"
    (event,) = idp.events("device_deleted")
    assert event.actor == f"admin:{admin.id}"
    again = get(browser, f"/admin/users/{user.sub}/devices/{device.device_id}/remove")
    assert again.status_code == 404


# --- keys and the audit log ----------------------------------------------------------------


def test_keys_and_the_audit_log(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)

    keys = get(browser, "/admin/keys")
    assert keys.text.count('class="key key-active"') == 2  # ES256 and RS256
    vapid = by_id(keys, "vapid-key")
    assert vapid == idp.app.extensions["idp"].push.public_key()
    confirm = get(browser, "/admin/keys/rotate")
    none = send(browser, confirm, "/admin/keys/rotate")
    assert none.status_code == 400 and by_id(none, "rotate-error")
    rotated = send(browser, confirm, "/admin/keys/rotate", algs="ES256")
    assert rotated.text.count('class="key key-active"') == 2
    assert rotated.text.count('class="key key-retiring"') == 1
    jwks = requests.get(f"{idp.url}/jwks.json", timeout=30).json()
    assert len(jwks["keys"]) == 3  # the retiring key is still published

    # The log: every column, the filters, paging.
    idp.add_client(name="Audited")
    log = get(browser, "/admin/audit")
    assert 'data-type="signing_key_rotated"' in log.text and 'data-type="login_mfa"' in log.text
    assert f"admin:{user.id}" in log.text
    mfa = get(browser, "/admin/audit", type="login_mfa")
    assert mfa.text.count('class="event"') == 1
    assert device.device_id and device.device_id in mfa.text  # the device column
    assert "127.0.0.1" in mfa.text
    by_user = get(browser, "/admin/audit", user=user.access_number, limit=1)
    assert by_user.text.count('class="event"') == 1 and 'id="page-next"' in by_user.text
    unknown = get(browser, "/admin/audit", user="nobody-here")
    assert unknown.status_code == 400 and by_id(unknown, "error-user")
    bad_time = get(browser, "/admin/audit", since="yesterday")
    assert bad_time.status_code == 400 and by_id(bad_time, "error-since")
    future = get(browser, "/admin/audit", since="2999-01-01T00:00")
    assert 'id="no-events"' in future.text
    past = get(browser, "/admin/audit", until="2000-01-01T00:00:00")
    assert 'id="no-events"' in past.text

    # The export: JSON lines with the same filters, as a download.
    assert 'href="/admin/audit/export?type=login_mfa"' in mfa.text
    export = browser.session.get(
        f"{idp.url}/admin/audit/export", params={"type": "login_mfa"}, timeout=30
    )
    assert export.headers["Content-Type"] == "application/x-ndjson"
    assert export.headers["Content-Disposition"].startswith("attachment")
    (line,) = [json.loads(row) for row in export.text.splitlines()]
    assert line["type"] == "login_mfa" and line["user"] == user.sub
    everything = browser.session.get(f"{idp.url}/admin/audit/export", timeout=30)
    types = [json.loads(row)["type"] for row in everything.text.splitlines()]
    assert {"login", "login_mfa", "signing_key_rotated"} <= set(types)
    # Not for anyone else.
    stranger = requests.get(f"{idp.url}/admin/audit/export", allow_redirects=False, timeout=30)
    assert stranger.status_code == 302 and "/login" in stranger.headers["Location"]


# --- a password reset forced by an administrator ---------------------------------------


def test_a_forced_password_reset_comes_first_in_the_next_login(idp: Any) -> None:
    admin, admin_device = admin_with_device(idp)
    browser, _home = admin_session(idp, admin, admin_device)
    user = idp.add_user(email="erika@example.org")
    page = get(browser, f"/admin/users/{user.sub}")
    send(browser, page, f"/admin/users/{user.sub}/force-password-reset")
    (forced,) = idp.events("password_reset_forced")
    assert forced.actor == f"admin:{admin.id}"

    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    erika = Browser(idp.url)
    url, req = rp.authorize_url()
    choose = erika.sign_in(erika.go(url), user.access_number, PASSWORD)
    assert erika.last is not None and erika.last.url == f"{idp.url}/login/new-password"
    assert 'id="password-reset-required"' in choose.text
    # Nothing else happened yet: no session (the account page asks to sign in).
    assert get(erika, "/account").text.count('name="password"') == 1
    assert user.id not in [e.user_id for e in idp.events("login")]

    # The policy, both fields alike, and not the old one; nothing echoed.
    for password, again in (
        ("short", "short"),
        (NEW_PASSWORD, NEW_PASSWORD + "x"),
        (PASSWORD, PASSWORD),
    ):
        wrong = send(erika, choose, "/login/new-password", password=password, password_again=again)
        assert wrong.status_code == 400 and by_id(wrong, "new-password-error")
        assert password not in wrong.text
    no_csrf = erika.go(
        f"{idp.url}/login/new-password",
        "POST",
        data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD},
    )
    assert no_csrf.status_code == 400
    assert user_row(idp, user.id).password_reset_required
    # Nor does the old password enrol a device in the app (path A).
    refused = SoftDevice(idp.url).start(identifier=user.access_number, password=PASSWORD)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "password_change_required"

    # Then the login continues as before: back to the client with a code.
    done = send(
        erika, choose, "/login/new-password", password=NEW_PASSWORD, password_again=NEW_PASSWORD
    )
    assert done.status_code == 302, done.text[:1000]
    back = query(done.headers["Location"])
    assert back["state"] == req["state"]
    tokens = rp.redeem(back["code"], req["verifier"])
    assert tokens.status_code == 200, tokens.text
    assert rp.validate_id_token(tokens.json()["id_token"], req["nonce"])["sub"] == user.sub
    assert not user_row(idp, user.id).password_reset_required
    (changed,) = idp.events("password_changed")
    assert changed.user_id == user.id and changed.detail["reason"] == "reset_required"
    assert [e.user_id for e in idp.events("login")] == [admin.id, user.id]

    # The old password is gone, the new one works (straight to the account).
    old = Browser(idp.url)
    assert old.sign_in(old.go(f"{idp.url}/login"), user.access_number, PASSWORD).status_code == 401
    new = Browser(idp.url)
    account = new.sign_in(new.go(f"{idp.url}/login"), user.access_number, NEW_PASSWORD)
    assert 'id="access-number"' in account.text
    # The page of the change is gone with it.
    assert get(erika, "/login/new-password").status_code == 400


def test_a_forced_reset_on_a_direct_login_returns_to_next(idp: Any) -> None:
    admin, device = admin_with_device(idp)
    from idp.accounts.models import User
    from idp.extensions import db

    with idp.app.app_context():
        db.session.get(User, admin.id).password_reset_required = True
        db.session.commit()
    browser = Browser(idp.url)
    choose = browser.sign_in(browser.go(f"{idp.url}/admin/keys"), admin.access_number, PASSWORD)
    assert browser.last is not None and browser.last.url == f"{idp.url}/login/new-password"
    confirm = send(
        browser, choose, "/login/new-password", password=NEW_PASSWORD, password_again=NEW_PASSWORD
    )
    assert browser.last is not None and browser.last.url == f"{idp.url}/admin/keys"
    keys = confirm_with_app(browser, confirm, device)
    assert 'id="signing-keys"' in keys.text
