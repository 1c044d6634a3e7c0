"""A real browser for the flow tests: the system's Chromium, driven by Playwright.

Chromium is Debian's: ``chromium-headless-shell`` where it is installed (Chromium's
lean headless build, ``IDP_TEST_HEADLESS_SHELL`` overrides), which walks a page
for about 40 % less CPU than the full browser; the full ``/usr/bin/chromium``
(``IDP_TEST_CHROMIUM`` overrides) where it is not, and for pages that must show a
notification, which the headless shell never does. Playwright only drives them,
no browser is downloaded. Pages are opened at
``http://localhost:PORT``: WebAuthn refuses IP addresses, and localhost is a
secure context, so service workers and ``navigator.credentials`` work.

WebAuthn ceremonies run against a CDP virtual authenticator (ctap2, internal
transport, resident keys, user verification), one per page.

Screenshots go to ``artifacts/screenshots/`` at phone and desktop widths, for a
person to look at after a run (each screen once, from whichever backend's run
comes first).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    sync_playwright,
)

from ..conftest import missing_service

CHROMIUM = os.environ.get("IDP_TEST_CHROMIUM", "/usr/bin/chromium")
HEADLESS_SHELL = os.environ.get("IDP_TEST_HEADLESS_SHELL", "/usr/bin/chromium-headless-shell")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
TIMEOUT_MS = 20_000


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


def launch(playwright: Playwright, executable: str) -> Browser:
    # Chromium's sandbox needs user namespaces, which root in a container lacks.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return playwright.chromium.launch(executable_path=executable, args=args)


@pytest.fixture(scope="session")
def full_chromium(playwright: Playwright) -> Iterator[Browser]:
    """The full headless Chromium, started on first use in a test process."""
    if not Path(CHROMIUM).exists():
        missing_service(f"no Chromium at {CHROMIUM} (Debian package chromium)")
    browser = launch(playwright, CHROMIUM)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def chromium(request: pytest.FixtureRequest, playwright: Playwright) -> Iterator[Browser]:
    """One browser per test process for the walks: the headless shell if there
    is one, else the full browser."""
    if not Path(HEADLESS_SHELL).exists():
        yield request.getfixturevalue("full_chromium")
        return
    browser = launch(playwright, HEADLESS_SHELL)
    yield browser
    browser.close()


@pytest.fixture
def new_context(request: pytest.FixtureRequest, chromium: Browser) -> Iterator[Any]:
    """``new_context(locale=...)``: fresh browser profiles (own cookies and
    storage), closed after the test. ``notifications=True`` opens it in the full
    browser, for a page whose notifications the test looks at."""
    contexts: list[BrowserContext] = []

    def factory(
        locale: str = "en-US", *, notifications: bool = False, **options: Any
    ) -> BrowserContext:
        browser = request.getfixturevalue("full_chromium") if notifications else chromium
        context = browser.new_context(locale=locale, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield factory
    for context in contexts:
        context.close()


@dataclass
class VirtualAuthenticator:
    """A CDP virtual authenticator attached to one page."""

    cdp: CDPSession
    authenticator_id: str

    def credentials(self) -> list[dict[str, Any]]:
        result = self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id}
        )
        credentials: list[dict[str, Any]] = result["credentials"]
        return credentials

    def set_user_verified(self, verified: bool) -> None:
        self.cdp.send(
            "WebAuthn.setUserVerified",
            {"authenticatorId": self.authenticator_id, "isUserVerified": verified},
        )

    def add_credential(self, credential: dict[str, Any]) -> None:
        self.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": self.authenticator_id, "credential": credential},
        )

    def remove_credential(self, credential_id: str) -> None:
        self.cdp.send(
            "WebAuthn.removeCredential",
            {"authenticatorId": self.authenticator_id, "credentialId": credential_id},
        )

    def set_sign_count(self, credential_id: str, sign_count: int) -> None:
        """Put a credential back with another counter (a cloned authenticator)."""
        (credential,) = [c for c in self.credentials() if c["credentialId"] == credential_id]
        self.remove_credential(credential_id)
        self.add_credential({**credential, "signCount": sign_count})


def add_authenticator(
    page: Page, *, user_verification: bool = True, resident_key: bool = True
) -> VirtualAuthenticator:
    """A platform authenticator with biometrics (or, with
    ``user_verification=False``, one that can only test presence)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": resident_key,
                "hasUserVerification": user_verification,
                "isUserVerified": user_verification,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualAuthenticator(cdp, added["authenticatorId"])


# Names saved by this test process. A test runs on both backends in the same
# process (--dist loadfile), and the second would save the same screen again
# (two full-page renderings, about 0.1 s of the browser's CPU).
_saved_screens: set[str] = set()


def screenshot(page: Page, name: str) -> list[Path]:
    """Save the page at phone and desktop widths, once per name and test
    process; the viewport is restored."""
    if name in _saved_screens:
        return []
    _saved_screens.add(name)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    saved = []
    for label, (width, height) in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": height})
        path = SCREENSHOTS / f"{name}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)
    if before:
        page.set_viewport_size(before)
    return saved
