"""Every device added to or removed from an account is told (idp.devices.changes).

Someone with the password and the phone (a swapped SIM) can add a device, so
every change goes, after it committed, to the account's e-mail address (a real
SMTP server, aiosmtpd) and as a notice to every other active device (the Web
Push stand-in, which checks VAPID and decrypts, and ``GET /device/v1/notices``):
the device's name and kind, the time, the IP address and how it happened, with
the way to remove a device that was not the user's. Each way of adding (path A
by text message or e-mail, path B, restoration) and of removing (the account
page, a device, the device itself, a refusal in the veto window, an
administrator on the admin pages, through the admin API and with ``idp``), in
English and German; and a mail server that is down fails nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from ..support.ports import free_port
from .conftest import PASSWORD, LiveIdp
from .devices import SoftDevice
from .test_account_devices import approve_step_up, direct_login, post, start_step_up
from .test_admin_api import automation
from .test_admin_cli import ok as idp_command
from .test_admin_pages import admin_session, get, make_admin, send
from .test_device_delete import binding_device, delete, device_row
from .test_restoration import (
    EMAIL,
    RestoringDevice,
    activated,
    enrolled,
    mail_code,
    restored,
    smtp_idp,
    verify_email,
)

ADDED = "A new device was added to your Freigabe ID"
REMOVED = "A device was removed from your Freigabe ID"
ADDED_DE = "Ihrer Freigabe-ID wurde ein neues Gerät hinzugefügt"
REMOVED_DE = "Von Ihrer Freigabe-ID wurde ein Gerät entfernt"


# --- helpers ---------------------------------------------------------------------------


def notices_of(device: SoftDevice) -> list[dict[str, Any]]:
    response = device.call("GET", "/notices")
    assert response.status_code == 200, response.text
    return list(response.json()["notices"])


def subscribed(device: SoftDevice, push_service: Any) -> dict[str, Any]:
    subscription: dict[str, Any] = push_service.new_subscription()
    assert device.call("PUT", "/push-subscription", json=subscription).status_code == 204
    return subscription


def lines(mail: EmailMessage) -> list[str]:
    return [line.strip() for line in mail.get_content().splitlines()]


def minute(iso: str) -> str:
    """An API time (``2026-11-24T10:00:00Z``) as the mails write it (UTC)."""
    return iso[:16].replace("T", " ")


def created_minute(idp: LiveIdp, device_id: str | None) -> str:
    assert device_id is not None
    return str(device_row(idp, device_id).created_at.strftime("%Y-%m-%d %H:%M"))


def told(mail: EmailMessage, *expected: str) -> None:
    """Each expected line is in the mail, as a line of its own."""
    found = lines(mail)
    for line in expected:
        assert line in found, (line, found)


def set_locale(idp: LiveIdp, user: Any, locale: str) -> None:
    from idp.accounts.models import User
    from idp.extensions import db

    with idp.app.app_context():
        row = db.session.get(User, user.id)
        assert row is not None
        row.locale = locale
        db.session.commit()


def about(device: SoftDevice, name: str, kind: str) -> dict[str, str]:
    assert device.device_id is not None
    return {"id": device.device_id, "name": name, "kind": kind}


# --- adding ------------------------------------------------------------------------------


def test_devices_added_with_password_and_text_message_are_told(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, push_service: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)  # path A: password, code by SMS

    # The first device: by mail (no other device to tell).
    mail = smtp_server.wait_for(EMAIL, subject=ADDED)
    assert mail["Subject"] == ADDED
    told(
        mail,
        f"A new device was added to your Freigabe ID {user.access_number}.",
        "Device: Test phone (Command line)",
        f"Time: {created_minute(idp, phone.device_id)} (UTC)",
        "IP address: 127.0.0.1",
        "How: with your password and a confirmation code sent by text message to your phone",
    )
    assert f"Not you? Remove it now: on your account page, under Devices: {idp.url}/account" in (
        lines(mail)
    )
    assert notices_of(phone) == []  # nothing about itself
    subscription = subscribed(phone, push_service)

    # A second device the same way: the phone is told too, by push and in its notices.
    tablet = RestoringDevice(idp.url)
    started = tablet.start(
        identifier=user.access_number, password=PASSWORD, device_name="Erika's tablet", kind="ipad"
    )
    assert started.status_code == 201, started.text
    from .devices import last_sms_code

    done = tablet.complete(started.json(), last_sms_code(idp.app.instance_path))
    assert done.status_code == 201, done.text
    pushed = push_service.wait_for_message(subscription, timeout=10).json()
    (notice,) = notices_of(phone)
    assert pushed == {"type": "notice", "id": notice["id"]}
    assert notice["type"] == "device_added" and notice["via"] == "password_sms"
    assert notice["device"] == about(tablet, "Erika's tablet", "ipad")
    assert notice["ip"] == "127.0.0.1" and notice["pending_until"] is None
    assert notices_of(tablet) == []  # not about itself
    told(
        smtp_server.wait_for(EMAIL, subject=ADDED),
        "Device: Erika's tablet (iPad)",
        f"Time: {minute(notice['created_at'])} (UTC)",
        "IP address: 127.0.0.1",
        "How: with your password and a confirmation code sent by text message to your phone",
    )

    # A registration that fails adds nothing, and tells nobody anything.
    refused = SoftDevice(idp.url)
    again = refused.start(identifier=user.access_number, password=PASSWORD)
    assert again.status_code == 201, again.text
    failed = refused.complete(
        again.json(), last_sms_code(idp.app.instance_path), user_verified=False
    )
    assert failed.status_code == 400 and failed.json()["error"] == "webauthn_failed"
    assert len(notices_of(phone)) == 1 and len(push_service.messages(subscription)) == 1
    assert len(smtp_server.mail_for(EMAIL, subject=ADDED)) == 2


def test_devices_added_with_an_e_mail_code_and_a_binding_code_are_told_in_german(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user = idp.add_user(email=EMAIL)  # no phone: path A sends the code by e-mail
    set_locale(idp, user, "de")
    phone = SoftDevice(idp.url)
    started = phone.start(identifier=user.access_number, password=PASSWORD)
    assert started.status_code == 201, started.text
    code = mail_code(smtp_server.wait_for(EMAIL, subject="Ihr Bestätigungscode"), 6)
    assert phone.complete(started.json(), code).status_code == 201
    mail = smtp_server.wait_for(EMAIL, subject=ADDED_DE)
    told(
        mail,
        f"Ihrer Freigabe-ID {user.access_number} wurde ein neues Gerät hinzugefügt.",
        "Gerät: Test phone (Befehlszeile)",
        f"Zeit: {created_minute(idp, phone.device_id)} (UTC)",
        "IP-Adresse: 127.0.0.1",
        "Wie: mit Ihrem Passwort und einem Bestätigungscode an Ihre E-Mail-Adresse",
    )
    assert any(line.endswith(f"{idp.url}/account") for line in lines(mail))

    # Path B: a binding code from the account page.
    laptop = binding_device(idp, user, kind="browser", device_name="Laptop")
    (notice,) = notices_of(phone)
    assert notice["type"] == "device_added" and notice["via"] == "binding_code"
    assert notice["device"] == about(laptop, "Laptop", "browser")
    assert notice["ip"] == "127.0.0.1"
    assert notices_of(laptop) == []
    told(
        smtp_server.wait_for(EMAIL, subject=ADDED_DE),
        "Gerät: Laptop (Browser)",
        f"Zeit: {minute(notice['created_at'])} (UTC)",
        "IP-Adresse: 127.0.0.1",
        "Wie: mit einem Code von der Seite „Ihr Zugang“",
    )


def test_a_restored_device_and_its_refusal_are_told(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, push_service: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=3600)
    user, phone = enrolled(idp, email=EMAIL)
    verify_email(idp, user)
    subscription = subscribed(phone, push_service)
    intruder = RestoringDevice(idp.url)
    done = restored(intruder, user, activated(idp, phone), smtp_server, name="Not mine")
    assert done.status_code == 201, done.text

    # Restoration: the one mechanism too (push 1: restore_started, 2: the device).
    pushed = push_service.wait_for_message(subscription, timeout=10, count=2).json()
    added = notices_of(phone)[0]
    assert pushed == {"type": "notice", "id": added["id"]}
    assert added["type"] == "device_restored" and added["via"] == "restoration"
    assert added["device"] == about(intruder, "Not mine", "cli")
    assert added["ip"] == "127.0.0.1" and added["pending_until"] == done.json()["pending_until"]
    mails = smtp_server.mail_for(EMAIL, subject=ADDED)
    assert len(mails) == 2  # the phone's, and this one
    told(
        mails[-1].message,
        "Device: Not mine (Command line)",
        f"Time: {minute(added['created_at'])} (UTC)",
        "IP address: 127.0.0.1",
        "How: by restoring your ID with your restoration codes",
        "It was shown a new first restoration code; the old one is no longer valid.",
    )
    assert "refuse it" in mails[-1].message.get_content()

    # Refused within the veto window: told as a removal by the phone.
    assert phone.refuse(intruder.device_id or "").status_code == 200
    pushed = push_service.wait_for_message(subscription, timeout=10, count=3).json()
    removed = notices_of(phone)[0]
    assert pushed == {"type": "notice", "id": removed["id"]}
    assert removed["type"] == "device_removed" and removed["refused"] is True
    assert removed["device"] == about(intruder, "Not mine", "cli")
    assert removed["removed_by"] == "device"
    assert removed["by_device"] == about(phone, "Test phone", "cli")
    told(
        smtp_server.wait_for(EMAIL, subject=REMOVED),
        f"A device was removed from your Freigabe ID {user.access_number}. It can no longer "
        "confirm sign-ins to your account.",
        "Device: Not mine (Command line)",
        f"Time: {minute(removed['created_at'])} (UTC)",
        "IP address: 127.0.0.1",
        'Removed by: refused in the waiting period after the restoration, on your device "Test '
        'phone" (Command line)',
    )


# --- removing ------------------------------------------------------------------------------


def test_a_device_removed_by_another_device_or_by_itself_is_told(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, push_service: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    laptop = binding_device(idp, user, kind="browser", device_name="Laptop")
    to_tablet, to_laptop = subscribed(tablet, push_service), subscribed(laptop, push_service)
    assert phone.device_id and laptop.device_id

    assert delete(tablet, phone.device_id).status_code == 200
    # Both other devices are told, the one that acted too.
    for device, subscription in ((tablet, to_tablet), (laptop, to_laptop)):
        pushed = push_service.wait_for_message(subscription, timeout=10).json()
        notice = notices_of(device)[0]
        assert pushed == {"type": "notice", "id": notice["id"]}
        assert notice["type"] == "device_removed" and notice["refused"] is False
        assert notice["device"] == about(phone, "Test phone", "cli")
        assert notice["removed_by"] == "device"
        assert notice["by_device"] == about(tablet, "Tablet", "ipad")
        assert notice["ip"] == "127.0.0.1"
    told(
        smtp_server.wait_for(EMAIL, subject=REMOVED),
        "Device: Test phone (Command line)",
        f"Time: {minute(notice['created_at'])} (UTC)",
        "IP address: 127.0.0.1",
        'Removed by: your device "Tablet" (iPad)',
    )

    # A device that removes itself (un-enrols): the others learn it was itself.
    assert delete(laptop, laptop.device_id).status_code == 200
    push_service.wait_for_message(to_tablet, timeout=10, count=2)
    notice = notices_of(tablet)[0]
    assert notice["device"] == about(laptop, "Laptop", "browser")
    assert notice["by_device"] == notice["device"] and notice["removed_by"] == "device"
    assert len(push_service.messages(to_laptop)) == 1  # nothing about itself
    told(
        smtp_server.wait_for(EMAIL, subject=REMOVED),
        "Device: Laptop (Browser)",
        f"Time: {minute(notice['created_at'])} (UTC)",
        "Removed by: the device itself",
    )
    # Renaming is no change to be told.
    renamed = tablet.call("POST", f"/devices/{tablet.device_id}/rename", json={"name": "Mine"})
    assert renamed.status_code == 200
    assert len(notices_of(tablet)) == 3 and len(smtp_server.mail_for(EMAIL, subject=REMOVED)) == 2


def test_a_device_removed_on_the_account_page_is_told_in_german(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user, phone = enrolled(idp, email=EMAIL)
    set_locale(idp, user, "de")
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    browser, _account = direct_login(idp, user)
    path = f"/account/devices/{phone.device_id}/delete"
    asked = browser.go(idp.url + path)
    confirm = approve_step_up(browser, start_step_up(browser, asked, "app", path), tablet)
    done = post(browser, confirm, path)
    assert done.status_code == 200 and 'id="device-deleted"' in done.text

    notice = notices_of(tablet)[0]
    assert notice["type"] == "device_removed" and notice["removed_by"] == "account_page"
    assert notice["by_device"] is None and notice["device"] == about(phone, "Test phone", "cli")
    assert notice["ip"] == "127.0.0.1"
    mail = smtp_server.wait_for(EMAIL, subject=REMOVED_DE)
    told(
        mail,
        f"Von Ihrer Freigabe-ID {user.access_number} wurde ein Gerät entfernt. Es kann keine "
        "Anmeldungen bei Ihrem Zugang mehr freigeben.",
        "Gerät: Test phone (Befehlszeile)",
        f"Zeit: {minute(notice['created_at'])} (UTC)",
        "IP-Adresse: 127.0.0.1",
        "Entfernt durch: eine Anmeldung bei Ihrem Zugang, auf der Seite „Ihr Zugang“",
    )
    assert f"{idp.url}/account" in mail.get_content()


def test_devices_removed_by_an_administrator_are_told(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    admin, admin_device = enrolled(idp, email="admin@example.org", username="admin")
    make_admin(idp, admin)
    user, phone = enrolled(idp, email=EMAIL)
    pages, by_api, by_cli = (
        binding_device(idp, user, kind="android", device_name=name)
        for name in ("By the pages", "By the API", "By the command")
    )

    # The admin pages ...
    browser, _home = admin_session(idp, admin, admin_device)
    path = f"/admin/users/{user.sub}/devices/{pages.device_id}/remove"
    send(browser, get(browser, path), path)
    # ... the admin API ...
    api = automation(idp)
    api.ok("DELETE", f"/users/{user.sub}/devices/{by_api.device_id}", 204)
    # ... and the idp command.
    idp_command(idp, "devices", "remove", user.access_number, by_cli.device_id or "")

    notices = [n for n in notices_of(phone) if n["type"] == "device_removed"]
    assert [n["device"]["name"] for n in notices] == [
        "By the command",
        "By the API",
        "By the pages",
    ]
    assert {n["removed_by"] for n in notices} == {"administrator"}
    assert all(n["by_device"] is None for n in notices)
    assert [n["ip"] for n in notices] == [None, "127.0.0.1", "127.0.0.1"]
    for name, notice in zip(("By the pages", "By the API"), reversed(notices[1:]), strict=True):
        told(
            smtp_server.wait_for(EMAIL, subject=REMOVED),
            f"Device: {name} (Android)",
            f"Time: {minute(notice['created_at'])} (UTC)",
            "IP address: 127.0.0.1",
            "Removed by: an administrator",
        )
    told(
        smtp_server.wait_for(EMAIL, subject=REMOVED),
        "Device: By the command (Android)",
        "IP address: unknown",
        "Removed by: an administrator",
    )
    assert smtp_server.mail_for("admin@example.org", subject=REMOVED) == []


# --- delivery failures -----------------------------------------------------------------------


def test_a_mail_server_that_is_down_fails_no_enrolment_and_no_deletion(
    idp_factory: Callable[..., LiveIdp], caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on this port: every delivery is refused.
    idp = idp_factory(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
    caplog.set_level(logging.INFO)
    user, phone = enrolled(idp, email=EMAIL)  # the code goes by SMS (the outbox)
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    assert phone.device_id and tablet.device_id
    assert device_row(idp, tablet.device_id).revoked_at is None
    assert notices_of(phone)[0]["device"]["name"] == "Tablet"  # the devices are still told

    deleted = delete(tablet, phone.device_id)
    assert deleted.status_code == 200, deleted.text
    assert device_row(idp, phone.device_id).revoked_at is not None
    assert notices_of(tablet)[0]["type"] == "device_removed"
    assert len(idp.events("device_enrolled")) == 2 and len(idp.events("device_deleted")) == 1

    warnings = [r.getMessage() for r in caplog.records if r.name == "idp.devices.changes"]
    assert f"the e-mail about device {phone.device_id} was not sent" in warnings
    assert f"the e-mail about device {tablet.device_id} was not sent" in warnings
    # Nothing secret in the log: no device token, no mail text.
    for token in (phone.token, tablet.token):
        assert token and token not in caplog.text
    assert "Removed by" not in caplog.text and "A new device was added" not in caplog.text
