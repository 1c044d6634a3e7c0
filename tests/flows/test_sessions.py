"""Your sessions, and what a deleted device or passkey takes with it.

A user signs in at FinanceCloud (the demo RP, with back-channel logout) and
elsewhere; the account page lists the sessions in words and ends one, or all
others. Ending a session goes the way every session ends (idp.auth.sessions):
its refresh tokens die in the same transaction, and the RP gets a Logout Token
for its sid and drops the sign-in. Deleting a device (account page, device
API) or a passkey with "sign out everywhere" ends exactly the sessions it
confirmed; without it they stay.
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select, update

from clients.device.authenticator import get_assertion
from idp.webauthn import action_challenge

from .conftest import LiveRp
from .devices import SoftDevice
from .helpers import Browser, form_fields
from .test_account_devices import direct_login, post
from .test_admin_api import automation
from .test_admin_pages import admin_session, admin_with_device, by_id, get, send
from .test_approvals import enrolled, match_code, proceed
from .test_backchannel_logout import logouts, sid_of, signed_in_at
from .test_demo_rp import browser_session, post_form, sign_in
from .test_device_cli import Cli, new_user
from .test_device_cli import enrol as cli_enrol
from .test_device_delete import binding_device, nonce_for
from .test_passkeys import login_page, register, use_passkey, user_with_passkey

# --- helpers ---------------------------------------------------------------------------


def refresh(idp: Any, rp: LiveRp, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(rp.client_id, rp.client_secret or ""),
        timeout=10,
    )


def refresh_token_of(rp: LiveRp, browser: requests.Session) -> str:
    tokens = rp.tokens(browser)
    assert tokens is not None and tokens.refresh_token
    return str(tokens.refresh_token)


def sign_in_with_device(
    idp: Any, browser: requests.Session, rp: LiveRp, user: Any, device: SoftDevice
) -> requests.Response:
    """FinanceCloud (which requires MFA): the password, then ``device``
    approves the push; FinanceCloud's /me."""
    waiting = sign_in(browser, rp, user)
    assert "/login/approval" in waiting.url, waiting.url
    [pending] = device.approvals()
    assert device.answer(pending["id"], "approve", match_code(waiting)).status_code == 200
    page = proceed(Browser(idp.url, session=browser), waiting)
    while page.is_redirect:
        page = browser.get(page.headers["Location"], timeout=30)
    if 'value="allow"' in page.text:
        page = post_form(browser, page, decision="allow")
    assert page.url == rp.url + "/me", page.url
    return page


def session_items(page: requests.Response) -> dict[str, str]:
    """The account page's sessions: sid -> the item's text."""
    found = re.findall(r'<li id="session-([\w-]+)"[^>]*>(.*?)</li>', page.text, re.DOTALL)
    return {sid: html.unescape(re.sub(r"<[^>]+>", " ", text)) for sid, text in found}


def open_sids(idp: Any, user_id: int) -> set[str]:
    from idp.auth.models import LoginSession
    from idp.extensions import db

    with idp.app.app_context():
        return set(
            db.session.scalars(
                select(LoginSession.id).where(
                    LoginSession.user_id == user_id, LoginSession.ended_at.is_(None)
                )
            )
        )


def ended_events(idp: Any, sid: str) -> list[Any]:
    return [e for e in idp.events("session_ended") if e.detail.get("sid") == sid]


# --- the account page ------------------------------------------------------------------


def test_the_account_page_lists_sessions_and_ends_one(idp: Any, rp_factory: Any) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    laptop, _ = browser_session()
    laptop.headers["User-Agent"] = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    sid = sid_of(sign_in(laptop, rp, user))
    old_refresh = refresh_token_of(rp, laptop)
    browser, account = direct_login(idp, user)
    [here] = open_sids(idp, user.id) - {sid}

    items = session_items(account)
    assert set(items) == {sid, here}
    assert "Chrome on Linux" in items[sid] and "FinanceCloud" in items[sid]
    assert "Password only" in items[sid] and "127.0.0.1" in items[sid]
    assert "this browser" in items[here] and "this browser" not in items[sid]
    # This browser's own item has no "End" (that is "Sign out").
    assert f"/account/sessions/{here}/end" not in account.text

    ended = post(browser, account, f"/account/sessions/{sid}/end")
    assert ended.status_code == 200 and 'id="sessions-notice"' in ended.text
    assert set(session_items(ended)) == {here}
    # The RP was told (Back-Channel Logout) and dropped the sign-in.
    [event] = logouts(idp, rp.client_id)
    assert (event.detail["sid"], event.detail["outcome"]) == (sid, "delivered")
    assert not signed_in_at(laptop, rp)
    # The refresh token issued from it died with it.
    assert refresh(idp, rp, old_refresh).json()["error"] == "invalid_grant"
    [audited] = ended_events(idp, sid)
    assert audited.actor == f"user:{user.id}" and audited.detail["reason"] == "user"
    # The ended browser is signed out at the IdP too; this one is not.
    assert laptop.get(idp.url + "/account", timeout=10).url.startswith(idp.url + "/login")
    assert browser.go(idp.url + "/account").url == idp.url + "/account"

    # Ending it again, or another user's session: not found, nothing changes.
    again = post(browser, ended, f"/account/sessions/{sid}/end")
    assert "had ended already" in again.text
    other = idp.add_user(email="max@example.org")
    direct_login(idp, other)
    [their_sid] = open_sids(idp, other.id)
    post(browser, again, f"/account/sessions/{their_sid}/end")
    assert open_sids(idp, other.id) == {their_sid}


def test_ending_all_other_sessions_and_signing_out_keeps_offline_access(
    idp: Any, rp_factory: Any
) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    first, _ = browser_session()
    first_sid = sid_of(sign_in(first, rp, user))
    second, _ = browser_session()
    second_sid = sid_of(sign_in(second, rp, user))
    second_refresh = refresh_token_of(rp, second)
    browser, account = direct_login(idp, user)
    [here] = open_sids(idp, user.id) - {first_sid, second_sid}

    page = post(browser, account, "/account/sessions/end-others")
    assert "2 other sessions have ended." in page.text
    assert open_sids(idp, user.id) == {here}
    assert {e.detail["sid"] for e in logouts(idp, rp.client_id, count=2)} == {
        first_sid,
        second_sid,
    }
    assert not signed_in_at(first, rp) and not signed_in_at(second, rp)
    assert refresh(idp, rp, second_refresh).json()["error"] == "invalid_grant"
    assert 'id="end-other-sessions"' not in page.text  # none left

    # Signing out is not "end this session": offline access outlives it
    # (Back-Channel Logout §2.7), while the RP is told all the same.
    third, _ = browser_session()
    sign_in(third, rp, user)
    kept = refresh_token_of(rp, third)
    account = third.get(idp.url + "/account", timeout=10)
    third.post(idp.url + "/account/logout", data=form_fields(account.text), timeout=10)
    logouts(idp, rp.client_id, count=3)
    assert refresh(idp, rp, kept).status_code == 200


def test_last_active_is_written_at_most_once_a_minute(idp: Any) -> None:
    from idp.auth.models import LoginSession
    from idp.extensions import db, utcnow

    user = idp.add_user()
    browser, _ = direct_login(idp, user)
    [sid] = open_sids(idp, user.id)

    def last_active() -> Any:
        with idp.app.app_context():
            return db.session.get(LoginSession, sid).last_active_at  # type: ignore[union-attr]

    with idp.app.app_context():
        long_ago = utcnow() - timedelta(minutes=30)
        db.session.execute(
            update(LoginSession).where(LoginSession.id == sid).values(last_active_at=long_ago)
        )
        db.session.commit()
    browser.go(idp.url + "/account")
    written = last_active()
    assert written > long_ago + timedelta(minutes=29)
    browser.go(idp.url + "/account")
    assert last_active() == written  # within the minute: not written again


# --- devices ---------------------------------------------------------------------------


def delete_with(
    device: SoftDevice, target_id: str, *, signed: dict[str, str] | None = None, **body: Any
) -> requests.Response:
    """Delete ``target_id`` from ``device`` with ``body`` (reason, sign_out),
    signed over ``signed`` added to the payload (default: as the body says)."""
    nonce = nonce_for(device)
    if signed is None:
        signed = {k: ("yes" if v else "no") if isinstance(v, bool) else v for k, v in body.items()}
    assert device.key is not None
    assertion = get_assertion(
        key=device.key,
        rp_id=device.rp_id,
        origin=device.origin,
        challenge=action_challenge(
            purpose="delete_device", payload={"device": target_id, "nonce": nonce, **signed}
        ),
        user_verified=True,
    )
    return device.call(
        "POST",
        f"/devices/{target_id}/delete",
        json={"nonce": nonce, "assertion": assertion, **body},
    )


def test_a_lost_device_deleted_from_another_signs_out_what_it_confirmed(
    idp: Any, rp_factory: Any
) -> None:
    rp = rp_factory(backchannel=True, require_mfa=True)
    user, phone = enrolled(idp, email="erika@example.org")
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    by_phone, _ = browser_session()
    phone_sid = sid_of(sign_in_with_device(idp, by_phone, rp, user, phone))
    phone_refresh = refresh_token_of(rp, by_phone)
    by_tablet, _ = browser_session()
    tablet_sid = sid_of(sign_in_with_device(idp, by_tablet, rp, user, tablet))

    listed = tablet.call("GET", "/sessions")
    assert listed.status_code == 200, listed.text
    sessions = {s["sid"]: s for s in listed.json()["sessions"]}
    assert set(sessions) == {phone_sid, tablet_sid}
    assert sessions[phone_sid]["confirmed_by"] == {
        "method": "device",
        "id": phone.device_id,
        "name": "Test phone",
    }
    assert sessions[phone_sid]["apps"] == [{"client_id": rp.client_id, "name": "FinanceCloud"}]
    assert sessions[phone_sid]["ip"] == "127.0.0.1"

    # What the body asks must be what the device signed.
    assert phone.device_id is not None and tablet.device_id is not None
    unsigned = delete_with(tablet, phone.device_id, signed={}, reason="lost_or_stolen")
    assert unsigned.status_code == 400 and unsigned.json()["error"] == "webauthn_failed"

    # Lost or stolen: signing out everywhere it confirmed is the default.
    deleted = delete_with(tablet, phone.device_id, reason="lost_or_stolen")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["signed_out"] is True
    [event] = logouts(idp, rp.client_id)
    assert (event.detail["sid"], event.detail["outcome"]) == (phone_sid, "delivered")
    assert event.detail["reason"] == "device_deleted"
    assert not signed_in_at(by_phone, rp)
    assert refresh(idp, rp, phone_refresh).json()["error"] == "invalid_grant"
    assert signed_in_at(by_tablet, rp)  # the tablet confirmed that one
    [audited] = [e for e in idp.events("device_deleted") if e.detail["device"] == phone.device_id]
    assert audited.actor == f"device:{tablet.device_id}"
    assert audited.detail["reason"] == "lost_or_stolen" and audited.detail["sign_out"] is True
    [ended] = ended_events(idp, phone_sid)
    assert ended.actor == f"device:{tablet.device_id}"
    assert ended.detail["reason"] == "device_deleted"

    # No longer used, and no "sign out": what it confirmed stays signed in.
    tablet_refresh = refresh_token_of(rp, by_tablet)
    gone = delete_with(tablet, tablet.device_id, reason="no_longer_used")
    assert gone.status_code == 200 and gone.json()["signed_out"] is False
    assert open_sids(idp, user.id) == {tablet_sid}
    assert refresh(idp, rp, tablet_refresh).status_code == 200


def test_a_device_ends_one_session_or_all(idp: Any, rp_factory: Any) -> None:
    rp = rp_factory(backchannel=True)
    user, phone = enrolled(idp, email="erika@example.org")
    first, _ = browser_session()
    first_sid = sid_of(sign_in(first, rp, user))
    first_refresh = refresh_token_of(rp, first)
    second, _ = browser_session()
    second_sid = sid_of(sign_in(second, rp, user))
    [listed] = [
        s for s in phone.call("GET", "/sessions").json()["sessions"] if s["sid"] == first_sid
    ]
    assert listed["confirmed_by"] == {"method": "password", "id": None, "name": None}

    ended = phone.call("POST", f"/sessions/{first_sid}/end")
    assert (ended.status_code, ended.json()) == (200, {"ended": 1})
    assert logouts(idp, rp.client_id)[0].detail["sid"] == first_sid
    assert refresh(idp, rp, first_refresh).json()["error"] == "invalid_grant"
    assert ended_events(idp, first_sid)[0].actor == f"device:{phone.device_id}"
    again = phone.call("POST", f"/sessions/{first_sid}/end")
    assert (again.status_code, again.json()["error"]) == (404, "session_not_found")
    # Another user's session is not found either, and stays.
    other = idp.add_user(email="max@example.org")
    theirs, _ = browser_session()
    their_sid = sid_of(sign_in(theirs, rp, other))
    assert phone.call("POST", f"/sessions/{their_sid}/end").status_code == 404
    assert open_sids(idp, other.id) == {their_sid}

    everything = phone.call("POST", "/sessions/end-all")
    assert (everything.status_code, everything.json()) == (200, {"ended": 1})
    assert open_sids(idp, user.id) == set()
    assert logouts(idp, rp.client_id, count=2)[1].detail["sid"] == second_sid
    assert phone.call("GET", "/sessions").json() == {"sessions": []}


# --- administrators --------------------------------------------------------------------


def test_an_administrator_sees_and_ends_sessions(idp: Any, rp_factory: Any) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    first, _ = browser_session()
    first_sid = sid_of(sign_in(first, rp, user))
    first_refresh = refresh_token_of(rp, first)
    second, _ = browser_session()
    second_sid = sid_of(sign_in(second, rp, user))
    api = automation(idp)

    listed = api.ok("GET", f"/users/{user.sub}/sessions")
    assert {s["sid"] for s in listed["items"]} == {first_sid, second_sid}
    assert listed["items"][0]["apps"] == [{"client_id": rp.client_id, "name": "FinanceCloud"}]
    assert listed["items"][0]["confirmed_by"]["method"] == "password"

    assert api.ok("POST", f"/users/{user.sub}/sessions/{first_sid}/end", 204) is None
    assert logouts(idp, rp.client_id)[0].detail["sid"] == first_sid
    assert not signed_in_at(first, rp) and signed_in_at(second, rp)
    assert refresh(idp, rp, first_refresh).json()["error"] == "invalid_grant"
    [audited] = ended_events(idp, first_sid)
    assert (audited.actor, audited.detail["reason"]) == (f"api:{api.client_id}", "admin")
    gone = api.call("POST", f"/users/{user.sub}/sessions/{first_sid}/end")
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")

    # The admin page shows the one left and ends it, as the administrator.
    admin, device = admin_with_device(idp, email="admin@example.org")
    browser, _ = admin_session(idp, admin, device)
    page = get(browser, f"/admin/users/{user.sub}")
    assert f'id="session-{second_sid}"' in page.text and first_sid not in page.text
    assert "FinanceCloud" in by_id(page, f"session-{second_sid}")
    done = send(browser, page, f"/admin/users/{user.sub}/sessions/{second_sid}/end")
    assert 'id="no-sessions"' in done.text
    assert ended_events(idp, second_sid)[0].actor == f"admin:{admin.id}"
    # The Logout Token goes out after the answer, in the background.
    assert logouts(idp, rp.client_id, count=2)[1].detail["sid"] == second_sid
    assert not signed_in_at(second, rp)


def test_administrators_remove_a_lost_device_with_or_without_signing_out(
    idp: Any, rp_factory: Any
) -> None:
    rp = rp_factory(backchannel=True, require_mfa=True)
    user, phone = enrolled(idp, email="erika@example.org")
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    by_phone, _ = browser_session()
    phone_sid = sid_of(sign_in_with_device(idp, by_phone, rp, user, phone))
    phone_refresh = refresh_token_of(rp, by_phone)
    by_tablet, _ = browser_session()
    tablet_sid = sid_of(sign_in_with_device(idp, by_tablet, rp, user, tablet))

    # The API, told "lost or stolen" but not to sign out: the sessions stay.
    api = automation(idp)
    path = f"/users/{user.sub}/devices/{tablet.device_id}"
    api.ok("DELETE", path, 204, params={"reason": "lost_or_stolen", "sign_out": "false"})
    assert open_sids(idp, user.id) == {phone_sid, tablet_sid}

    # The idp command, "lost or stolen": signs out what the phone confirmed.
    command = ["devices", "remove", user.access_number, str(phone.device_id)]
    result = idp.app.test_cli_runner().invoke(args=[*command, "--reason", "lost_or_stolen"])
    assert result.exit_code == 0, result.output
    assert "signed out everywhere it confirmed a sign-in" in result.output
    assert open_sids(idp, user.id) == {tablet_sid}
    assert logouts(idp, rp.client_id)[0].detail["sid"] == phone_sid
    assert refresh(idp, rp, phone_refresh).json()["error"] == "invalid_grant"
    assert ended_events(idp, phone_sid)[0].actor == "cli"
    deleted = {e.detail["device"]: e for e in idp.events("device_deleted")}
    assert deleted[str(phone.device_id)].detail["sign_out"] is True
    assert deleted[str(tablet.device_id)].detail["sign_out"] is False


def test_the_admin_page_removes_a_device_with_or_without_signing_out(
    idp: Any, rp_factory: Any
) -> None:
    rp = rp_factory(backchannel=True, require_mfa=True)
    user, phone = enrolled(idp, email="erika@example.org")
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    by_phone, _ = browser_session()
    phone_sid = sid_of(sign_in_with_device(idp, by_phone, rp, user, phone))
    phone_refresh = refresh_token_of(rp, by_phone)
    by_tablet, _ = browser_session()
    tablet_sid = sid_of(sign_in_with_device(idp, by_tablet, rp, user, tablet))
    tablet_refresh = refresh_token_of(rp, by_tablet)
    admin, device = admin_with_device(idp, email="admin@example.org")
    browser, _ = admin_session(idp, admin, device)

    def deleted(device_id: str | None) -> list[Any]:
        return [e for e in idp.events("device_deleted") if e.detail["device"] == device_id]

    # The form asks why, and offers signing out everywhere it confirmed.
    path = f"/admin/users/{user.sub}/devices/{tablet.device_id}/remove"
    form = get(browser, path)
    assert 'name="reason" value="lost_or_stolen"' in form.text
    assert 'name="sign_out" value="yes"' in form.text
    assert "<title>Remove a device · Freigabe</title>" in form.text
    assert '<main class="card">' in form.text
    # Without its CSRF token it is refused, and nothing changes.
    forged = {"reason": "lost_or_stolen", "sign_out": "yes"}
    assert browser.go(idp.url + path, "POST", data=forged).status_code == 400
    assert tablet.call("GET", "/approvals").status_code == 200
    assert open_sids(idp, user.id) == {phone_sid, tablet_sid}

    # "Lost or stolen" with the box left clear: the device goes, what it
    # confirmed stays signed in.
    kept = send(browser, form, path, reason="lost_or_stolen")
    assert "The device Tablet was removed" in kept.text
    assert tablet.call("GET", "/approvals").json()["error"] == "device_revoked"
    assert open_sids(idp, user.id) == {phone_sid, tablet_sid}
    assert refresh(idp, rp, tablet_refresh).status_code == 200
    [event] = deleted(tablet.device_id)
    assert event.actor == f"admin:{admin.id}"
    assert (event.detail["reason"], event.detail["sign_out"]) == ("lost_or_stolen", False)

    # With the box ticked: the sessions it confirmed end, as the administrator.
    path = f"/admin/users/{user.sub}/devices/{phone.device_id}/remove"
    send(browser, get(browser, path), path, reason="lost_or_stolen", sign_out="yes")
    assert phone.call("GET", "/approvals").json()["error"] == "device_revoked"
    assert open_sids(idp, user.id) == {tablet_sid}
    [told] = logouts(idp, rp.client_id)
    assert (told.detail["sid"], told.detail["outcome"]) == (phone_sid, "delivered")
    assert not signed_in_at(by_phone, rp) and signed_in_at(by_tablet, rp)
    assert refresh(idp, rp, phone_refresh).json()["error"] == "invalid_grant"
    [ended] = ended_events(idp, phone_sid)
    assert (ended.actor, ended.detail["reason"]) == (f"admin:{admin.id}", "device_deleted")
    [event] = deleted(phone.device_id)
    assert event.actor == f"admin:{admin.id}" and event.detail["sign_out"] is True


# --- idp-device ------------------------------------------------------------------------


def test_idp_device_lists_and_ends_sessions_and_deletes_a_lost_device(
    idp: Any, rp_factory: Any, tmp_path: Path
) -> None:
    rp = rp_factory(backchannel=True, require_mfa=True)
    laptop = Cli(store=tmp_path / "laptop" / "device.json")
    user = new_user(idp)
    cli_enrol(idp, laptop, user, name="Erika's laptop")
    phone = binding_device(idp, user, device_name="Phone")
    by_phone, _ = browser_session()
    phone_sid = sid_of(sign_in_with_device(idp, by_phone, rp, user, phone))
    direct_login(idp, user)
    [other_sid] = open_sids(idp, user.id) - {phone_sid}

    listed = laptop.ok("sessions")
    assert phone_sid in listed.stdout and "device 'Phone'" in listed.stdout
    assert "FinanceCloud" in listed.stdout and "password only" in listed.stdout
    as_json = {s["sid"]: s for s in json.loads(laptop.ok("sessions", "--json").stdout)}
    assert as_json[phone_sid]["confirmed_by"]["id"] == phone.device_id

    ended = laptop.ok("sessions", "end", other_sid)
    assert "has ended" in ended.stderr
    assert open_sids(idp, user.id) == {phone_sid}
    gone = laptop.run("sessions", "end", other_sid)
    assert gone.returncode == 1 and "no such session" in gone.stderr

    # The phone is lost: deleting it signs out what it confirmed (signed
    # with --reason, the default for which is to sign out).
    deleted = laptop.ok("delete", str(phone.device_id), "--yes", "--reason", "lost_or_stolen")
    assert "you are signed out" in deleted.stderr
    assert open_sids(idp, user.id) == set()
    assert logouts(idp, rp.client_id)[0].detail["sid"] == phone_sid
    assert not signed_in_at(by_phone, rp)

    direct_login(idp, user)
    assert "1 session(s) ended" in laptop.ok("sessions", "end-all", "--yes").stderr
    assert open_sids(idp, user.id) == set()
    assert "not signed in anywhere" in laptop.ok("sessions").stderr


# --- passkeys --------------------------------------------------------------------------


def test_removing_a_passkey_can_sign_out_everywhere_it_signed_in(idp: Any) -> None:
    from idp.extensions import db
    from idp.passkeys.models import Passkey

    user, laptop_key = user_with_passkey(idp, email="erika@example.org")
    first = Browser(idp.url)
    assert use_passkey(first, login_page(first, idp.url + "/login"), laptop_key)[1].ok
    second = Browser(idp.url)
    assert use_passkey(second, login_page(second, idp.url + "/login"), laptop_key)[1].ok
    phone_key = register(second, "Phone")
    mine = Browser(idp.url)
    assert use_passkey(mine, login_page(mine, idp.url + "/login"), phone_key)[1].ok
    signed_in = open_sids(idp, user.id)
    assert len(signed_in) == 4  # the password session that added the first passkey too
    with idp.app.app_context():
        ids = dict(db.session.execute(select(Passkey.name, Passkey.id)).all())
    laptop_id, phone_id = ids["Laptop"], ids["Phone"]

    account = mine.go(idp.url + "/account")
    [here] = [text for text in session_items(account).values() if "this browser" in text]
    assert "Signed in with the passkey “Phone”" in here
    # Each passkey's "Delete" offers signing out everywhere it signed in.
    offered = re.search(rf'<li id="passkey-{laptop_id}">(.*?)</li>', account.text, re.DOTALL)
    assert offered and 'name="sign_out" value="yes"' in offered.group(1)
    assert "Also sign out everywhere this passkey signed in" in offered.group(1)
    done = post(mine, account, f"/account/passkeys/{laptop_id}/delete", sign_out="yes")
    assert done.status_code == 200 and f'id="passkey-{laptop_id}"' not in done.text
    # The two sessions the laptop's passkey signed in ended; this one and the
    # password session stay.
    ended = signed_in - open_sids(idp, user.id)
    assert len(ended) == 2 and len(open_sids(idp, user.id)) == 2
    for sid in ended:
        [event] = ended_events(idp, sid)
        assert (event.actor, event.detail["reason"]) == (f"user:{user.id}", "passkey_deleted")
    assert first.go(idp.url + "/account").url.startswith(idp.url + "/login")
    [deleted] = idp.events("passkey_deleted")
    assert deleted.detail["sign_out"] is True

    # Without the box: what the passkey signed in stays signed in, this
    # browser too (it signed in with it).
    kept = post(mine, done, f"/account/passkeys/{phone_id}/delete")
    assert kept.url == idp.url + "/account" and 'id="no-passkeys"' in kept.text
    assert len(open_sids(idp, user.id)) == 2
    assert [e.detail["sign_out"] for e in idp.events("passkey_deleted")] == [True, False]
