"""Restoration and device management in the browser device app (/app/), in Chromium.

One browser profile is the user's first device: it activates "Back up your
identity" (the e-mail code and later code 2 come from a real SMTP server) and
shows restoration code 1 once. A second profile, in German, chooses "Restore
identity", types the ID and code 1, then code 2 from the mail, registers its key
and shows the new code 1. The first device then sees the notices about it and
removes it. Also: "Back up your identity?" at the sixth confirmed sign-in with
NOT NOW remembered, renaming a device, refusing a restored device within the
veto window, and "Restore identity on other server".
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from .browser import screenshot
from .conftest import LiveIdp, LiveRp
from .test_browser_device_app import enrol_with_password, phone, start_sign_in
from .test_restoration import (
    CODE1,
    CODE2_MAIL,
    CONFIRMATION_MAIL,
    EMAIL,
    RestoringDevice,
    mail_code,
    smtp_idp,
    verify_email,
)

# A browser walks what the UI does; the HTTP flow tests cover both backends.

RESULT_OK = re.compile(r"\bresult-ok\b")


def activate_backup(page: Page) -> None:
    """Settings, "Back up your identity": Activate (signed with the platform
    authenticator)."""
    expect(page.locator("#restoration-section")).to_have_attribute("data-restoration", "inactive")
    page.click("#restoration-activate")


def deliver_push(page: Page, idp: LiveIdp, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Hand ``payload`` to the app's service worker as the push service would;
    the notifications it shows."""
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    scope = idp.url + "/app/"
    deadline = time.monotonic() + 10
    while not any(r["scopeURL"] == scope for r in registrations):
        assert time.monotonic() < deadline, registrations
        page.wait_for_timeout(100)
    (registration,) = [r for r in registrations if r["scopeURL"] == scope]
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": idp.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps(payload),
        },
    )
    shown: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not shown:
        assert time.monotonic() < deadline, "no notification shown"
        page.wait_for_timeout(100)
        shown = page.evaluate(
            """async () => (await (await navigator.serviceWorker.ready).getNotifications())
                .map((n) => ({title: n.title, body: n.body, tag: n.tag}))"""
        )
    return shown


def code1_on(page: Page, element: str) -> str:
    code = page.locator(element)
    expect(code).to_have_text(CODE1)
    return code.inner_text()


CODE2_MAIL_DE = "Ihr zweiter Wiederherstellungscode"


def test_activate_restore_on_a_second_browser_and_remove_it_from_the_first(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, new_context: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server)
    user = idp.add_user(phone_number="+49 151 1234567", email=EMAIL)  # not confirmed yet
    first = phone(new_context, idp)
    enrol_with_password(first, idp, user, "Erika's laptop")

    # Activation: the address is not confirmed, so a code goes there first.
    expect(first.locator("#restoration-status")).to_contain_text("e•••@example.org")
    activate_backup(first)
    expect(first.locator("#restoration-email-code")).to_be_visible()
    expect(first.locator("#restoration-confirm-line")).to_contain_text("e•••@example.org")
    first.fill(
        "#restoration-email-code",
        mail_code(smtp_server.wait_for(EMAIL, subject=CONFIRMATION_MAIL), 6),
    )
    first.click("#restoration-confirm")
    # Code 1, shown once, with the advice to write it down.
    code1 = code1_on(first, "#restoration-code")
    expect(first.locator("#restoration-code-box")).to_contain_text("write this code down")
    screenshot(first, "device-app-backup-code")
    first.click("#restoration-code-done")
    expect(first.locator("#restoration-code-box")).to_be_hidden()
    assert first.locator("#restoration-code").inner_text() == ""  # gone from the page
    expect(first.locator("#restoration-section")).to_have_attribute("data-restoration", "active")
    # A new code 1 (asked first, signed): the one written down is void.
    first.click("#restoration-regenerate")
    expect(first.locator("#restoration-regenerate-confirm")).to_contain_text("stops working")
    first.click("#restoration-regenerate-yes")
    old_code1, code1 = code1, code1_on(first, "#restoration-code")
    assert code1 != old_code1
    expect(first.locator("#restoration-code-note")).to_contain_text("no longer works")
    first.click("#restoration-code-done")
    expect(first.locator("#restoration-result")).to_have_class(RESULT_OK)
    assert idp.events("restoration_code_regenerated")

    # A second browser, in German: "Identität wiederherstellen".
    second = phone(new_context, idp, locale="de-DE")
    second.goto(idp.url + "/app/")
    expect(second.locator("body")).to_have_attribute("data-app-state", "enrol")
    expect(second.locator("#restore-open")).to_have_text("Identität wiederherstellen")
    expect(second.locator("#restore-other-open")).to_have_text(
        "Identität auf anderem Server wiederherstellen"
    )
    second.click("#restore-open")
    second.fill("#device-name", "Erikas Tablet")
    second.fill("#restore-login-id", user.access_number)
    # The replaced code 1: the one answer for every failure.
    second.fill("#restore-code1", old_code1)
    second.click("#restore-start")
    expect(second.locator("#enrol-error")).to_have_text(
        "Die ID oder ein Wiederherstellungscode ist nicht korrekt, oder die Wiederherstellung "
        "ist abgelaufen. Prüfen Sie Ihre Eingaben oder beginnen Sie erneut."
    )
    # Typed leniently: lower case, spaces for dashes.
    second.fill("#restore-code1", code1.replace("-", " ").lower())
    screenshot(second, "device-app-restore-start-de")
    second.click("#restore-start")
    expect(second.locator("#restore-code2")).to_be_visible()
    expect(second.locator("#restore-email-line")).to_contain_text("e•••@example.org")
    screenshot(second, "device-app-restore-code2-de")
    # The switch on the page reloads it: the restore goes on where it was.
    second.click("nav.lang a[hreflang=en]")
    expect(second.locator("#restore-code2")).to_be_visible()
    expect(second.locator("#restore-email-line")).to_contain_text("e•••@example.org")
    expect(second.locator("#restore-verify")).to_have_text("Complete key registration")
    second.click("nav.lang a[hreflang=de]")
    expect(second.locator("#restore-code2")).to_be_visible()
    # The restoration was started in German: code 2 is mailed in German.
    code2 = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL_DE), 8)
    second.fill("#restore-code2", code2)
    second.click("#restore-verify")
    # The key is registered; the new code 1 is shown once (the old one is void).
    new_code1 = code1_on(second, "#restore-new-code")
    assert new_code1 != code1
    expect(second.locator("#restore-done")).to_contain_text("Bitte notieren Sie diesen Code")
    expect(second.locator("#restore-pending")).to_be_hidden()
    screenshot(second, "device-app-restore-done-de")
    # Shown once, but not lost to the language switch before it is confirmed.
    second.click("nav.lang a[hreflang=en]")
    expect(second.locator("#restore-new-code")).to_have_text(new_code1)
    expect(second.locator("#restore-done")).to_contain_text("Please write this code down")
    second.click("nav.lang a[hreflang=de]")
    expect(second.locator("#restore-new-code")).to_have_text(new_code1)
    second.click("#restore-done-confirm")
    assert second.evaluate("sessionStorage.getItem('freigabe-restore')") is None
    expect(second.locator("body")).to_have_attribute("data-app-state", "main")
    devices = second.locator("#devices li[data-device-id]")
    expect(devices).to_have_count(2)
    expect(second.locator("#devices li[data-this-device='true']")).to_contain_text(
        "eingerichtet durch Wiederherstellung Ihrer ID"
    )
    assert second.evaluate("localStorage.getItem('freigabe-device')").count(new_code1) == 0
    (completed,) = idp.events("restore_completed")

    # The first browser is told: a restoration started, and the device was added.
    first.reload()
    started = first.locator("#notices li[data-notice-type='restore_started']")
    added = first.locator("#notices li[data-notice-type='device_restored']")
    expect(started).to_contain_text("Erikas Tablet")
    expect(added).to_contain_text("Erikas Tablet")
    expect(started.locator("button.notice-new-code")).to_be_visible()
    screenshot(first, "device-app-notices")
    # "This was not me": remove it (the signed delete).
    added.locator("button.remove-device").click()
    expect(first.locator("#delete-dialog")).to_be_visible()
    expect(first.locator("#delete-last-warning")).to_be_hidden()
    first.click("#delete-confirm")
    expect(first.locator("#devices-result")).to_have_class(RESULT_OK)
    expect(first.locator("#devices li[data-device-id]")).to_have_count(1)
    expect(added.locator("button.remove-device")).to_have_count(0)
    # It showed the current code 1: void, restoration inactive until activated again.
    expect(first.locator("#restoration-section")).to_have_attribute("data-restoration", "inactive")
    (deleted,) = idp.events("device_deleted")
    assert deleted.detail["device"] == completed.detail["device"]

    # The removed browser, still open, learns it at its next look and forgets
    # its key; reloaded after that, it still says why.
    expect(second.locator("body")).to_have_attribute("data-app-state", "enrol", timeout=30_000)
    expect(second.locator("#app-message")).to_be_visible()
    assert second.evaluate("localStorage.getItem('freigabe-device')") is None
    second.reload()
    expect(second.locator("body")).to_have_attribute("data-app-state", "enrol")
    expect(second.locator("#app-message")).to_be_visible()


def test_back_up_your_identity_at_the_sixth_sign_in_not_now_is_kept_and_rename(
    idp: LiveIdp, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    from idp import audit
    from idp.extensions import commit

    user = idp.add_user(phone_number="+49 151 1234567", email=EMAIL)
    rp = rp_factory(require_mfa=True, first_party=True)
    app = phone(new_context, idp)
    enrol_with_password(app, idp, user, "Erika's laptop")
    expect(app.locator("#restoration-section")).to_have_attribute("data-restoration", "inactive")
    expect(app.locator("#backup-prompt")).to_be_hidden()
    # Five sign-ins confirmed before (as the audit log counts them) ...
    with idp.app.app_context():
        for _ in range(5):
            audit.record("approval_approved", user_id=user.id)
        commit()

    # ... and the sixth, confirmed in the app.
    desktop = new_context().new_page()
    number = start_sign_in(desktop, rp, user)
    app.locator("#approvals li[data-approval-id] button.open-approval").click(timeout=20_000)
    app.fill("#approval-code", number)
    app.click("#approve")
    expect(app.locator("#approval-result")).to_have_class(RESULT_OK)
    desktop.wait_for_url(rp.url + "/**")
    prompt = app.locator("#backup-prompt")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("Back up your identity?")
    screenshot(app, "device-app-backup-prompt")

    # NOT NOW: kept on the server, never asked again.
    with app.expect_response(lambda r: r.url.endswith("/restoration/prompt-dismissed")) as sent:
        app.click("#backup-not-now")
    assert sent.value.status == 204
    expect(prompt).to_be_hidden()
    app.reload()
    expect(app.locator("#restoration-section")).to_have_attribute("data-restoration", "inactive")
    expect(prompt).to_be_hidden()
    assert len(idp.events("restoration_prompt_dismissed")) == 1
    # Activation stays available in the settings.
    expect(app.locator("#restoration-activate")).to_be_visible()

    # Rename this device.
    this = app.locator("#devices li[data-this-device='true']")
    this.locator("button.rename-device").click()
    this.locator("input.rename-input").fill("  Work   laptop ")
    this.locator("button.rename-save").click()
    expect(app.locator("#devices-result")).to_have_class(RESULT_OK)
    expect(this.locator(".name")).to_contain_text("Work laptop")
    expect(app.locator("#account-line")).to_contain_text("Work laptop")
    (renamed,) = idp.events("device_renamed")
    assert renamed.detail["name"] == "Work laptop"
    # The last device: deleting it warns first.
    this.locator("button.delete-device").click()
    expect(app.locator("#delete-last-warning")).to_be_visible()
    expect(app.locator("#delete-this-warning")).to_be_visible()
    app.click("#delete-cancel")
    expect(app.locator("#delete-dialog")).to_be_hidden()


def test_refuse_a_restored_device_within_the_veto_window(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, new_context: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=3600)
    user = idp.add_user(phone_number="+49 151 1234567", email=EMAIL)
    verify_email(idp, user)  # confirmed: activated at once
    app = phone(new_context, idp, notifications=True)
    enrol_with_password(app, idp, user, "Erika's laptop")
    activate_backup(app)
    code1 = code1_on(app, "#restoration-code")
    app.click("#restoration-code-done")

    # Someone with code 1 and the mailbox restores the ID on a device of theirs.
    intruder = RestoringDevice(idp.url)
    started = intruder.restore(user.access_number, code1, "Not mine")
    assert started.status_code == 201, started.text
    code2 = mail_code(smtp_server.wait_for(EMAIL, subject=CODE2_MAIL), 8)
    verified = intruder.send_code2(started.json()["restoration_id"], code2)
    done = intruder.register(started.json()["restoration_id"], verified.json()["public_key"])
    assert done.json()["status"] == "pending", done.text

    # A notice push (opaque: its type and an id; the headless profile has no push
    # service, so it is handed over as one would) reaches the open app, which
    # reads the notices at once.
    (shown,) = deliver_push(app, idp, {"type": "notice", "id": "n1"})
    assert shown["title"] == "Notice about your ID" and shown["tag"] == "notice-n1"
    notice = app.locator("#notices li[data-notice-type='device_restored']")
    expect(notice).to_contain_text("Not mine")
    expect(notice.locator("button.refuse-device")).to_be_visible()
    listed = app.locator("#devices li[data-pending='true']")
    expect(listed).to_contain_text("Not mine")
    screenshot(app, "device-app-refuse")
    notice.locator("button.refuse-device").click()
    expect(app.locator("#notices-result")).to_have_class(RESULT_OK)
    expect(app.locator("#devices li[data-device-id]")).to_have_count(1)
    # Code 1 was shown on the refused device: activate again.
    expect(app.locator("#restoration-section")).to_have_attribute("data-restoration", "inactive")
    assert intruder.call("GET", "/status").json()["error"] == "device_revoked"
    assert idp.events("restore_vetoed")


def test_restore_on_other_server_opens_that_servers_app(idp: LiveIdp, new_context: Any) -> None:
    # A key can only be made for this page's own origin, so the app hands over
    # to the other server's app; 127.0.0.1 is another origin than localhost.
    other = idp.url.replace("localhost", "127.0.0.1")
    page = new_context().new_page()
    page.goto(idp.url + "/app/")
    page.click("#restore-other-open")
    expect(page.locator("#device-name")).to_be_hidden()
    page.fill("#restore-server", "http://evil.example")
    page.click("#restore-other-go")
    expect(page.locator("#enrol-error")).to_be_visible()  # https only (http on loopback)
    page.fill("#restore-server", other + "/")
    page.fill("#restore-other-login-id", "1000000001")
    page.click("#restore-other-go")
    page.wait_for_url(other + "/app/**")
    expect(page.locator("#restore")).to_be_visible()
    expect(page.locator("#restore-login-id")).to_have_value("1000000001")
    assert "restore=" not in page.url  # the ID does not stay in the address


def test_the_service_worker_gets_the_notice_texts_in_both_languages(idp: LiveIdp) -> None:
    import requests

    def texts(language: str) -> dict[str, Any]:
        response = requests.get(
            idp.url + "/app/messages.json", headers={"Accept-Language": language}, timeout=30
        )
        assert response.status_code == 200
        return dict(response.json())

    assert texts("en")["notice"]["title"] == "Notice about your ID"
    assert texts("de-DE,de;q=0.9")["notice"]["title"] == "Hinweis zu Ihrer ID"
