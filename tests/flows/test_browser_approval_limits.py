"""The approval limit in a real browser: the waiting page says when a new
request is possible, counts down to it, and only then offers "Send a new
request"; after it, "Continue" waits for the device's answer.

The shared IdP runs with ``approval_push_limit = 1`` here; the window ends
through its counter (``push_window_ends``) and the page's clock is moved on
with Playwright's clock, so nobody waits 15 minutes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import screenshot
from .conftest import LiveIdp, LiveRp
from .test_approval_limits import push_window_ends
from .test_approvals import mfa_client, to_waiting_page
from .test_browser_approval import TWO_DIGITS, enrolled_user, sign_in_with_password

# A browser walks what the UI does; the HTTP flow tests cover both backends.


@pytest.fixture
def idp(idp_factory: Callable[..., LiveIdp]) -> LiveIdp:
    return idp_factory(approval_push_limit=1)


def test_at_the_limit_the_page_counts_down_then_offers_a_new_request(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user, device = enrolled_user(idp)
    rp = rp_factory(require_mfa=True, first_party=True)
    # The one approval of this window, left unanswered on the device.
    to_waiting_page(idp, mfa_client(idp), user)

    context = new_context()
    context.clock.install()
    page = context.new_page()
    sign_in_with_password(page, rp, user)

    expect(page.locator("#approval-error")).to_be_visible()
    expect(page.locator("#retry-at")).to_contain_text("You can send a new request at")
    expect(page.locator("#retry-at time")).to_have_text(re.compile(r"\d{1,2}:\d\d"))
    expect(page.locator("#retry-left")).to_have_text(re.compile(r"^1[45]:\d\d$"))
    expect(page.locator("#retry")).to_be_hidden()
    screenshot(page, "approval-limit")

    # The same page in German (the language switch on the page).
    page.click("nav.lang a[hreflang=de]")
    expect(page.locator("#retry-at")).to_contain_text("Eine neue Anfrage ist um")
    expect(page.locator("#retry-countdown")).to_contain_text("Noch")
    expect(page.locator("#retry")).to_be_hidden()
    screenshot(page, "approval-limit-de")

    # The window ends, and the page's countdown with it: the button comes back.
    push_window_ends(idp, user)
    context.clock.fast_forward("16:00")
    expect(page.locator("#retry")).to_be_visible()
    expect(page.locator("#retry")).to_have_text("Neue Anfrage senden")
    expect(page.locator("#retry-wait")).to_be_hidden()
    screenshot(page, "approval-limit-over-de")
    page.click("#retry")

    # A new approval: "Continue" stays disabled until the device answers.
    code = page.locator("#match-code")
    expect(code).to_have_text(TWO_DIGITS)
    expect(page.locator("#continue")).to_be_disabled()
    expect(page.locator("#continue-hint")).to_contain_text("sobald Sie in der App bestätigt")
    screenshot(page, "approval-waiting-de")
    pending = [a for a in device.approvals() if a["client_name"] == "FinanceCloud"]
    assert len(pending) == 1
    assert device.answer(pending[0]["id"], "approve", code.inner_text()).status_code == 200
    page.wait_for_url(rp.url + "/**")
    expect(page.locator("#id-token-claims")).to_contain_text("mfa")
