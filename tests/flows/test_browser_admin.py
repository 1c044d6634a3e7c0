"""The admin pages in a real browser: a client's life from registration to
being disabled, with the demo relying party signing a user in through it.

Chromium signs the administrator in at /admin (password, then "Confirm in
your app": the software device approves, and the waiting page continues by
itself), registers a client on the pages, and hands its credentials to
FinanceCloud (the demo RP). After the secret is replaced, the RP with the old
secret fails at the token endpoint and one with the new secret signs in;
once the client is disabled, no login goes through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from .browser import screenshot
from .conftest import PASSWORD, LiveRp
from .test_admin_pages import admin_with_device

# A browser walks what the UI does; the HTTP flow tests cover both backends.

TWO_DIGITS = re.compile(r"^\d\d$")


def sign_in_at_admin(page: Page, idp: Any, admin: Any, device: Any) -> None:
    page.goto(idp.url + "/admin/")
    page.fill("#identifier", admin.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    expect(page.locator("#admin-needs-mfa")).to_be_visible()
    page.click("#step-up-app")
    code = page.locator("#match-code")
    expect(code).to_have_text(TWO_DIGITS)
    (pending,) = device.approvals()
    assert pending["client_name"] == "Freigabe"
    answered = device.answer(pending["id"], "approve", code.inner_text())
    assert answered.status_code == 200, answered.text
    # Nobody clicks: the waiting page continues to the admin pages.
    page.wait_for_url(idp.url + "/admin/")
    expect(page.locator("#admin-home")).to_be_visible()


def test_register_rotate_and_disable_a_client_used_by_the_demo_rp(
    idp: Any, new_context: Any, rp_with: Callable[..., LiveRp], listen: Callable[[], Any]
) -> None:
    admin, device = admin_with_device(idp)
    user = idp.add_user(email="erika@example.org")
    # The RPs' ports, taken now: the client is registered with them first.
    first_listening, second_listening = listen(), listen()
    first_port, second_port = first_listening.port, second_listening.port
    page = new_context().new_page()
    sign_in_at_admin(page, idp, admin, device)

    # Register FinanceCloud's client on the pages.
    page.click("#nav-clients")
    page.click("#new-client")
    page.fill("#f-name", "FinanceCloud Ledger")
    page.fill(
        "#f-redirect_uris",
        f"http://localhost:{first_port}/callback\nhttp://localhost:{second_port}/callback",
    )
    page.fill("#f-post_logout_redirect_uris", f"http://localhost:{first_port}/")
    page.check("#f-first_party")
    screenshot(page, "admin-client-new")
    page.click("#save-client")
    expect(page.locator("#secret-warning")).to_be_visible()
    client_id = page.locator("#client-id").inner_text()
    secret = page.locator("#client-secret").inner_text()
    assert client_id and len(secret) >= 32

    # The demo RP signs a user in through it.
    first = rp_with(first_listening, client_id, secret)
    erika = new_context().new_page()
    erika.goto(first.url + "/")
    erika.click("#sign-in")
    erika.fill("#identifier", user.access_number)
    erika.fill("#password", PASSWORD)
    erika.click("button[type=submit].primary")
    erika.wait_for_url(first.url + "/me")
    expect(erika.locator("#sub")).to_have_text(user.sub)

    # Replace the secret: shown once; the RP with the old one fails at the
    # token endpoint, one with the new secret signs in.
    page.click("#to-client")
    page.click("#rotate-secret")
    page.click("#confirm-rotate")
    expect(page.locator("#secret-warning")).to_be_visible()
    new_secret = page.locator("#client-secret").inner_text()
    assert new_secret != secret
    # Leaving the page that shows it (here by the language switch) asks
    # first; staying keeps the secret on the page. "Done" leaves at once.
    asked: list[str] = []

    def stay(dialog: Any) -> None:
        asked.append(dialog.type)
        dialog.dismiss()

    page.once("dialog", stay)
    page.click("nav.lang a[hreflang=de]")
    assert asked == ["beforeunload"]
    expect(page.locator("#client-secret")).to_have_text(new_secret)
    assert page.locator("html").get_attribute("lang") == "en"
    erika.goto(first.url + "/login")
    expect(erika.locator("#error-code")).to_have_text("invalid_client")
    assert erika.url.startswith(first.url + "/callback")
    second = rp_with(second_listening, client_id, new_secret)
    erika.goto(second.url + "/login")
    erika.wait_for_url(second.url + "/me")
    expect(erika.locator("#sub")).to_have_text(user.sub)

    # Disable it: no login goes through it any more (an error page at the
    # IdP, no redirect back).
    page.click("#to-client")
    page.click("#disable-client")
    expect(page.locator("#client-disabled")).to_be_visible()
    screenshot(page, "admin-client-disabled")
    erika.goto(second.url + "/login")
    expect(erika.locator("#error-code")).to_have_text("invalid_request")
    assert erika.url.startswith(idp.url + "/authorize")

    # The language switch of the admin pages keeps the page.
    here = page.url
    page.click("nav.lang a[hreflang=de]")
    page.wait_for_url(here)
    assert page.locator("html").get_attribute("lang") == "de"
    expect(page.locator("#client-disabled")).to_be_visible()
    screenshot(page, "admin-client-de")

    # The client's events in the audit log, newest first: the administrator's
    # changes and the logins through it.
    page.click("#client-audit")
    expect(page.locator("tr.event").first).to_be_visible()
    types = page.locator("tr.event .event-type").all_inner_texts()
    changes = [t for t in types if t.startswith("client_")]
    assert changes == ["client_disabled", "client_secret_rotated", "client_created"]
    assert "login" in types
    screenshot(page, "admin-audit-de")
