"""Push approval in a real browser: the waiting page continues by itself.

Chromium signs in to FinanceCloud (the demo RP, whose client requires MFA);
the software device approves or denies over the device API, and the page,
listening on Server-Sent Events, moves on without anyone touching it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from .browser import screenshot
from .conftest import PASSWORD, LiveRp
from .devices import SoftDevice

# A browser walks what the UI does; the HTTP flow tests cover both backends.

ACR_MFA = "urn:freigabe:acr:mfa"
TWO_DIGITS = re.compile(r"^\d\d$")


def enrolled_user(idp: Any) -> tuple[Any, SoftDevice]:
    user = idp.add_user(phone_number="+49 151 1234567", email="erika@example.org")
    device = SoftDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    return user, device


def sign_in_with_password(page: Page, rp: LiveRp, user: Any) -> None:
    page.goto(rp.url + "/")
    page.click("#sign-in")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")


def test_approval_on_the_device_continues_the_waiting_page(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user, device = enrolled_user(idp)
    rp = rp_factory(require_mfa=True, first_party=True)
    page = new_context().new_page()

    page.goto(rp.url + "/")
    page.click("#sign-in")
    expect(page.locator("#identifier")).to_be_visible()
    screenshot(page, "login")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")

    code = page.locator("#match-code")
    expect(code).to_have_text(TWO_DIGITS)
    # Nothing to continue with before the device answers: disabled, and said why.
    expect(page.locator("#continue")).to_be_disabled()
    expect(page.locator("#continue-hint")).to_be_visible()
    screenshot(page, "approval-waiting")
    (pending,) = device.approvals()
    assert pending["client_name"] == "FinanceCloud"
    answered = device.answer(pending["id"], "approve", code.inner_text())
    assert answered.status_code == 200, answered.text

    # Nobody clicks: the page hears the approval and continues to the RP.
    page.wait_for_url(rp.url + "/**")
    claims = json.loads(page.locator("#id-token-claims").inner_text())
    assert set(claims["amr"]) == {"pwd", "mfa", "user", "swk"}
    assert claims["acr"] == ACR_MFA
    assert claims["sub"] == user.sub


def test_a_denial_shows_on_the_waiting_page_by_itself(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user, device = enrolled_user(idp)
    rp = rp_factory(require_mfa=True, first_party=True)
    page = new_context(locale="de-DE").new_page()

    sign_in_with_password(page, rp, user)
    code = page.locator("#match-code")
    expect(code).to_have_text(TWO_DIGITS)
    (pending,) = device.approvals()
    assert device.answer(pending["id"], "deny", code.inner_text()).status_code == 200

    expect(page.locator("#denied")).to_be_visible()
    expect(page.locator("#denied")).to_contain_text("abgelehnt")
    assert page.url.startswith(idp.url)
    screenshot(page, "approval-denied-de")


def test_without_javascript_the_continue_button_finishes_the_login(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user, device = enrolled_user(idp)
    rp = rp_factory(require_mfa=True, first_party=True)
    page = new_context(java_script_enabled=False).new_page()

    sign_in_with_password(page, rp, user)
    code = page.locator("#match-code").inner_text()
    (pending,) = device.approvals()
    assert device.answer(pending["id"], "approve", code).status_code == 200
    page.click("#continue")

    page.wait_for_url(rp.url + "/**")
    claims = json.loads(page.locator("#id-token-claims").inner_text())
    assert "mfa" in claims["amr"]
