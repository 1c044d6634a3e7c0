"""Passkeys in Chromium, with a CDP virtual authenticator.

Register a passkey on the account page, sign in with it to FinanceCloud (the
demo RP validates the ID token), use it as the second factor after a password,
and the refusals a browser can provoke: no user verification, a replayed
assertion, another user's identity claimed, a wrong origin and a cloned
authenticator (counter regression).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from playwright.sync_api import Page, Route, expect

from .browser import VirtualAuthenticator, add_authenticator, screenshot
from .conftest import PASSWORD, LiveRp

# A browser walks what the UI does; the HTTP flow tests cover both backends.

ACR_MFA = "urn:freigabe:acr:mfa"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# Chromium's virtual authenticator answers a conditional (autofill) request at
# once, as if the user had picked the passkey from the list. Tests of the
# button and of the password path use a browser without autofill support.
WITHOUT_AUTOFILL = "PublicKeyCredential.isConditionalMediationAvailable = async () => false;"


def on_the_account_page(
    new_context: Any, idp: Any, user: Any, *, autofill: bool = False
) -> tuple[Page, VirtualAuthenticator]:
    """A browser with an authenticator, signed in with the password."""
    page = new_context().new_page()
    if not autofill:
        page.add_init_script(WITHOUT_AUTOFILL)
    authenticator = add_authenticator(page)
    page.goto(idp.url + "/login")
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url(idp.url + "/account")
    return page, authenticator


def with_passkey(
    new_context: Any, idp: Any, user: Any, *, autofill: bool = False
) -> tuple[Page, VirtualAuthenticator]:
    """A browser whose authenticator holds a passkey the user just registered."""
    page, authenticator = on_the_account_page(new_context, idp, user, autofill=autofill)
    page.fill("#passkey-name", "Laptop")
    page.click("#add-passkey")
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#passkeys li .passkey-name")).to_have_text("Laptop")
    assert len(authenticator.credentials()) == 1
    # The account page's style sheet and script answers refresh the session
    # cookie too: let them arrive before signing out, or one puts it back.
    page.wait_for_load_state("load")
    page.context.clear_cookies()  # signed out; the authenticator keeps the passkey
    return page, authenticator


def rp_sign_in_page(page: Page, rp: LiveRp) -> None:
    page.goto(rp.url + "/")
    page.click("#sign-in")
    expect(page.locator("#passkey-login-button")).to_be_visible()


def shown_claims(page: Page) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(page.locator("#id-token-claims").inner_text())
    return claims


def test_register_a_passkey_and_sign_in_with_it(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user(email="erika@example.org")
    rp = rp_factory(require_mfa=True, first_party=True)
    page, _ = with_passkey(new_context, idp, user)

    rp_sign_in_page(page, rp)
    page.click("#passkey-login-button")  # no user name typed: a discoverable credential

    page.wait_for_url(rp.url + "/**")
    claims = shown_claims(page)
    assert claims["sub"] == user.sub
    assert {"user", "mfa"} <= set(claims["amr"]) and "pwd" not in claims["amr"]
    assert claims["acr"] == ACR_MFA
    assert idp.events("passkey_registered") and idp.events("passkey_login")


def test_passkey_autofill_signs_in_from_the_user_name_field(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user()
    rp = rp_factory(require_mfa=True, first_party=True)
    page, _ = with_passkey(new_context, idp, user, autofill=True)

    page.goto(rp.url + "/")
    page.click("#sign-in")
    # The field offers the passkey (autocomplete="username webauthn"); the
    # virtual authenticator picks it as a user would, and the login goes on.
    page.wait_for_url(rp.url + "/**")
    claims = shown_claims(page)
    assert claims["sub"] == user.sub and "mfa" in claims["amr"]


def test_password_then_passkey_as_the_second_factor(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user()
    rp = rp_factory(require_mfa=True, first_party=True)
    page, _ = with_passkey(new_context, idp, user)

    rp_sign_in_page(page, rp)
    page.fill("#identifier", user.access_number)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    # The client requires MFA and the user has no device: the passkey is asked for.
    expect(page.locator("#passkey-confirm-button")).to_be_visible()
    page.click("#passkey-confirm-button")

    page.wait_for_url(rp.url + "/**")
    claims = shown_claims(page)
    assert {"pwd", "user", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == ACR_MFA


def test_an_authenticator_without_user_verification_is_refused(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    user = idp.add_user()
    rp = rp_factory(require_mfa=True, first_party=True)
    page, authenticator = with_passkey(new_context, idp, user)
    authenticator.set_user_verified(False)  # presence only: no fingerprint, no PIN

    rp_sign_in_page(page, rp)
    page.click("#passkey-login-button")
    expect(page.locator("#passkey-error")).to_be_visible()
    assert urlparse(page.url).netloc == urlparse(idp.url).netloc
    assert not idp.events("passkey_login")
    screenshot(page, "login-passkey-refused")


def test_a_replayed_assertion_is_refused(idp: Any, new_context: Any) -> None:
    user = idp.add_user()
    page, _ = with_passkey(new_context, idp, user)
    sent: list[str] = []

    def record(route: Route) -> None:
        sent.append(route.request.post_data or "")
        route.continue_()

    page.route(lambda url: urlparse(url).path == "/login/passkey", record)
    page.goto(idp.url + "/login")
    page.click("#passkey-login-button")
    page.wait_for_url(idp.url + "/account")
    assert len(sent) == 1

    # The same signed response again, from a fresh signed-out page.
    page.context.clear_cookies()
    page.goto(idp.url + "/login")
    replay = page.evaluate(
        """async (body) => {
            const token = document.querySelector('input[name="csrf_token"]').value;
            const response = await fetch('/login/passkey', {method: 'POST', body,
                headers: {'Content-Type': 'application/json', 'X-CSRFToken': token}});
            return {status: response.status, body: await response.json()};
        }""",
        sent[0],
    )
    assert replay["status"] in (400, 401), replay
    assert "redirect" not in replay["body"]
    page.goto(idp.url + "/account")
    assert "/login" in page.url  # still signed out


def test_claiming_another_users_identity_with_ones_own_passkey_is_refused(
    idp: Any, new_context: Any
) -> None:
    attacker = idp.add_user()
    victim = idp.add_user()
    page, _ = with_passkey(new_context, idp, attacker)

    # The user handle is not covered by the signature: swap in the victim's.
    def swap_user(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        body["credential"]["response"]["userHandle"] = b64url(victim.sub.encode())
        route.continue_(post_data=json.dumps(body))

    page.route(lambda url: urlparse(url).path == "/login/passkey", swap_user)
    page.goto(idp.url + "/login")
    page.click("#passkey-login-button")
    expect(page.locator("#passkey-error")).to_be_visible()
    page.goto(idp.url + "/account")
    assert "/login" in page.url
    assert not idp.events("passkey_login")
    assert idp.events("passkey_refused")


def test_a_passkey_used_from_another_origin_is_refused(idp_factory: Any, new_context: Any) -> None:
    shared = {
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    idp = idp_factory(**shared)
    user = idp.add_user()
    page, _ = with_passkey(new_context, idp, user)
    # The same provider served on another port: the same RP ID (localhost), so
    # the browser lets the passkey answer, but another origin than the issuer.
    elsewhere = idp_factory(issuer=idp.url, **shared)
    page.goto(elsewhere.url + "/login")
    page.click("#passkey-login-button")
    expect(page.locator("#passkey-error")).to_be_visible()
    assert not idp.events("passkey_login")
    refused = idp.events("passkey_refused")
    assert refused and "origin" in json.dumps(refused[-1].detail), [e.detail for e in refused]


def test_a_cloned_authenticator_is_refused_and_audited(idp: Any, new_context: Any) -> None:
    user = idp.add_user()
    page, authenticator = with_passkey(new_context, idp, user)
    page.goto(idp.url + "/login")
    page.click("#passkey-login-button")
    page.wait_for_url(idp.url + "/account")
    page.context.clear_cookies()

    # The same key with an older counter: what a copy of the authenticator shows.
    (credential,) = authenticator.credentials()
    assert credential["signCount"] >= 1
    authenticator.set_sign_count(credential["credentialId"], 0)
    page.goto(idp.url + "/login")
    page.click("#passkey-login-button")
    expect(page.locator("#passkey-error")).to_be_visible()
    assert idp.events("passkey_sign_count_regressed")
    page.goto(idp.url + "/account")
    assert "/login" in page.url


def test_passkey_added_is_said_and_a_name_in_use_is_refused(idp: Any, new_context: Any) -> None:
    """Issue 14, 6b: "Passkey added" after adding one; two passkeys of one user
    never share a name (refused before the browser makes a key)."""
    user = idp.add_user()
    page, authenticator = on_the_account_page(new_context, idp, user)
    page.fill("#passkey-name", "Laptop")
    page.click("#add-passkey")
    expect(page.locator("#passkey-added")).to_have_text("Passkey added: “Laptop”.")
    screenshot(page, "account-passkey-added")
    # Said once: not again on the next visit. With a passkey on the account,
    # changing passkeys takes a sign-in with it (both factors).
    page.wait_for_load_state("load")
    page.context.clear_cookies()
    page.goto(idp.url + "/login")
    page.click("#passkey-login-button")
    page.wait_for_url(idp.url + "/account")
    expect(page.locator("#passkeys li")).to_have_count(1)
    expect(page.locator("#passkey-added")).to_have_count(0)

    page.fill("#passkey-name", "laptop")
    page.click("#add-passkey")
    error = page.locator("#passkey-error")
    expect(error).to_contain_text("You already have a passkey with this name")
    screenshot(page, "account-passkey-name-in-use")
    assert len(authenticator.credentials()) == 1  # no key was made for it
    assert [e.detail["reason"] for e in idp.events("passkey_change_refused")] == ["name_taken"]

    # In German, from the switch on the page.
    page.click("nav.lang a[hreflang=de]")
    page.fill("#passkey-name", "Laptop")
    page.click("#add-passkey")
    expect(error).to_contain_text("Sie haben schon einen Passkey mit diesem Namen")
    screenshot(page, "account-passkey-name-in-use-de")
    expect(page.locator("#passkeys li")).to_have_count(1)
