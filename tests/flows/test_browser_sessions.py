"""Issue 15, "Done when": "I lost my phone", in Chromium.

Erika's phone (a software device) is stolen, and the thief signs in at
FinanceCloud with it (an English browser; the phone confirms). On her laptop
(a German browser) Erika sees that session under "Ihre Sitzungen", confirmed
with the phone, signed in to FinanceCloud; her tablet (the browser device app,
in English) lists it too. She deletes the phone on the account page, confirming
with the tablet, says it was lost or stolen, and the page ticks "also sign out
everywhere this device confirmed a sign-in" by itself. FinanceCloud receives a
Logout Token for the thief's sid and drops the sign-in; the refresh token it
held no longer works; the audit log records the deletion, the ended session
and the delivery. Erika's own session (confirmed with the tablet) stays.

The device app (in German) does the same from its own lists: it ends a
session it does not recognise, deletes the stolen phone as lost or stolen
(which ticks "sign out everywhere it confirmed"), and signs out everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import requests
from playwright.sync_api import Page, expect

from .browser import screenshot
from .conftest import PASSWORD, LiveRp
from .devices import SoftDevice, last_sms_code
from .test_account_devices import direct_login
from .test_approvals import enrolled
from .test_backchannel_logout import logouts, sid_of, signed_in_at
from .test_browser_device_app import phone, start_sign_in
from .test_demo_rp import browser_session
from .test_sessions import ended_events, open_sids, refresh, refresh_token_of, sign_in_with_device

# A browser walks what the UI does; the HTTP flow tests cover both backends.


def rp_browser(rp: LiveRp, page: Page) -> requests.Session:
    """A requests session holding the Chromium profile's FinanceCloud cookie
    (to read the tokens FinanceCloud keeps for it)."""
    session = requests.Session()
    for cookie in page.context.cookies(rp.url):
        session.cookies.set(cookie["name"], cookie["value"])
    return session


def test_i_lost_my_phone(idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any) -> None:
    from idp.accounts.models import User
    from idp.devices.enrolment import new_binding_code
    from idp.extensions import db

    user = idp.add_user(phone_number="+49 151 1234567", email="erika@example.org")
    rp = rp_factory(require_mfa=True, first_party=True, backchannel=True)
    stolen = SoftDevice(idp.url)
    started = stolen.start(
        identifier=user.access_number, password=PASSWORD, device_name="Erika's phone"
    )
    assert stolen.complete(started.json(), last_sms_code(idp.app.instance_path)).status_code == 201

    # The thief signs in at FinanceCloud; the stolen phone confirms.
    thief = new_context().new_page()
    number = start_sign_in(thief, rp, user)
    [pending] = stolen.approvals()
    assert stolen.answer(pending["id"], "approve", number).status_code == 200
    thief.wait_for_url(rp.url + "/me")
    sid = json.loads(thief.locator("#id-token-claims").inner_text())["sid"]
    tokens = rp.tokens(rp_browser(rp, thief))
    assert tokens is not None and tokens.refresh_token

    # Erika's tablet: the browser device app, added with a code from her account.
    with idp.app.app_context():
        code = new_binding_code(db.session.get(User, user.id))
    tablet = phone(new_context, idp)
    tablet.goto(f"{idp.url}/app/#code={code}")
    tablet.fill("#device-name", "Tablet")
    tablet.click("#binding-start")
    expect(tablet.locator("body")).to_have_attribute("data-app-state", "main")
    listed = tablet.locator(f"#sessions li[data-sid='{sid}']")
    expect(listed.locator(".session-confirmed")).to_have_text(
        "Confirmed with the device “Erika's phone”"
    )
    expect(listed.locator(".session-apps")).to_have_text("Signed in to: FinanceCloud")

    # Her laptop, in German: the account page lists the thief's session.
    laptop = new_context(locale="de-DE").new_page()
    laptop.goto(f"{idp.url}/login")
    laptop.fill("#identifier", user.access_number)
    laptop.fill("#password", PASSWORD)
    laptop.click("button[type=submit].primary")
    laptop.wait_for_url(f"{idp.url}/account")
    expect(laptop.locator("#sessions")).to_have_text("Ihre Sitzungen")
    theirs = laptop.locator(f"#session-{sid}")
    expect(theirs.locator(".session-confirmed")).to_have_text(
        "Bestätigt mit dem Gerät „Erika's phone“"
    )
    expect(theirs.locator(".session-apps")).to_contain_text("FinanceCloud")
    expect(laptop.locator("li.this-browser .session-current")).to_have_text("(dieser Browser)")
    screenshot(laptop, "account-sessions-de")

    # She deletes the phone; the tablet confirms it is her.
    laptop.click(f"#device-{stolen.device_id} a.device-delete")
    laptop.click("#step-up-app")
    match = laptop.locator("#match-code")
    expect(match).to_have_text(re.compile(r"^\d\d$"))
    request = tablet.locator("#approvals li[data-approval-id] button.open-approval")
    request.click(timeout=20_000)
    tablet.fill("#approval-code", match.inner_text())
    tablet.click("#approve")
    laptop.wait_for_url(f"{idp.url}/account/devices/{stolen.device_id}/delete")
    expect(laptop).to_have_title("Ein Gerät löschen · Freigabe")
    sign_out = laptop.locator("#sign-out-everywhere")
    expect(sign_out).not_to_be_checked()
    laptop.check("#reason-lost")
    expect(sign_out).to_be_checked()  # the default for a lost or stolen device
    screenshot(laptop, "device-delete-lost-de")
    laptop.click("#delete-device")
    expect(laptop.locator("#signed-out-everywhere")).to_contain_text("abgemeldet")

    # FinanceCloud was told the thief's sid and dropped that sign-in.
    [delivered] = logouts(idp, rp.client_id)
    assert delivered.detail["sid"] == sid and delivered.detail["outcome"] == "delivered"
    thief.goto(rp.url + "/me")
    expect(thief).to_have_url(rp.url + "/")
    # Its refresh token died with the session.
    assert refresh(idp, rp, str(tokens.refresh_token)).json()["error"] == "invalid_grant"
    # The audit log says who did what.
    [deleted] = idp.events("device_deleted")
    assert deleted.actor == f"user:{user.id}" and deleted.detail["sign_out"] is True
    assert deleted.detail["reason"] == "lost_or_stolen"
    [ended] = [e for e in idp.events("session_ended") if e.detail["sid"] == sid]
    assert ended.detail["reason"] == "device_deleted"
    # Erika's own session (confirmed with the tablet) stays; the list lost the thief's.
    assert sid not in open_sids(idp, user.id)
    laptop.goto(f"{idp.url}/account")
    expect(laptop.locator("#session-list li")).to_have_count(1)
    tablet.reload()
    expect(tablet.locator(f"#sessions li[data-sid='{sid}']")).to_have_count(0)


def test_the_device_app_ends_sessions_and_deletes_a_lost_phone(
    idp: Any, rp_factory: Callable[..., LiveRp], new_context: Any
) -> None:
    """The sign-ins are made over HTTP (a browser adds nothing there); the
    app is what is walked."""
    from idp.accounts.models import User
    from idp.devices.enrolment import new_binding_code
    from idp.extensions import db

    rp = rp_factory(require_mfa=True, backchannel=True)
    user, stolen = enrolled(idp, email="erika@example.org")
    thief, _ = browser_session()
    thief_sid = sid_of(sign_in_with_device(idp, thief, rp, user, stolen))
    thief_refresh = refresh_token_of(rp, thief)
    unknown, _ = direct_login(idp, user)
    [unknown_sid] = open_sids(idp, user.id) - {thief_sid}
    own, _ = direct_login(idp, user)
    with idp.app.app_context():
        code = new_binding_code(db.session.get(User, user.id))
    tablet = phone(new_context, idp, locale="de-DE")
    tablet.goto(f"{idp.url}/app/#code={code}")
    tablet.fill("#device-name", "Tablet")
    tablet.click("#binding-start")
    expect(tablet.locator("body")).to_have_attribute("data-app-state", "main")
    tablet_id = tablet.locator("#devices li[data-this-device='true']").get_attribute(
        "data-device-id"
    )
    listed = tablet.locator("#sessions li[data-sid]")
    expect(listed).to_have_count(3)

    # "End this session" on the one she does not recognise.
    tablet.locator(f"#sessions li[data-sid='{unknown_sid}'] button.end-session").click()
    expect(tablet.locator("#sessions-result")).to_have_text(
        "Die Sitzung wurde beendet. Ihre Apps wurden abgemeldet."
    )
    expect(listed).to_have_count(2)
    assert unknown.go(idp.url + "/account").url.startswith(idp.url + "/login")
    [ended] = ended_events(idp, unknown_sid)
    assert (ended.actor, ended.detail["reason"]) == (f"device:{tablet_id}", "user")

    # The stolen phone, deleted as lost or stolen: the box ticks itself.
    tablet.locator(f"#devices li[data-device-id='{stolen.device_id}'] button.delete-device").click()
    sign_out = tablet.locator("#delete-sign-out")
    expect(sign_out).not_to_be_checked()
    tablet.check("#delete-reason-lost")
    expect(sign_out).to_be_checked()
    screenshot(tablet, "device-app-delete-lost-de")
    tablet.click("#delete-confirm")
    expect(tablet.locator("#devices-result")).to_contain_text(
        "Überall, wo es eine Anmeldung bestätigt hat, sind Sie jetzt abgemeldet."
    )
    [told] = logouts(idp, rp.client_id)
    assert (told.detail["sid"], told.detail["outcome"]) == (thief_sid, "delivered")
    assert not signed_in_at(thief, rp)
    assert refresh(idp, rp, thief_refresh).json()["error"] == "invalid_grant"
    [deleted] = idp.events("device_deleted")
    assert deleted.actor == f"device:{tablet_id}" and deleted.detail["sign_out"] is True
    assert deleted.detail["reason"] == "lost_or_stolen"
    expect(tablet.locator(f"#sessions li[data-sid='{thief_sid}']")).to_have_count(0)

    # "Sign out everywhere": the last one ends too.
    expect(listed).to_have_count(1)
    tablet.click("#sessions-end-all")
    expect(tablet.locator("#sessions-result")).to_contain_text("1 Sitzung(en) beendet")
    expect(tablet.locator("#sessions-empty")).to_be_visible()
    assert open_sids(idp, user.id) == set()
    assert own.go(idp.url + "/account").url.startswith(idp.url + "/login")
