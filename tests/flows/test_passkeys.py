"""Passkeys at the IdP, over HTTP: register on the account page, sign in with a
passkey, and a passkey as the second factor after the password.

The browser's part (``navigator.credentials``) is played by the software
authenticator of the CLI device (clients/device/authenticator.py), which
builds genuine WebAuthn messages without py_webauthn; the endpoints are the
ones static/passkeys.js calls, found through the pages' data attributes.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select, update

from clients.device.authenticator import (
    CredentialKey,
    b64url_decode,
    create_credential,
    get_assertion,
    get_assertion_for_options,
)

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser, RelyingParty, form_fields, query

ACR_MFA = "urn:freigabe:acr:mfa"


# --- helpers ---------------------------------------------------------------------------


def data_of(page: requests.Response, element_id: str) -> dict[str, str]:
    """The data-* attributes of the element with this id (what passkeys.js reads)."""
    found = re.search(rf'<(?:div|form) id="{element_id}"([^>]*)>', page.text)
    assert found, page.text[:1500]
    return {k: html.unescape(v) for k, v in re.findall(r'data-([\w-]+)="([^"]*)"', found.group(1))}


def post_json(
    browser: Browser, page: requests.Response, path: str, body: Any = None
) -> requests.Response:
    """A POST as passkeys.js sends it: JSON, the page's CSRF token in a header."""
    return browser.session.post(
        browser.issuer + path,
        json=body if body is not None else {},
        headers={"X-CSRFToken": form_fields(page.text)["csrf_token"], "Accept": "application/json"},
        allow_redirects=False,
        timeout=30,
    )


def password_session(idp: Any, user: Any) -> Browser:
    """A browser signed in with the password alone, on the account page."""
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    assert page.status_code == 200 and 'id="access-number"' in page.text, page.text[:500]
    return browser


def start_registration(browser: Browser, name: str = "Laptop") -> tuple[Any, requests.Response]:
    account = browser.go(f"{browser.issuer}/account")
    urls = data_of(account, "passkey-add")
    return account, post_json(browser, account, urls["options"], {"name": name})


def register(
    browser: Browser, name: str = "Laptop", backup_eligible: bool = False
) -> CredentialKey:
    account, options = start_registration(browser, name)
    assert options.status_code == 200, options.text
    key, credential = create_credential(
        options_json=options.json(), origin=browser.issuer, backup_eligible=backup_eligible
    )
    done = post_json(
        browser, account, data_of(account, "passkey-add")["register"], {"credential": credential}
    )
    assert done.status_code == 201, done.text
    assert done.json()["passkey"]["name"] == name
    return key


def user_with_passkey(idp: Any, **fields: Any) -> tuple[Any, CredentialKey]:
    """A new user who added a passkey (allowed: no second factor yet)."""
    user = idp.add_user(**fields)
    return user, register(password_session(idp, user))


def login_page(browser: Browser, url: str) -> requests.Response:
    page = browser.go(url)
    assert page.status_code == 200 and 'id="passkey-login"' in page.text, page.text[:500]
    return page


def passkey_options(
    browser: Browser, page: requests.Response, box: str = "passkey-login"
) -> requests.Response:
    return post_json(browser, page, data_of(page, box)["options"])


def send(
    browser: Browser, page: requests.Response, credential: Any, box: str = "passkey-login"
) -> requests.Response:
    return post_json(browser, page, data_of(page, box)["verify"], {"credential": credential})


def use_passkey(
    browser: Browser,
    page: requests.Response,
    key: CredentialKey,
    box: str = "passkey-login",
    **kwargs: Any,
) -> tuple[dict[str, Any], requests.Response]:
    """Options, the authenticator's assertion, and the server's answer."""
    options = passkey_options(browser, page, box)
    assert options.status_code == 200, options.text
    kwargs.setdefault("origin", browser.issuer)
    credential = get_assertion_for_options(key=key, options_json=options.json(), **kwargs)
    return credential, send(browser, page, credential, box)


def assertion_for(
    browser: Browser,
    page: requests.Response,
    key: CredentialKey,
    box: str = "passkey-login",
    **kwargs: Any,
) -> dict[str, Any]:
    """Fresh options, and an assertion over their challenge whatever they allow."""
    options = passkey_options(browser, page, box)
    assert options.status_code == 200, options.text
    return get_assertion(
        key=key,
        rp_id="localhost",
        origin=kwargs.pop("origin", browser.issuer),
        challenge=b64url_decode(options.json()["challenge"]),
        **kwargs,
    )


def claims_after(
    browser: Browser, rp: RelyingParty, answer: requests.Response, req: dict[str, str]
) -> dict[str, Any]:
    """Follow the script's redirect to the client and check the ID token."""
    assert answer.status_code == 200, answer.text
    done = browser.go(browser.issuer + answer.json()["redirect"])
    assert done.status_code == 302, done.text[:500]
    assert done.headers["Location"].startswith(rp.redirect_uri)
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    return rp.validate_id_token(tokens["id_token"], req["nonce"])


def mfa_client(idp: Any) -> RelyingParty:
    client_id, secret = idp.add_client(first_party=True, require_mfa=True)
    return RelyingParty(idp.url, client_id, secret)


def stored(idp: Any, key: CredentialKey) -> Any:
    from idp.extensions import db
    from idp.passkeys.models import Passkey

    with idp.app.app_context():
        row = db.session.scalar(select(Passkey).where(Passkey.credential_id == key.credential_id))
        if row is not None:
            db.session.expunge(row)
        return row


def refusals(idp: Any) -> list[str]:
    return [e.detail["reason"] for e in idp.events("passkey_refused")]


def signed_in(browser: Browser) -> bool:
    return browser.go(f"{browser.issuer}/account").status_code == 200 and (
        'id="access-number"' in (browser.last.text if browser.last else "")
    )


def enrol_device(idp: Any, user: Any) -> SoftDevice:
    device = SoftDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    return device


# --- registration on the account page ----------------------------------------------------


def test_register_list_and_delete_a_passkey(idp: Any) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    browser = password_session(idp, user)
    account, options = start_registration(browser, "  Work   laptop ")
    assert 'id="no-passkeys"' in account.text
    assert options.status_code == 200, options.text
    public_key = options.json()
    # User verification required, discoverable preferred, no attestation by default.
    assert public_key["authenticatorSelection"]["userVerification"] == "required"
    assert public_key["authenticatorSelection"]["residentKey"] == "preferred"
    assert public_key["attestation"] == "none"
    assert public_key["rp"]["id"] == "localhost"
    # The user handle is the random sub, the one device credentials use.
    assert b64url_decode(public_key["user"]["id"]) == user.sub.encode()
    assert public_key["excludeCredentials"] == []
    key, credential = create_credential(options_json=public_key, origin=idp.url)
    done = post_json(
        browser, account, data_of(account, "passkey-add")["register"], {"credential": credential}
    )
    assert done.status_code == 201, done.text
    assert done.json()["passkey"]["name"] == "Work laptop"
    assert idp.events("passkey_registered")

    listed = browser.go(f"{idp.url}/account")
    row = stored(idp, key)
    assert row.name == "Work laptop" and row.user_id == user.id and row.sign_count == 0
    assert row.backup_eligible is False and row.transports == ["internal"]
    assert f'id="passkey-{row.id}"' in listed.text and "Work laptop" in listed.text
    assert "not used yet" in listed.text

    # Now the user has a second factor: a password session may not change
    # passkeys any more, neither add nor delete.
    assert 'id="passkey-mfa-required"' in listed.text and 'id="passkey-add"' not in listed.text
    refused = post_json(browser, listed, "/account/passkeys/options", {"name": "Phone"})
    assert refused.status_code == 403 and refused.json()["error"] == "mfa_required"
    delete = browser.submit(listed, f"/account/passkeys/{row.id}/delete")
    assert delete.status_code == 403 and stored(idp, key) is not None

    # Signed in with the passkey (MFA), both are allowed; a device's credential
    # and the passkey are excluded from a new registration.
    device = enrol_device(idp, user)
    browser = Browser(idp.url)
    _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
    assert answer.status_code == 200 and answer.json()["redirect"] == "/account", answer.text
    account, options = start_registration(browser, "Phone")
    assert options.status_code == 200, options.text
    excluded = {b64url_decode(c["id"]) for c in options.json()["excludeCredentials"]}
    assert device.key is not None
    assert excluded == {key.credential_id, device.key.credential_id}
    assert "last used" in account.text
    _, credential = create_credential(options_json=options.json(), origin=idp.url)
    added = post_json(browser, account, "/account/passkeys", {"credential": credential})
    assert added.status_code == 201, added.text
    # The challenge was single use: the same registration cannot be sent again.
    again = post_json(browser, account, "/account/passkeys", {"credential": credential})
    assert again.status_code == 400 and again.json()["error"] == "passkey_expired"

    deleted = browser.submit(account, f"/account/passkeys/{row.id}/delete")
    assert deleted.status_code == 200 and f'id="passkey-{row.id}"' not in deleted.text
    assert stored(idp, key) is None and "Phone" in deleted.text
    assert [e.detail["passkey"] for e in idp.events("passkey_deleted")] == [row.id]


def test_password_session_with_a_device_cannot_add_a_passkey(idp: Any) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    enrol_device(idp, user)
    browser = password_session(idp, user)
    account = browser.go(f"{idp.url}/account")
    assert 'id="passkey-mfa-required"' in account.text and 'id="passkey-add"' not in account.text
    # The endpoint refuses too, whatever the page showed.
    refused = post_json(browser, account, "/account/passkeys/options", {"name": "Sneaky"})
    assert refused.status_code == 403 and refused.json()["error"] == "mfa_required"
    assert idp.events("passkey_change_refused")


def test_adding_a_passkey_needs_a_recent_sign_in(idp: Any) -> None:
    from idp.auth.models import LoginSession
    from idp.extensions import db, utcnow

    user = idp.add_user()
    browser = password_session(idp, user)
    with idp.app.app_context():
        db.session.execute(
            update(LoginSession)
            .where(LoginSession.user_id == user.id)
            .values(auth_time=utcnow() - timedelta(minutes=11))
        )
        db.session.commit()
    account = browser.go(f"{idp.url}/account")
    assert 'id="passkey-reauthenticate"' in account.text
    refused = post_json(browser, account, "/account/passkeys/options", {"name": "Old"})
    assert refused.status_code == 403 and refused.json()["error"] == "reauthentication_required"
    # Signing in again makes it possible.
    assert register(password_session(idp, user), "Fresh")


def test_registration_refuses_no_user_verification_and_a_known_credential(
    idp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = idp.add_user()
    browser = password_session(idp, user)
    account, options = start_registration(browser)
    _, credential = create_credential(
        options_json=options.json(), origin=idp.url, user_verified=False
    )
    refused = post_json(browser, account, "/account/passkeys", {"credential": credential})
    assert refused.status_code == 401 and refused.json()["error"] == "passkey_not_verified"
    assert refusals(idp) == ["user_not_verified"]

    # An authenticator answering with the credential ID of another user's
    # device: registered already, refused (WebAuthn §7.1 step 22).
    other = idp.add_user(phone_number="+49 151 7654321")
    device = enrol_device(idp, other)
    assert device.key is not None
    reused = CredentialKey(
        credential_id=device.key.credential_id, private_key=device.key.private_key
    )
    monkeypatch.setattr(CredentialKey, "generate", classmethod(lambda cls, **_: reused))
    account, options = start_registration(browser)
    _, credential = create_credential(options_json=options.json(), origin=idp.url)
    refused = post_json(browser, account, "/account/passkeys", {"credential": credential})
    assert refused.status_code == 400 and refused.json()["error"] == "passkey_already_registered"
    assert refusals(idp)[-1] == "already_registered"
    assert 'id="no-passkeys"' in browser.go(f"{idp.url}/account").text


def test_a_name_stored_by_another_request_meanwhile_is_refused(idp: Any) -> None:
    """Two tabs adding "Laptop" at once: both pass the check of the name, and
    the database's unique index refuses the second insert. The other tab's
    passkey is stored just before this request's insert (the session's
    before_flush, on another connection that commits)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from idp.extensions import db
    from idp.passkeys.models import Passkey

    user = idp.add_user()
    browser = password_session(idp, user)
    account, options = start_registration(browser, "Laptop")
    _, credential = create_credential(options_json=options.json(), origin=idp.url)

    stored: list[str] = []

    def other_tab(session: Session, *_: Any) -> None:
        if stored or not any(isinstance(row, Passkey) for row in session.new):
            return
        stored.append("other-tab")
        with Session(db.engine) as other:
            other.add(
                Passkey(
                    id="other-tab", user_id=user.id, name="LAPTOP",
                    credential_id=b"other tab", public_key=b"key",
                )
            )  # fmt: skip
            other.commit()

    event.listen(Session, "before_flush", other_tab)
    try:
        refused = post_json(browser, account, "/account/passkeys", {"credential": credential})
    finally:
        event.remove(Session, "before_flush", other_tab)
    assert stored, "no passkey was flushed"
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "name_taken", refused.json()
    with idp.app.app_context():
        names = db.session.scalars(select(Passkey.name).where(Passkey.user_id == user.id))
        assert list(names) == ["LAPTOP"]


# --- signing in with a passkey ----------------------------------------------------------------


def test_sign_in_with_a_passkey_meets_the_mfa_policy(idp: Any) -> None:
    user, key = user_with_passkey(idp, phone_number="+49 151 1234567")
    device = enrol_device(idp, user)
    rp = mfa_client(idp)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    page = login_page(browser, url)
    # Autofill: the browser may offer passkeys in the user name field.
    assert 'autocomplete="username webauthn"' in page.text
    options = passkey_options(browser, page)
    assert options.status_code == 200, options.text
    assert options.json()["allowCredentials"] == []
    assert options.json()["userVerification"] == "required"
    answer = send(
        browser,
        page,
        get_assertion_for_options(key=key, options_json=options.json(), origin=idp.url),
    )
    assert answer.json()["redirect"].startswith("/authorize/resume?tx=")

    claims = claims_after(browser, rp, answer, req)
    assert claims["sub"] == user.sub
    # Possession and user verification: two factors (RFC 8176 "mfa").
    assert claims["amr"] == ["swk", "user", "mfa"] and claims["acr"] == ACR_MFA
    # The client requires MFA, and no push was sent for it.
    assert idp.events("approval_requested") == [] and device.approvals() == []
    [event] = idp.events("passkey_login")
    assert event.user_id == user.id and event.detail["step"] == "login"
    row = stored(idp, key)
    assert row.sign_count == 1 and row.last_used_at is not None


def test_synced_passkey_backup_flags_are_stored_and_updated(idp: Any) -> None:
    user = idp.add_user()
    key = register(password_session(idp, user), "Synced", backup_eligible=True)
    row = stored(idp, key)
    assert row.backup_eligible and row.backed_up
    assert "synced" in password_session(idp, user).go(f"{idp.url}/account").text

    # No longer backed up (BS cleared): stored at the next use.
    key.backed_up = False
    browser = Browser(idp.url)
    _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
    assert answer.status_code == 200, answer.text
    assert stored(idp, key).backed_up is False

    # BE never changes for a credential (WebAuthn L3 §6.1.3): refused.
    key.backup_eligible = False
    browser = Browser(idp.url)
    _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_failed"
    assert refusals(idp) == ["backup_eligibility_changed"]


def test_passkey_as_the_second_factor_after_the_password(idp: Any) -> None:
    user, key = user_with_passkey(idp)
    rp = mfa_client(idp)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    # No device: straight to the passkey, no "set up the app" page.
    assert page.status_code == 200 and "/login/passkey/confirm" in (
        browser.last.url if browser.last else ""
    )
    assert 'id="passkey-confirm"' in page.text and 'id="use-app"' not in page.text
    # Without user verification: refused, and nothing else happens.
    _, refused = use_passkey(browser, page, key, "passkey-confirm", user_verified=False)
    assert refused.status_code == 401 and refused.json()["error"] == "passkey_not_verified"
    assert refusals(idp) == ["user_not_verified"] and idp.events("passkey_login") == []
    options = passkey_options(browser, page, "passkey-confirm")
    allowed = [b64url_decode(c["id"]) for c in options.json()["allowCredentials"]]
    assert allowed == [key.credential_id]
    credential = get_assertion_for_options(key=key, options_json=options.json(), origin=idp.url)
    claims = claims_after(browser, rp, send(browser, page, credential, "passkey-confirm"), req)
    assert claims["amr"] == ["pwd", "swk", "user", "mfa"] and claims["acr"] == ACR_MFA
    assert idp.events("passkey_login")[-1].detail["step"] == "mfa"


def test_without_a_second_factor_a_passkey_can_be_added_and_used(idp: Any) -> None:
    user = idp.add_user()
    rp = mfa_client(idp)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    assert page.status_code == 403 and 'id="no-device-passkey"' in page.text
    key = register(browser, "Laptop")  # the fresh password session may
    page = browser.go(url)
    assert 'id="passkey-confirm"' in page.text
    _, answer = use_passkey(browser, page, key, "passkey-confirm")
    assert claims_after(browser, rp, answer, req)["acr"] == ACR_MFA


def test_passkey_instead_of_the_push_approval(idp: Any) -> None:
    user, key = user_with_passkey(idp, phone_number="+49 151 1234567")
    device = enrol_device(idp, user)
    rp = mfa_client(idp)
    browser = Browser(idp.url)
    url, req = rp.authorize_url()
    waiting = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    assert 'id="match-code"' in waiting.text and 'id="use-passkey"' in waiting.text
    assert len(device.approvals()) == 1
    link = re.search(r'href="([^"]+)" id="use-passkey"', waiting.text)
    assert link
    page = browser.go(idp.url + html.unescape(link.group(1)))
    assert 'id="use-app"' in page.text  # and back to the app, if wanted
    _, answer = use_passkey(browser, page, key, "passkey-confirm")
    claims = claims_after(browser, rp, answer, req)
    assert set(claims["amr"]) == {"pwd", "swk", "user", "mfa"}
    # The push is withdrawn: the device cannot answer it any more.
    assert device.approvals() == []
    assert [e.detail["reason"] for e in idp.events("approval_cancelled")] == ["passkey"]


# --- what is refused, and changes nothing ----------------------------------------------------


def test_assertion_without_user_verification_is_refused(idp: Any) -> None:
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    _, answer = use_passkey(
        browser, login_page(browser, f"{idp.url}/login"), key, user_verified=False
    )
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_not_verified"
    assert answer.json()["error_description"]
    assert refusals(idp) == ["user_not_verified"]
    assert not signed_in(browser) and idp.events("passkey_login") == []
    assert stored(idp, key).sign_count == 0 and stored(idp, key).last_used_at is None


def test_replayed_assertion_is_refused(idp: Any) -> None:
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/login")
    credential, answer = use_passkey(browser, page, key)
    assert answer.status_code == 200
    # The same response again: its challenge was taken by the first use.
    again = send(browser, login_page(browser, f"{idp.url}/login"), credential)
    assert again.status_code == 400 and again.json()["error"] == "passkey_expired"
    # ... also from another browser, even one with a challenge of its own.
    thief = Browser(idp.url)
    stolen_page = login_page(thief, f"{idp.url}/login")
    passkey_options(thief, stolen_page)
    again = send(thief, stolen_page, credential)
    assert again.status_code == 400 and again.json()["error"] == "passkey_expired"
    assert refusals(idp) == ["no_challenge", "no_challenge"]
    assert not signed_in(thief) and len(idp.events("passkey_login")) == 1
    assert stored(idp, key).sign_count == 1


def test_challenges_are_bound_to_the_browser_and_used_once(idp: Any) -> None:
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/login")
    # Two outstanding challenges (the autofill request and the button): the
    # response names the one it answers.
    first = passkey_options(browser, page).json()
    second = passkey_options(browser, page).json()
    assert first["challenge"] != second["challenge"]
    answer = send(
        browser, page, get_assertion_for_options(key=key, options_json=first, origin=idp.url)
    )
    assert answer.status_code == 200, answer.text
    # Another browser cannot answer a challenge given to this one.
    other = Browser(idp.url)
    other_page = login_page(other, f"{idp.url}/login")
    stolen = get_assertion_for_options(key=key, options_json=second, origin=idp.url)
    assert send(other, other_page, stolen).json()["error"] == "passkey_expired"
    assert refusals(idp) == ["no_challenge"]


def test_assertion_for_another_origin_is_refused(idp: Any) -> None:
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    _, answer = use_passkey(
        browser, login_page(browser, f"{idp.url}/login"), key, origin="http://localhost:1"
    )
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_failed"
    assert refusals(idp) == ["wrong_origin"]
    assert not signed_in(browser) and stored(idp, key).sign_count == 0


def test_unknown_credentials_and_device_credentials_are_not_passkeys(idp: Any) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    device = enrol_device(idp, user)
    stranger = CredentialKey.generate(user_handle=user.sub.encode())
    assert device.key is not None
    device_key = CredentialKey(
        credential_id=device.key.credential_id,
        private_key=device.key.private_key,
        sign_count=device.key.sign_count,
        user_handle=user.sub.encode(),
    )
    for key in (stranger, device_key):
        browser = Browser(idp.url)
        _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
        assert answer.status_code == 401 and answer.json()["error"] == "passkey_unknown"
        assert not signed_in(browser)
    assert refusals(idp) == ["unknown_credential", "unknown_credential"]


def test_user_handle_must_name_the_passkeys_owner(idp: Any) -> None:
    other = idp.add_user()
    _, key = user_with_passkey(idp)
    key.user_handle = other.sub.encode()
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/login")
    _, answer = use_passkey(browser, page, key)
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_failed"
    # A discoverable login must carry the user handle (WebAuthn §7.2 step 6).
    key.user_handle = None
    _, answer = use_passkey(browser, page, key)
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_failed"
    assert refusals(idp) == ["wrong_user", "user_handle_missing"]
    assert not signed_in(browser)


def test_passkey_of_another_user_as_the_second_factor_is_refused(idp: Any) -> None:
    user, _ = user_with_passkey(idp)
    other, other_key = user_with_passkey(idp)
    rp = mfa_client(idp)
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert 'id="passkey-confirm"' in page.text
    # The other user's passkey is not offered (allowCredentials), but an
    # authenticator answering anyway is refused.
    answer = send(
        browser, page, assertion_for(browser, page, other_key, "passkey-confirm"), "passkey-confirm"
    )
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_wrong_user"
    [event] = idp.events("passkey_refused")
    assert event.user_id == user.id and event.detail["owner"] == other.id
    assert event.detail["reason"] == "wrong_user"
    # Still only the password: the client gets nothing.
    from idp.auth.models import LoginSession
    from idp.extensions import db

    with idp.app.app_context():
        sessions = db.session.scalars(select(LoginSession).where(LoginSession.user_id == user.id))
        assert {tuple(s.amr) for s in sessions if s.ended_at is None} == {("pwd",)}
    assert stored(idp, other_key).sign_count == 0


def test_sign_count_regression_is_refused_by_default(idp: Any) -> None:
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/login")
    key.sign_count = 4
    assert use_passkey(browser, page, key)[1].status_code == 200  # stored: 5
    cloned = Browser(idp.url)
    page = login_page(cloned, f"{idp.url}/login")
    answer = send(cloned, page, assertion_for(cloned, page, key, sign_count=3))
    assert answer.status_code == 401 and answer.json()["error"] == "passkey_failed"
    assert refusals(idp) == ["sign_count_regressed"]
    [event] = idp.events("passkey_sign_count_regressed")
    assert event.detail["accepted"] is False and event.detail["stored"] == 5
    assert not signed_in(cloned) and stored(idp, key).sign_count == 5


def test_sign_count_regression_may_be_accepted_but_is_audited(idp_factory: Any) -> None:
    idp = idp_factory(webauthn_refuse_sign_count_regression=False)
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    key.sign_count = 4
    assert use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)[1].status_code == 200
    cloned = Browser(idp.url)
    page = login_page(cloned, f"{idp.url}/login")
    answer = send(cloned, page, assertion_for(cloned, page, key, sign_count=2))
    assert answer.status_code == 200, answer.text
    assert signed_in(cloned)
    [event] = idp.events("passkey_sign_count_regressed")
    assert event.detail["accepted"] is True
    assert stored(idp, key).sign_count == 5  # not lowered


def test_repeated_failures_are_throttled_per_ip(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=3)
    _, key = user_with_passkey(idp)
    browser = Browser(idp.url)
    page = login_page(browser, f"{idp.url}/login")
    for _ in range(3):
        _, answer = use_passkey(browser, page, key, user_verified=False)
        assert answer.status_code == 401
    # Now even a good passkey waits, and no options are given out.
    options = passkey_options(browser, page)
    assert options.status_code == 429 and options.json()["error"] == "too_many_attempts"
    assert int(options.headers["Retry-After"]) > 0
    answer = send(browser, page, get_assertion(
        key=key, rp_id="localhost", origin=idp.url, challenge=b"\x01" * 32
    ))  # fmt: skip
    assert answer.status_code == 429 and "Retry-After" in answer.headers
    assert not signed_in(browser)


def test_locked_account_cannot_sign_in_with_a_passkey(idp: Any) -> None:
    from idp.accounts.models import User
    from idp.admin.service import Actor, lock_user
    from idp.extensions import db

    user, key = user_with_passkey(idp)
    with idp.app.app_context():
        lock_user(Actor.cli(), db.session.get(User, user.id))
        db.session.commit()
    browser = Browser(idp.url)
    _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
    assert answer.status_code == 403 and answer.json()["error"] == "account_locked"
    assert idp.events("login_refused_locked") and not signed_in(browser)


def test_passkey_requests_need_the_csrf_token(idp: Any) -> None:
    browser = Browser(idp.url)
    login_page(browser, f"{idp.url}/login")
    response = browser.session.post(
        f"{idp.url}/login/passkey/options",
        json={},
        headers={"Accept": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400 and response.json()["error"] == "csrf_failed"


def test_a_passkey_name_in_use_is_refused_and_unnamed_ones_are_numbered(idp: Any) -> None:
    """Issue 14, 6b: two passkeys of one user never share a name."""
    _user, key = user_with_passkey(idp)  # "Laptop"
    browser = Browser(idp.url)
    _, answer = use_passkey(browser, login_page(browser, f"{idp.url}/login"), key)
    assert answer.status_code == 200, answer.text
    account = browser.go(f"{idp.url}/account")
    options_url = data_of(account, "passkey-add")["options"]

    taken = post_json(browser, account, options_url, {"name": " laptop "})
    assert taken.status_code == 400 and taken.json()["error"] == "name_taken"
    assert "already have a passkey with this name" in taken.json()["error_description"]
    assert [e.detail["reason"] for e in idp.events("passkey_change_refused")] == ["name_taken"]

    # Without a name: "Passkey", then "Passkey 2".
    for expected in ("Passkey", "Passkey 2"):
        options = post_json(browser, account, options_url, {"name": ""})
        assert options.status_code == 200, options.text
        _, credential = create_credential(options_json=options.json(), origin=idp.url)
        added = post_json(browser, account, "/account/passkeys", {"credential": credential})
        assert added.status_code == 201, added.text
        assert added.json()["passkey"]["name"] == expected
    # "Passkey added" is said once, on the next account page.
    page = browser.go(f"{idp.url}/account")
    assert page.text.count('id="passkey-added"') == 2  # one per passkey added
    assert "Passkey added: “Passkey 2”." in page.text
    assert 'id="passkey-added"' not in browser.go(f"{idp.url}/account").text
