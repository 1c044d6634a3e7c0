"""The consent page in a real browser, in English and German: it says what
the choice does and promises nothing the product does not have; the access
it gives can be taken back under "Connected apps" on the account page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import expect

from .browser import screenshot
from .conftest import PASSWORD, LiveRp

# A browser walks what the UI does; the HTTP flow tests cover both backends.

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
    # It says where the access can be withdrawn later.
    expect(page.locator("#connected-apps-link")).to_have_text("Connected apps")
    screenshot(page, "consent-en")

    # The switch on the page: the same request, in German.
    page.click("nav.lang a[hreflang=de]")
    expect(page.locator("h1")).to_have_text("Zugriff für FinanceCloud erlauben?")
    expect(page.get_by_text(REMEMBERED_DE)).to_be_visible()
    expect(page.locator("#connected-apps-link")).to_have_text("Verbundene Apps")
    screenshot(page, "consent-de")

    page.click("#allow")
    page.wait_for_url(rp.url + "/**")
    expect(page.locator("#id-token-claims")).to_contain_text(user.sub)

    # Withdrawn again on the account page (in German, as chosen above): the
    # app, what it may do, a page that asks, and the outcome.
    page.goto(idp.url + "/account#apps")
    app = page.locator(f'li.app[data-client-id="{rp.client_id}"]')
    expect(app.locator(".app-name")).to_have_text("FinanceCloud")
    expect(app.locator(".app-initial")).to_have_text("F")
    expect(app.locator(".app-scopes")).to_contain_text("Ihre E-Mail-Adresse")
    expect(app.locator(".app-offline")).to_be_visible()
    screenshot(page, "connected-apps-de")
    app.locator(".app-remove").click()
    expect(page.locator("h1")).to_have_text("Zugriff von FinanceCloud entfernen?")
    page.click("#remove-app")
    expect(page.locator("#app-removed")).to_contain_text(
        "FinanceCloud hat keinen Zugriff mehr auf Ihren Zugang."
    )
    expect(page.locator("#no-apps")).to_be_visible()
    expect(page.locator("#activity-section")).to_contain_text(
        "Der Zugriff von FinanceCloud wurde entfernt"
    )
    screenshot(page, "connected-app-removed-de")
