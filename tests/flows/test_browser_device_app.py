"""The browser device app (/app/) in Chromium, with a platform authenticator.

One browser profile is the user's phone: it enrols at /app/ (confirmation code
from the SMS outbox, key made by the virtual authenticator with user
verification). Another profile signs in to FinanceCloud and waits; the app
shows the request, the user types the number and confirms, and the waiting
page continues by itself.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

from ..conftest import embedded_only
from .browser import add_authenticator, screenshot
from .conftest import PASSWORD, LiveRp
from .devices import last_sms_code

# A browser walks what the UI does; the HTTP flow tests cover both backends.
pytestmark = embedded_only

TWO_DIGITS = re.compile(r"^\d\d$")


def enrol_with_password(page: Page, idp: Any, user: Any, name: str) -> None:
    """Path A: access number and password, the code "sent by SMS", register key."""
    page.goto(idp.url + "/app/")
    expect(page.locator("body")).to_have_attribute("data-app-state", "enrol")
    page.fill("#device-name", name)
    page.fill("#enrol-identifier", user.access_number)
    page.fill("#enrol-password", PASSWORD)
    page.click("#enrol-start")
    expect(page.locator("#enrol-code")).to_be_visible()
    page.fill("#enrol-code", last_sms_code(idp.app.instance_path))
    page.click("#enrol-complete")
    expect(page.locator("body")).to_have_attribute("data-app-state", "main")


def phone(new_context: Callable[..., BrowserContext], idp: Any, **options: Any) -> Page:
    context = new_context(**options)
    context.grant_permissions(["notifications"], origin=idp.url)
    page = context.new_page()
    add_authenticator(page)
    return page


def start_sign_in(page: Page, rp: LiveRp, user: Any) -> str:
    page.goto(rp.url + "/")
    page.click("#sign-in")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    code = page.locator("#match-code")
    expect(code).to_have_text(TWO_DIGITS)
    return code.inner_text()


def test_enrol_the_browser_app_and_approve_a_sign_in_from_another_browser(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    rp = rp_factory(require_mfa=True, first_party=True)
    app = phone(new_context, idp)
    enrol_with_password(app, idp, user, "Erika's laptop")
    expect(app.locator("#account-line")).to_contain_text(user.access_number)
    (enrolled,) = idp.events("device_enrolled")
    assert enrolled.detail["kind"] == "browser"

    desktop = new_context().new_page()
    number = start_sign_in(desktop, rp, user)

    # The app finds the request by itself (no push service in a headless
    # profile: it polls while open) and shows where it comes from.
    request = app.locator("#approvals li[data-approval-id] button.open-approval")
    expect(request).to_have_count(1, timeout=20_000)
    request.click()
    expect(app.locator("#approval-client")).to_have_text("FinanceCloud")
    expect(app.locator("#approval-ip")).to_have_text("127.0.0.1")
    # The browser in words (issue 14, 5), the raw string on demand.
    expect(app.locator("#approval-browser")).to_have_text("Chrome on Linux")
    raw = app.locator("#approval-user-agent")
    expect(raw).to_be_hidden()
    expect(app.locator("#approval-location")).to_be_hidden()  # no GeoIP database
    app.click("#approval-user-agent-details summary")
    expect(raw).to_be_visible()
    expect(raw).to_contain_text("Chrome/")
    screenshot(app, "device-app-approval")
    # The same screen in German, after the switch on the page.
    app.click("nav.lang a[hreflang=de]")
    expect(request).to_have_count(1, timeout=20_000)
    expect(request).to_contain_text("Chrome unter Linux")
    request.click()
    expect(app.locator("#approval-browser")).to_have_text("Chrome unter Linux")
    expect(app.locator("#approval-user-agent-details summary")).to_have_text(
        "Wie sich der Browser selbst nennt"
    )
    screenshot(app, "device-app-approval-de")
    app.click("nav.lang a[hreflang=en]")
    expect(request).to_have_count(1, timeout=20_000)
    request.click()

    # A wrong number is refused and nothing is decided ...
    wrong = "00" if number != "00" else "01"
    app.fill("#approval-code", wrong)
    app.click("#approve")
    expect(app.locator("#approval-result")).to_have_class(re.compile(r"\berror\b"))
    assert desktop.url.startswith(idp.url)
    # ... the right one, confirmed with the platform authenticator, is accepted,
    # and the waiting page continues to FinanceCloud without anyone touching it.
    app.fill("#approval-code", number)
    app.click("#approve")
    expect(app.locator("#approval-result")).to_have_class(re.compile(r"\bresult-ok\b"))
    desktop.wait_for_url(rp.url + "/**")
    claims = json.loads(desktop.locator("#id-token-claims").inner_text())
    assert {"pwd", "mfa", "user"} <= set(claims["amr"])
    assert claims["acr"] == "urn:freigabe:acr:mfa"
    assert idp.events("approval_wrong_code") and idp.events("approval_approved")


def test_a_push_delivered_to_the_service_worker_shows_a_notification(
    idp: Any, new_context: Any
) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    app = phone(new_context, idp, locale="de-DE")
    enrol_with_password(app, idp, user, "Tablet")

    # The service worker is installed for /app/; find its registration.
    app.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = app.context.new_cdp_session(app)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda event: registrations.extend(event["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not any(r["scopeURL"] == idp.url + "/app/" for r in registrations):
        assert time.monotonic() < deadline, registrations
        app.wait_for_timeout(100)
    (registration,) = [r for r in registrations if r["scopeURL"] == idp.url + "/app/"]

    # What the push service would hand over: the opaque payload, nothing else.
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": idp.url,
            "registrationId": registration["registrationId"],
            "data": json.dumps({"type": "approval", "id": "abc123"}),
        },
    )
    notifications: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not notifications:
        assert time.monotonic() < deadline, "no notification shown"
        app.wait_for_timeout(100)
        notifications = app.evaluate(
            """async () => {
                const registration = await navigator.serviceWorker.ready;
                const shown = await registration.getNotifications();
                return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}));
            }"""
        )
    (shown,) = notifications
    assert shown["tag"] == "abc123"
    assert shown["data"]["url"].endswith("/app/#approval=abc123")
    # German browser, German notification.
    assert "Anmeld" in shown["title"] + shown["body"], shown


def test_add_a_second_browser_with_a_binding_code_and_delete_the_first(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    rp = rp_factory(require_mfa=True, first_party=True)
    first = phone(new_context, idp)
    enrol_with_password(first, idp, user, "Old laptop")

    # Sign in with full MFA (approved on the first browser), then ask the
    # account page for a binding code.
    desktop = new_context().new_page()
    number = start_sign_in(desktop, rp, user)
    first.locator("#approvals li[data-approval-id] button.open-approval").click(timeout=20_000)
    first.fill("#approval-code", number)
    first.click("#approve")
    desktop.wait_for_url(rp.url + "/**")
    desktop.goto(idp.url + "/account")
    desktop.click("#add-device")
    link = desktop.locator("a[href*='/app/#code=']")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href

    # Path B on the second browser: the link fills in the code.
    second = phone(new_context, idp)
    second.goto(href if "://" in href else idp.url + href)
    expect(second.locator("#binding-code")).not_to_have_value("")
    second.fill("#device-name", "New laptop")
    second.click("#binding-start")
    expect(second.locator("body")).to_have_attribute("data-app-state", "main")

    # The old browser's tab is closed while the new one deletes it, so that it
    # learns of it from the server when opened again (an open app would learn
    # it from its next poll: test_browser_restore.py covers that order).
    old_browser = first.context
    first.close()

    # Both devices are listed; the new one deletes the old one.
    devices = second.locator("#devices li[data-device-id]")
    expect(devices).to_have_count(2)
    old = second.locator("#devices li[data-this-device='false']")
    old.locator("button.delete-device").click()
    expect(second.locator("#delete-dialog")).to_be_visible()
    second.click("#delete-confirm")
    expect(second.locator("#devices-result")).to_have_class(re.compile(r"\bresult-ok\b"))
    expect(devices).to_have_count(1)
    assert idp.events("device_deleted")

    # The old browser, opened again, learns it was removed and forgets its key.
    first = old_browser.new_page()
    first.goto(idp.url + "/app/")
    expect(first.locator("body")).to_have_attribute("data-app-state", "enrol")
    expect(first.locator("#app-message")).to_be_visible()
    assert first.evaluate("localStorage.getItem('freigabe-device')") is None


def test_the_app_tells_of_devices_added_and_removed(idp: Any, new_context: Any) -> None:
    from .test_device_delete import binding_device, delete

    user = idp.add_user(phone_number="+49 151 1234567")
    app = phone(new_context, idp, locale="de-DE")
    enrol_with_password(app, idp, user, "Erikas Laptop")
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    assert tablet.device_id is not None

    app.reload()  # the app reads the notices when it opens (or on a notice push)
    added = app.locator("#notices li[data-notice-type='device_added']")
    expect(added).to_contain_text("Ein neues Gerät, „Tablet“ (iPad), wurde am")
    expect(added).to_contain_text("(IP-Adresse 127.0.0.1), eingerichtet mit einem Code von der")
    expect(added.locator("button.remove-device")).to_be_visible()

    # The tablet un-enrols itself.
    assert delete(tablet, tablet.device_id).status_code == 200
    app.reload()
    removed = app.locator("#notices li[data-notice-type='device_removed']")
    expect(removed).to_contain_text("Das Gerät „Tablet“ (iPad) wurde am")
    expect(removed).to_contain_text(
        "(IP-Adresse 127.0.0.1) vom Gerät selbst aus Ihrer ID entfernt."
    )
    expect(removed).to_contain_text("kann jemand anderes Ihre Geräte verwalten")
    expect(added).to_contain_text("Dieses Gerät wurde bereits entfernt.")
    expect(added.locator("button.remove-device")).to_have_count(0)
    screenshot(app, "device-app-device-notices")
