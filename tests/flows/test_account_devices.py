"""Devices on the account page, and the step-up to MFA after a direct sign-in.

A direct sign-in at /login gives a password session. What needs more
(deleting a device, adding one, changing passkeys) asks for a recent
confirmation: "Confirm in your app" runs the waiting page of a client's login
for a login transaction of the account itself, and a software device
(tests/flows/devices.py) answers the push over the device API; "Confirm with
your passkey" runs the passkey page. Afterwards the browser is back on the
page that asked, with a fresh MFA session.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser, form_fields
from .test_approvals import enrolled, match_code, mfa_client, proceed, to_waiting_page
from .test_i18n import switch_link
from .test_passkeys import data_of, post_json, register, use_passkey

ACR_MFA = "urn:freigabe:acr:mfa"
ACCOUNT_CLIENT_ID = "freigabe:account"


# --- helpers ---------------------------------------------------------------------------


def direct_login(idp: Any, user: Any) -> tuple[Browser, requests.Response]:
    """A browser signed in at /login (no client): a password session."""
    browser = Browser(idp.url)
    account = browser.sign_in(browser.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    assert account.status_code == 200 and 'id="access-number"' in account.text, account.text[:500]
    return browser, account


def add_device(idp: Any, user: Any, name: str) -> SoftDevice:
    """Another device of ``user`` (password and SMS code, as the app does)."""
    device = SoftDevice(idp.url)
    started = device.start(identifier=user.access_number, password=PASSWORD, device_name=name)
    assert started.status_code == 201, started.text
    from .devices import last_sms_code

    done = device.complete(started.json(), last_sms_code(idp.app.instance_path))
    assert done.status_code == 201, done.text
    return device


def csrf(page: requests.Response) -> str:
    return form_fields(page.text)["csrf_token"]


def post(browser: Browser, page: requests.Response, path: str, **values: str) -> requests.Response:
    """A form on ``page`` sent to ``path`` with the page's CSRF token."""
    return browser.go(browser.issuer + path, "POST", data={"csrf_token": csrf(page), **values})


def start_step_up(
    browser: Browser, page: requests.Response, method: str = "app", next_path: str = "/account"
) -> requests.Response:
    assert f'id="step-up-{method}"' in page.text, page.text[:2000]
    return post(browser, page, "/account/confirm", method=method, next=next_path)


def approve_step_up(browser: Browser, waiting: requests.Response, device: SoftDevice) -> Any:
    """Answer the step-up's push on ``device`` and continue the waiting page;
    the page the browser returns to."""
    assert "/login/approval" in (browser.last.url if browser.last else ""), waiting.text[:500]
    assert "for your Freigabe account" in waiting.text
    pending = device.approvals()[0]
    assert pending["client_name"] == "Freigabe"
    assert pending["context"]["client_id"] == ACCOUNT_CLIENT_ID
    answered = device.answer(pending["id"], "approve", match_code(waiting))
    assert answered.status_code == 200, answered.text
    return proceed(browser, waiting)


def step_up_with_app(
    idp: Any, browser: Browser, device: SoftDevice, next_path: str = "/account"
) -> requests.Response:
    account = browser.go(f"{idp.url}/account")
    return approve_step_up(browser, start_step_up(browser, account, "app", next_path), device)


def newest_session(idp: Any, user_id: int) -> Any:
    from idp.auth.models import LoginSession
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.scalars(
            select(LoginSession)
            .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
            .order_by(LoginSession.auth_time.desc())
        ).first()
        assert row is not None
        db.session.expunge(row)
        return row


def device_row(idp: Any, device_id: str | None) -> Any:
    from idp.devices.models import Device
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(Device, device_id)
        assert row is not None
        db.session.expunge(row)
        return row


def backdate_sessions(idp: Any, user_id: int, minutes: int) -> None:
    from idp.auth.models import LoginSession
    from idp.extensions import db, utcnow

    with idp.app.app_context():
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user_id)
            .values(auth_time=utcnow() - timedelta(minutes=minutes))
        )
        db.session.commit()


def error_code(page: requests.Response) -> str:
    found = re.search(r'id="error-code">([\w-]+)<', page.text)
    assert found, page.text[:1000]
    return found.group(1)


# --- deleting a device --------------------------------------------------------------------


def test_deleting_a_device_after_a_direct_login_asks_the_app_first(idp: Any) -> None:
    user, old = enrolled(idp)  # "Test phone", enrolled first
    # A sign-in to a client waits for an approval that only the old device can answer.
    elsewhere, waiting_elsewhere, _ = to_waiting_page(idp, mfa_client(idp), user)
    status_url = re.search(r'data-status-url="([^"]+)"', waiting_elsewhere.text)
    assert status_url
    phone = add_device(idp, user, "Erika's phone")
    assert old.device_id and phone.device_id

    browser, account = direct_login(idp, user)
    assert newest_session(idp, user.id).acr != ACR_MFA
    # Both devices are listed with what the user needs to recognise them.
    assert f'id="device-{old.device_id}"' in account.text
    assert "Erika&#39;s phone" in account.text and "Command line" in account.text
    assert "set up with password and text message" in account.text
    # A password session may not add a device; the step-up is offered.
    assert 'id="add-device"' not in account.text and 'id="step-up"' in account.text
    assert 'id="step-up-passkey"' not in account.text  # no passkey: the app only

    delete_path = f"/account/devices/{old.device_id}/delete"
    asked = browser.go(idp.url + delete_path)
    assert asked.status_code == 200 and 'id="step-up-needed"' in asked.text
    assert 'id="delete-device"' not in asked.text
    # The form's endpoint refuses too, whatever the page showed.
    forced = post(browser, asked, delete_path)
    assert forced.status_code == 403 and device_row(idp, old.device_id).revoked_at is None

    # Confirm in the app: the same waiting page as a client's login; then
    # straight back to the page that asked.
    waiting = start_step_up(browser, asked, "app", delete_path)
    confirm = approve_step_up(browser, waiting, phone)
    assert browser.last is not None and browser.last.url == idp.url + delete_path
    assert confirm.status_code == 200 and 'id="delete-device"' in confirm.text
    assert "Delete the device “Test phone”?" in confirm.text
    assert 'id="last-device-warning"' not in confirm.text
    session = newest_session(idp, user.id)
    assert session.acr == ACR_MFA and set(session.amr) == {"pwd", "user", "swk", "mfa"}
    assert [e.client_id for e in idp.events("login_mfa")] == [ACCOUNT_CLIENT_ID]
    # The account transaction is no client's: it cannot produce a code.
    assert not idp.events("authorization_code_issued")

    # Without the CSRF token: refused, nothing deleted.
    no_token = browser.go(idp.url + delete_path, "POST", data={})
    assert no_token.status_code == 400 and error_code(no_token) == "csrf_failed"
    assert device_row(idp, old.device_id).revoked_at is None

    done = post(browser, confirm, delete_path)
    assert done.status_code == 200 and 'id="device-deleted"' in done.text, done.text[:1000]
    assert "Test phone" in done.text and 'id="no-device-left"' not in done.text
    assert device_row(idp, old.device_id).revoked_at is not None
    (event,) = idp.events("device_deleted")
    assert event.actor == f"user:{user.id}" and event.detail["device"] == old.device_id
    # DESIGN §4: its token stops working, and the approval only it could
    # answer is cancelled (the waiting browser elsewhere hears of it).
    revoked = old.call("GET", "/approvals")
    assert revoked.status_code == 401 and revoked.json()["error"] == "device_revoked"
    status = elsewhere.session.get(idp.url + status_url.group(1).replace("&amp;", "&"), timeout=10)
    assert status.json() == {"status": "cancelled"}
    assert phone.call("GET", "/approvals").status_code == 200

    # A second submit (double click, reload): harmless, and said so.
    again = post(browser, confirm, delete_path)
    assert again.status_code == 200 and 'id="already-deleted"' in again.text
    assert len(idp.events("device_deleted")) == 1
    listed = browser.go(f"{idp.url}/account")
    assert f'id="device-{old.device_id}"' not in listed.text
    assert f'id="device-{phone.device_id}"' in listed.text and 'id="add-device"' in listed.text


def test_the_last_device_is_deleted_only_after_a_warning(idp: Any) -> None:
    user, device = enrolled(idp)
    browser, account = direct_login(idp, user)

    # Changed one's mind on the waiting page: back to the account, and the
    # push is withdrawn from the device.
    waiting = start_step_up(browser, account)
    assert 'id="cancel"' in waiting.text and "Cancel and return to your account" in waiting.text
    assert len(device.approvals()) == 1
    back = browser.submit(waiting, "/account/confirm/cancel")
    assert browser.last is not None and browser.last.url == f"{idp.url}/account"
    assert back.status_code == 200 and device.approvals() == []
    assert newest_session(idp, user.id).acr != ACR_MFA

    # Started twice (left with the back button, then the button again): the
    # first push is withdrawn, one waits on the device.
    path = f"/account/devices/{device.device_id}/delete"
    start_step_up(browser, browser.go(f"{idp.url}/account"))
    (first,) = device.approvals()
    waiting = start_step_up(browser, browser.go(f"{idp.url}/account"), "app", path)
    (second,) = device.approvals()
    assert second["id"] != first["id"]
    page = approve_step_up(browser, waiting, device)
    assert 'id="last-device-warning"' in page.text
    assert "applications that require a confirmation will refuse you" in page.text
    assert 'name="confirm_last"' in page.text

    unconfirmed = post(browser, page, path)
    assert unconfirmed.status_code == 400 and 'id="delete-error"' in unconfirmed.text
    assert device_row(idp, device.device_id).revoked_at is None

    done = post(browser, unconfirmed, path, confirm_last="yes")
    assert done.status_code == 200 and 'id="device-deleted"' in done.text
    assert 'id="no-device-left"' in done.text
    assert f'<a href="{idp.url}/app/" id="get-device-link">' in done.text
    assert 'id="get-device-qr"' in done.text  # the steps, as on the account page
    assert device.call("GET", "/status").json()["error"] == "device_revoked"
    # The language switch on this answer to a form shows it again, in German
    # (a GET of the form's address), with the way to set up a device again.
    switched = browser.go(idp.url + switch_link(done, "de"))
    assert browser.last is not None and browser.last.url == idp.url + path
    assert switched.status_code == 200 and '<html lang="de">' in switched.text
    assert 'id="device-deleted"' in switched.text and "Gerät gelöscht" in switched.text
    assert 'id="no-device-left"' in switched.text and 'id="get-device-link"' in switched.text
    assert len(idp.events("device_deleted")) == 1
    account = browser.go(f"{idp.url}/account")
    assert 'id="no-devices"' in account.text


def test_the_language_switch_on_add_a_device_and_signed_out_leads_to_a_page(idp: Any) -> None:
    """Both pages answer a POST only; their switch leads to the page that
    has the form again (a link cannot repeat the POST)."""
    user, device = enrolled(idp)
    browser, _ = direct_login(idp, user)
    account = step_up_with_app(idp, browser, device)
    added = post(browser, account, "/account/devices/binding-code")
    assert added.status_code == 200 and 'id="binding-code"' in added.text
    # A code is shown once: the switch leads to the account, whose "Add a
    # device" makes a new one, now in German.
    switched = browser.go(idp.url + switch_link(added, "de"))
    assert browser.last is not None and browser.last.url == f"{idp.url}/account"
    assert switched.status_code == 200 and '<html lang="de">' in switched.text
    again = post(browser, switched, "/account/devices/binding-code")
    assert 'id="binding-code"' in again.text and "<h1>Gerät hinzufügen</h1>" in again.text

    signed_out = post(browser, switched, "/account/logout")  # the account page's form
    assert "Sie sind abgemeldet" in signed_out.text
    login = browser.go(idp.url + switch_link(signed_out, "en"))
    assert browser.last is not None and browser.last.url == f"{idp.url}/login"
    assert login.status_code == 200 and '<html lang="en">' in login.text
    assert 'name="password"' in login.text


def test_a_stale_confirmation_asks_again(idp: Any) -> None:
    user, device = enrolled(idp)
    browser, _ = direct_login(idp, user)
    account = step_up_with_app(idp, browser, device)
    assert 'id="add-device"' in account.text and 'id="step-up"' not in account.text

    # Eleven minutes later the MFA session still signs the user in, but a
    # change asks for a new confirmation.
    backdate_sessions(idp, user.id, minutes=11)
    account = browser.go(f"{idp.url}/account")
    assert newest_session(idp, user.id).acr == ACR_MFA
    assert 'id="add-device"' not in account.text and 'id="step-up-app"' in account.text
    forced = post(browser, account, "/account/devices/binding-code")
    assert 'id="binding-code"' not in forced.text
    path = f"/account/devices/{device.device_id}/delete"
    assert 'id="step-up-needed"' in browser.go(idp.url + path).text
    refused = post(browser, account, path, confirm_last="yes")
    assert refused.status_code == 403 and device_row(idp, device.device_id).revoked_at is None

    page = step_up_with_app(idp, browser, device, path)
    assert 'id="delete-device"' in page.text


# --- renaming ----------------------------------------------------------------------------


def test_rename_a_device(idp: Any) -> None:
    from idp.devices.models import Device
    from idp.extensions import db, utcnow
    from idp.oidc.clients import ClientError

    user, device = enrolled(idp)
    other, strangers = enrolled(idp, phone_number="+49 151 7654321")
    browser, account = direct_login(idp, user)
    path = f"/account/devices/{device.device_id}/rename"
    assert f'href="{path}"' in account.text

    # A name grants nothing: a password session may rename.
    form = browser.go(idp.url + path)
    assert form.status_code == 200 and 'value="Test phone"' in form.text
    renamed = post(browser, form, path, name="  Küchen-Tablet   Erika ")
    assert browser.last is not None and browser.last.url == f"{idp.url}/account"
    assert renamed.status_code == 200 and "Küchen-Tablet Erika" in renamed.text
    listed = device.call("GET", "/devices").json()["devices"]
    assert [d["name"] for d in listed] == ["Küchen-Tablet Erika"]
    (event,) = idp.events("device_renamed")
    assert event.actor == f"user:{user.id}" and event.detail["old_name"] == "Test phone"

    # Bad names: a clear error beside the field, the typed value kept.
    for typed, expected in (
        ("   ", "Please enter a name"),
        ("x" * 101, "at most 100 characters"),
        ("Phone\x07", "cannot be used"),
    ):
        refused = post(browser, form, path, name=typed)
        assert refused.status_code == 400 and 'id="rename-error"' in refused.text, typed
        assert expected in refused.text
        if typed.isprintable():
            assert f'value="{typed}"' in refused.text
    assert device_row(idp, device.device_id).name == "Küchen-Tablet Erika"

    # Without the CSRF token: refused.
    no_token = browser.go(idp.url + path, "POST", data={"name": "Sneaky"})
    assert no_token.status_code == 400 and error_code(no_token) == "csrf_failed"
    # Another user's device, or none: not found, in a page.
    for foreign in (strangers.device_id, "no-such-device"):
        for method in ("GET", "POST"):
            data = {"csrf_token": csrf(form), "name": "Mine now"}
            page = browser.go(f"{idp.url}/account/devices/{foreign}/rename", method, data=data)
            assert page.status_code == 404 and error_code(page) == "device_not_found"
            assert "<html" in page.text
        delete = browser.go(f"{idp.url}/account/devices/{foreign}/delete")
        assert delete.status_code == 404 and error_code(delete) == "device_not_found"
    assert device_row(idp, strangers.device_id).name == "Test phone"
    assert len(idp.events("device_renamed")) == 1

    # A device restored in its veto window is marked on the list.
    with idp.app.app_context():
        db.session.execute(
            update(Device)
            .where(Device.id == device.device_id)
            .values(pending_until=utcnow() + timedelta(hours=1))
        )
        db.session.commit()
    assert 'class="small error device-pending"' in browser.go(f"{idp.url}/account").text

    # The account page's client id cannot be registered by a client.
    with pytest.raises(ClientError):
        idp.add_client(client_id=ACCOUNT_CLIENT_ID)
    assert other.id != user.id

    # The name of another of the user's devices: refused beside the field (issue 14, 6b).
    from .test_device_delete import binding_device

    binding_device(idp, user, device_name="Tablet", kind="ipad")
    taken = post(browser, form, path, name=" tablet")
    assert taken.status_code == 400 and 'id="rename-error"' in taken.text
    assert "Another of your devices already has this name" in taken.text
    assert device_row(idp, device.device_id).name == "Küchen-Tablet Erika"


# --- passkeys ------------------------------------------------------------------------------


def test_passkeys_can_be_managed_after_a_direct_login_through_the_step_up(idp: Any) -> None:
    user, device = enrolled(idp)
    browser, account = direct_login(idp, user)
    assert 'id="passkey-mfa-required"' in account.text and 'id="passkey-add"' not in account.text
    refused = post_json(browser, account, "/account/passkeys/options", {"name": "Laptop"})
    assert refused.status_code == 403 and refused.json()["error"] == "mfa_required"

    account = step_up_with_app(idp, browser, device)
    assert 'id="passkey-add"' in account.text
    key = register(browser, "Laptop")

    # The next direct sign-in may confirm with the passkey as well.
    browser, account = direct_login(idp, user)
    assert 'id="step-up-app"' in account.text and 'id="step-up-passkey"' in account.text
    page = start_step_up(browser, account, "passkey")
    assert "/login/passkey/confirm" in (browser.last.url if browser.last else "")
    assert "for your Freigabe account" in page.text
    assert 'id="use-app"' in page.text and "Cancel and return to your account" in page.text
    _, answer = use_passkey(browser, page, key, box="passkey-confirm")
    assert answer.status_code == 200 and answer.json()["redirect"] == "/account", answer.text
    session = newest_session(idp, user.id)
    assert session.acr == ACR_MFA and set(session.amr) == {"pwd", "swk", "user", "mfa"}
    account = browser.go(idp.url + answer.json()["redirect"])
    assert 'id="passkey-add"' in account.text and 'id="add-device"' in account.text
    passkey_id = re.search(r'id="passkey-([\w-]+)"><strong', account.text)
    assert passkey_id
    deleted = post(browser, account, f"/account/passkeys/{passkey_id.group(1)}/delete")
    assert deleted.status_code == 200 and 'id="no-passkeys"' in deleted.text
    # Used once: the step-up's transaction is finished.
    again = post_json(browser, page, data_of(page, "passkey-confirm")["options"])
    assert again.status_code == 400


# --- in a real browser ---------------------------------------------------------------------


def test_the_step_up_continues_by_itself_in_a_browser(idp: Any, new_context: Any) -> None:
    from playwright.sync_api import expect

    from .browser import screenshot

    user, device = enrolled(idp)
    page = new_context().new_page()
    page.goto(f"{idp.url}/login")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{idp.url}/account")
    screenshot(page, "account-password-session")

    page.click(f"#device-{device.device_id} a.device-delete")
    page.click("#step-up-app")
    code = page.locator("#match-code")
    expect(code).to_have_text(re.compile(r"^\d\d$"))
    screenshot(page, "account-step-up-waiting")
    (pending,) = device.approvals()
    assert device.answer(pending["id"], "approve", code.inner_text()).status_code == 200

    # Nobody clicks: the waiting page hears the approval and returns to the
    # page that asked, now with the form.
    page.wait_for_url(f"{idp.url}/account/devices/{device.device_id}/delete")
    expect(page.locator("#last-device-warning")).to_be_visible()
    screenshot(page, "account-delete-last-device")
    page.check("#confirm-last")
    page.click("#delete-device")
    expect(page.locator("#device-deleted")).to_contain_text("Test phone")
    assert device.call("GET", "/status").json()["error"] == "device_revoked"
    # No device left, and no dead end: the page says what to do next and
    # offers the app (link, QR code, the steps in the words /app/ shows).
    expect(page.locator("#no-device-left")).to_contain_text("You have no device left")
    guide = page.locator("#get-device")
    expect(guide).to_contain_text("Set up this browser as a device")
    expect(guide).to_contain_text(user.access_number)
    expect(page.locator("#get-device-qr")).to_be_visible()
    expect(page.locator("#back-to-account")).to_be_visible()
    screenshot(page, "account-device-deleted-last")
    page.click("#get-device-link")
    page.wait_for_url(f"{idp.url}/app/")
    expect(page.locator("body")).to_have_attribute("data-app-state", "enrol")
