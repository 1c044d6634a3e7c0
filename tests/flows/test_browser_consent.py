"""The consent page in a real browser, in English and German: it says what
the choice does and promises nothing the product does not have."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from ..conftest import embedded_only
from .browser import screenshot
from .conftest import PASSWORD, LiveRp

# A browser walks what the UI does; the HTTP flow tests cover both backends.
pytestmark = embedded_only

REMEMBERED_EN = (
    "If you allow, you will not be asked again when FinanceCloud asks for the same access."
)
REMEMBERED_DE = (
    "Wenn Sie erlauben, werden Sie nicht erneut gefragt, wenn FinanceCloud denselben "
    "Zugriff anfragt."
)


def test_consent_page_in_english_and_german(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user(username="erika", email="erika@example.org")
    rp = rp_factory()  # not first-party: it asks for consent
    page = new_context(locale="en-GB").new_page()

    page.goto(rp.url + "/")
    page.click("#sign-in")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")

    expect(page.locator("h1")).to_have_text("Allow FinanceCloud access?")
    expect(page.locator("#allow")).to_be_visible()
    expect(page.get_by_text(REMEMBERED_EN)).to_be_visible()
    # The account page has no list of granted access (yet): nothing sends people there.
    assert "account page" not in page.content()
    screenshot(page, "consent-en")

    # The switch on the page: the same request, in German.
    page.click("nav.lang a[hreflang=de]")
    expect(page.locator("h1")).to_have_text("Zugriff für FinanceCloud erlauben?")
    expect(page.get_by_text(REMEMBERED_DE)).to_be_visible()
    assert "Ihr Zugang" not in page.content()
    screenshot(page, "consent-de")

    page.click("#allow")
    page.wait_for_url(rp.url + "/**")
    expect(page.locator("#id-token-claims")).to_contain_text(user.sub)
