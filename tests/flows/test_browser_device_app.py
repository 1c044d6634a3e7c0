"""The browser device app (/app/) in Chromium, with a platform authenticator.

A user without a device signs in to FinanceCloud and is refused with the way
to get one: the page links to /app/. Another browser profile, the user's phone,
opens that link and enrols (confirmation code from the SMS outbox, key made by
the virtual authenticator with user verification). The next sign-in waits; the
app shows the request, the user types the number and confirms, and the waiting
page continues by itself. "Add a device" on the account page gives a second
browser the app's link with the binding code filled in.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import segno
from playwright.sync_api import BrowserContext, Page, expect

from .browser import WIDTHS, add_authenticator, screenshot
from .conftest import PASSWORD, LiveRp
from .devices import last_sms_code

# A browser walks what the UI does; the HTTP flow tests cover both backends.

TWO_DIGITS = re.compile(r"^\d\d$")


def enrol_with_password(page: Page, idp: Any, user: Any, name: str | None) -> None:
    """Path A: access number and password, the code "sent by SMS", register key;
    ``name`` None keeps the name the app suggests."""
    page.goto(idp.url + "/app/")
    expect(page.locator("body")).to_have_attribute("data-app-state", "enrol")
    if name is not None:
        page.fill("#device-name", name)
    page.fill("#enrol-identifier", user.access_number)
    page.fill("#enrol-password", PASSWORD)
    page.click("#enrol-start")
    expect(page.locator("#enrol-code")).to_be_visible()
    page.fill("#enrol-code", last_sms_code(idp.app.instance_path))
    page.click("#enrol-complete")
    expect(page.locator("body")).to_have_attribute("data-app-state", "main")


def one_line_within_the_page(page: Page, selector: str) -> bool:
    """The element's text takes one line box and ends inside the viewport."""
    return bool(
        page.evaluate(
            """(selector) => {
                const element = document.querySelector(selector);
                const range = document.createRange();
                range.selectNodeContents(element);
                const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                const right = range.getBoundingClientRect().right;
                return lines.size === 1 && right <= document.documentElement.clientWidth;
            }""",
            selector,
        )
    )


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


def test_a_user_without_a_device_sets_up_the_app_from_the_refusal_and_approves(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    rp = rp_factory(require_mfa=True, first_party=True)

    # No device yet: FinanceCloud requires a confirmation, so the sign-in is
    # refused with the way to get one, in German, then in English.
    desktop = new_context(locale="de-DE").new_page()
    desktop.goto(rp.url + "/")
    desktop.click("#sign-in")
    desktop.fill("#identifier", user.access_number)
    desktop.fill("#password", PASSWORD)
    desktop.click("button[type=submit].primary")
    expect(desktop.locator("#no-device")).to_be_visible()
    expect(desktop.locator("h1")).to_have_text("Ein Gerät einrichten")
    guide = desktop.locator("#get-device")
    expect(guide).to_contain_text(user.access_number)
    # The steps name what /app/ shows (its German labels), not a plus symbol.
    for label in ("Diesen Browser als Gerät einrichten", "Mit Zugangsnummer und Passwort"):
        expect(guide).to_contain_text(label)
    expect(guide).to_contain_text("Schlüssel registrieren")
    expect(guide).not_to_contain_text("Plus")
    expect(desktop.locator("#get-device-qr")).to_be_visible()
    screenshot(desktop, "no-device-de")
    href = desktop.locator("#get-device-link").get_attribute("href")
    assert href == idp.url + "/app/"
    # The switch on the page: the same refusal in English, in /app/'s English words.
    desktop.click("nav.lang a[hreflang=en]")
    expect(desktop.locator("h1")).to_have_text("Set up a device")
    expect(desktop.locator("#no-device")).to_contain_text("FinanceCloud requires you to confirm")
    for label in ("Set up this browser as a device", "With your access number and password"):
        expect(guide).to_contain_text(label)
    expect(guide).to_contain_text("Register key")
    expect(guide).to_contain_text(user.access_number)
    expect(guide).not_to_contain_text("plus")
    expect(desktop.locator("#get-device-link")).to_have_attribute("href", href)
    expect(desktop.locator("#get-device-qr")).to_be_visible()
    screenshot(desktop, "no-device")
    # The account page (signed in with the password) offers the same, in
    # both languages.
    desktop.goto(idp.url + "/account")
    expect(desktop.locator("#no-devices")).to_be_visible()
    expect(guide).to_contain_text("Set up this browser as a device")
    expect(desktop.locator("#get-device-link")).to_have_attribute("href", href)
    screenshot(desktop, "account-no-device")
    desktop.click("nav.lang a[hreflang=de]")
    expect(desktop.locator("#no-devices")).to_contain_text("Es ist noch kein Gerät eingerichtet")
    expect(guide).to_contain_text("Diesen Browser als Gerät einrichten")
    expect(desktop.locator("#get-device-link")).to_have_attribute("href", href)
    screenshot(desktop, "account-no-device-de")

    # The offered link, opened on another device (a second browser profile),
    # is the app; it enrols there with the steps the page gave.
    app = phone(new_context, idp, locale="de-DE")
    app.goto(href)
    expect(app.locator("#enrol-title")).to_have_text("Diesen Browser als Gerät einrichten")
    expect(app.locator("#enrol-start")).to_have_text("Schlüssel registrieren")
    enrol_with_password(app, idp, user, "Erika's laptop")
    expect(app.locator("#account-line")).to_contain_text(user.access_number)
    (enrolled,) = idp.events("device_enrolled")
    assert enrolled.detail["kind"] == "browser"

    # Then the user signs in to FinanceCloud again (the password is still
    # known to this browser's session), and now it asks the app.
    desktop.goto(rp.url + "/")
    desktop.click("#sign-in")
    expect(desktop.locator("#match-code")).to_have_text(TWO_DIGITS)
    number = desktop.locator("#match-code").inner_text()

    # The app finds the request by itself (no push service in a headless
    # profile: it polls while open) and shows where it comes from.
    request = app.locator("#approvals li[data-approval-id] button.open-approval")
    expect(request).to_have_count(1, timeout=20_000)
    request.click()
    expect(app.locator("#approval-client")).to_have_text("FinanceCloud")
    expect(app.locator("#approval-ip")).to_have_text("127.0.0.1")
    # The browser in words (issue 14, 5), the raw string on demand: in
    # English (the switch on the page), then in German.
    app.click("nav.lang a[hreflang=en]")
    expect(request).to_have_count(1, timeout=20_000)
    request.click()
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
    app = phone(new_context, idp, locale="de-DE", notifications=True)
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
    enrol_with_password(first, idp, user, None)  # the name the app suggests

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
    code = desktop.locator("#binding-code").inner_text()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", code), code
    # The QR code holds the link shown next to it: the app on this server, with
    # the code in the fragment (a phone camera opens it; no freigabe:// scheme).
    href = desktop.locator("#binding-link").get_attribute("href")
    assert href == f"{idp.url}/app/#code={code}"
    expect(desktop.locator("#binding-link")).to_have_text(href)
    qr = desktop.locator("#binding-qr").get_attribute("src")
    assert qr == segno.make(href, error="m").svg_data_uri(scale=5, border=2)
    # The code stays on one line at phone width, and the copy button copies it.
    desktop.set_viewport_size({"width": WIDTHS["phone"][0], "height": WIDTHS["phone"][1]})
    assert one_line_within_the_page(desktop, "#binding-code")
    assert one_line_within_the_page(desktop, "#binding-link .nowrap")
    screenshot(desktop, "add-a-device")
    desktop.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=idp.url)
    desktop.click("#copy-code")
    expect(desktop.locator("#copy-code")).to_have_text("Copied")
    assert desktop.evaluate("navigator.clipboard.readText()") == code

    # In German, from the switch on the page: a code is shown once, so the
    # switch leads to the account page, whose "Gerät hinzufügen" makes a new one.
    desktop.click("nav.lang a[hreflang=de]")
    desktop.wait_for_url(idp.url + "/account")
    expect(desktop.locator("#add-device")).to_have_text("Gerät hinzufügen")
    desktop.click("#add-device")
    expect(desktop.locator("h1")).to_have_text("Gerät hinzufügen")
    expect(desktop.locator("main")).to_contain_text("mit der Kamera des neuen Geräts")
    code = desktop.locator("#binding-code").inner_text()
    href = desktop.locator("#binding-link").get_attribute("href")
    assert href == f"{idp.url}/app/#code={code}"
    assert one_line_within_the_page(desktop, "#binding-code")
    screenshot(desktop, "add-a-device-de")
    desktop.click("#copy-code")
    expect(desktop.locator("#copy-code")).to_have_text("Kopiert")
    assert desktop.evaluate("navigator.clipboard.readText()") == code

    # Path B on the second browser: the QR code's link fills in the code. It
    # suggests the same name as the first: enrolled, it is told apart by a number.
    second = phone(new_context, idp)
    second.goto(href)
    expect(second.locator("#binding-code")).to_have_value(code)
    suggested = second.locator("#device-name").input_value()
    assert suggested == "Chrome (Linux)", suggested
    second.click("#binding-start")
    expect(second.locator("body")).to_have_attribute("data-app-state", "main")
    expect(second.locator("#devices li[data-this-device='false'] .name")).to_have_text(suggested)
    this = second.locator("#devices li[data-this-device='true'] .name")
    expect(this).to_contain_text(f"{suggested} (2)")
    expect(second.locator("#account-line")).to_contain_text(f"{suggested} (2)")

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
