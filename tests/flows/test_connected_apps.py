"""Connected apps: the apps a user gave access to, on the account page, the
admin pages and the admin API, and taking that access back.

FinanceCloud (the demo RP, with its back-channel logout URI) holds a refresh
token after the user allowed it. Removing its access deletes the consent,
revokes its refresh and access tokens (the token endpoint, userinfo and
introspection refuse them), tells it by back-channel logout (it drops the
sign-in), leaves the user signed in here, and the next sign-in asks for
consent again. Also: the page asks first and needs the CSRF token; logos
only over https (or from the issuer itself); nobody sees or removes another
user's apps; a code issued before the removal is worthless after it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from typing import Any

import requests

from .conftest import PASSWORD, LiveRp
from .helpers import Browser, RelyingParty
from .test_account_devices import step_up_with_app
from .test_admin_api import automation
from .test_admin_pages import admin_session, admin_with_device, by_id, get, send
from .test_approvals import enrolled, mfa_client, to_waiting_page
from .test_backchannel_logout import logouts, sid_of, signed_in_at
from .test_demo_rp import browser_session, post_form, sign_in
from .test_protocol import login_through


def account(idp: Any, browser: requests.Session) -> requests.Response:
    page = browser.get(idp.url + "/account", timeout=10)
    assert page.status_code == 200 and page.url == idp.url + "/account", page.url
    return page


def apps_listed(page: requests.Response) -> list[str]:
    return re.findall(r'<li class="app" data-client-id="([^"]+)"', page.text)


def remove_on_the_account_page(
    idp: Any, browser: requests.Session, client_id: str
) -> requests.Response:
    """ "Remove access", then the confirmation page's button."""
    confirm = browser.get(idp.url + "/account/apps/remove", params={"client_id": client_id})
    assert confirm.status_code == 200 and 'id="remove-app"' in confirm.text, confirm.text[:2000]
    return post_form(browser, confirm)


def refresh(idp: Any, rp: LiveRp, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(rp.client_id, rp.client_secret or ""),
        timeout=10,
    )


def introspect(idp: Any, rp: LiveRp, token: str) -> dict[str, Any]:
    response = requests.post(
        f"{idp.url}/introspect",
        data={"token": token},
        auth=(rp.client_id, rp.client_secret or ""),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def userinfo(idp: Any, access_token: str) -> requests.Response:
    return requests.get(
        f"{idp.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )


def consents(idp: Any, user: Any) -> list[str]:
    from sqlalchemy import select

    from idp.extensions import db
    from idp.oidc.models import Consent

    with idp.app.app_context():
        return list(db.session.scalars(select(Consent.client_id).where(Consent.user_id == user.id)))


# --- the account page ----------------------------------------------------------------


def test_removing_an_apps_access_ends_everything_it_holds(
    idp: Any, rp_factory: Callable[..., LiveRp]
) -> None:
    rp = rp_factory(backchannel=True)
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sid = sid_of(sign_in(browser, rp, user))
    tokens = rp.tokens(browser)
    assert tokens is not None and tokens.refresh_token and tokens.access_token
    assert introspect(idp, rp, tokens.access_token)["active"] is True

    page = account(idp, browser)
    assert apps_listed(page) == [rp.client_id]
    entry = page.text[page.text.index('data-client-id="' + rp.client_id) :]
    assert "FinanceCloud" in entry and "Your e-mail address" in entry
    assert 'class="small app-offline"' in entry  # it holds a refresh token
    assert "last used" in entry and 'class="app-logo app-initial"' in entry  # no logo: "F"

    # The confirmation page, then its form; without the CSRF token nothing happens.
    refused = browser.post(
        idp.url + "/account/apps/remove", data={"client_id": rp.client_id}, timeout=10
    )
    assert refused.status_code == 400
    assert consents(idp, user) == [rp.client_id]
    done = remove_on_the_account_page(idp, browser, rp.client_id)
    assert done.url == idp.url + "/account#apps", done.url  # still signed in here
    assert "FinanceCloud no longer has access" in by_id(done, "app-removed")
    assert apps_listed(done) == [] and 'id="no-apps"' in done.text

    # The consent is gone and the removal audited, by the user.
    assert consents(idp, user) == []
    [removed] = idp.events("app_access_removed")
    assert (removed.user_id, removed.client_id, removed.actor) == (
        user.id,
        rp.client_id,
        f"user:{user.id}",
    )
    assert removed.detail == {"grants": 1, "sessions": 1}
    # FinanceCloud is told by back-channel logout for the sid it knows, and
    # drops the sign-in.
    [told] = logouts(idp, rp.client_id)
    assert (told.detail["sid"], told.detail["reason"]) == (sid, "app_removed")
    assert told.detail["outcome"] == "delivered"
    assert not signed_in_at(browser, rp)
    # Its refresh token and access token are dead.
    answer = refresh(idp, rp, tokens.refresh_token)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    assert userinfo(idp, tokens.access_token).status_code == 401
    assert introspect(idp, rp, tokens.access_token) == {"active": False}
    assert introspect(idp, rp, tokens.refresh_token) == {"active": False}

    # A second submit finds nothing to remove (and changes nothing).
    again = browser.get(
        idp.url + "/account/apps/remove", params={"client_id": rp.client_id}, timeout=10
    )
    assert again.url == idp.url + "/account#apps" and 'id="app-removed"' in again.text
    assert len(idp.events("app_access_removed")) == 1

    # The next sign-in at FinanceCloud asks for consent again (no password:
    # the IdP session goes on).
    ask = browser.get(rp.url + "/login", timeout=30)
    assert 'value="allow"' in ask.text and 'name="password"' not in ask.text, ask.text[:800]
    assert 'id="connected-apps-link"' in ask.text  # "you can withdraw this later"
    me = post_form(browser, ask, decision="allow")
    assert me.url == rp.url + "/me"
    assert apps_listed(account(idp, browser)) == [rp.client_id]


def test_logos_only_over_https_and_only_the_users_own_apps(idp: Any) -> None:
    logo = "https://cdn.example/ledger.png"
    safe_id, safe_secret = idp.add_client(name="Ledger", logo_uri=logo)
    plain_id, plain_secret = idp.add_client(name="plain app", logo_uri="http://127.0.0.1:9/a.png")
    erika = idp.add_user(email="erika@example.org")
    max_ = idp.add_user(email="max@example.org")
    erika_browser = Browser(idp.url)
    login_through(idp, RelyingParty(idp.url, safe_id, safe_secret), erika_browser, erika)
    login_through(idp, RelyingParty(idp.url, plain_id, plain_secret), erika_browser, erika)

    page = account(idp, erika_browser.session)
    assert sorted(apps_listed(page)) == sorted([safe_id, plain_id])
    # The https logo is shown, and the page's policy lets exactly its origin load it.
    assert f'<img src="{logo}"' in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://cdn.example;" in policy
    # A plain http logo elsewhere (mixed content under https) never loads: the initial.
    assert "127.0.0.1:9" not in page.text and "127.0.0.1" not in policy
    assert '<span class="app-logo app-initial" aria-hidden="true">P</span>' in page.text
    # Scopes in words, in both languages.
    assert "Confirm that it is you (your user ID)" in page.text
    erika_browser.session.get(f"{idp.url}/lang/de", timeout=10)
    german = account(idp, erika_browser.session)
    assert "Ihre verbundenen Apps" in german.text and "Ihre E-Mail-Adresse" in german.text

    # Max sees none of Erika's apps, and cannot remove one of them.
    max_browser, _ = browser_session()
    login = max_browser.get(idp.url + "/login", timeout=10)
    post_form(max_browser, login, identifier=max_.access_number, password=PASSWORD)
    theirs = account(idp, max_browser)
    assert apps_listed(theirs) == [] and safe_id not in theirs.text
    confirm = max_browser.get(
        idp.url + "/account/apps/remove", params={"client_id": safe_id}, timeout=10
    )
    assert confirm.url == idp.url + "/account#apps" and 'id="remove-app"' not in confirm.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', theirs.text)
    assert csrf is not None
    forced = max_browser.post(
        idp.url + "/account/apps/remove",
        data={"csrf_token": csrf.group(1), "client_id": safe_id},
        timeout=10,
    )
    assert forced.url == idp.url + "/account#apps"
    assert sorted(consents(idp, erika)) == sorted([safe_id, plain_id])
    assert not idp.events("app_access_removed")


def test_a_code_issued_before_the_removal_is_refused_after_it(idp: Any) -> None:
    client_id, secret = idp.add_client(name="Ledger")
    rp = RelyingParty(idp.url, client_id, secret)
    user = idp.add_user(email="erika@example.org")
    browser = Browser(idp.url)
    params, req = login_through(idp, rp, browser, user)

    remove_on_the_account_page(idp, browser.session, client_id)

    answer = rp.redeem(params["code"], req["verifier"])
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")


# --- administrators ------------------------------------------------------------------


def test_an_administrator_sees_and_removes_a_users_apps(
    idp: Any, rp_factory: Callable[..., LiveRp]
) -> None:
    rp = rp_factory(backchannel=True)
    other_id, other_secret = idp.add_client(name="Ledger")
    user = idp.add_user(email="erika@example.org")
    browser, _ = browser_session()
    sign_in(browser, rp, user)
    tokens = rp.tokens(browser)
    assert tokens is not None and tokens.refresh_token
    other = RelyingParty(idp.url, other_id, other_secret)
    params, req = login_through(idp, other, Browser(idp.url, session=browser), user)
    assert "refresh_token" in other.redeem(params["code"], req["verifier"]).json()
    admin, device = admin_with_device(idp, email="admin@example.org")
    admin_browser, _home = admin_session(idp, admin, device)

    # The admin page lists both apps with what they hold.
    page = get(admin_browser, f"/admin/users/{user.sub}")
    assert 'id="apps"' in page.text
    rows = re.findall(r'<tr class="app" data-client-id="([^"]+)"', page.text)
    assert sorted(rows) == sorted([rp.client_id, other_id])
    row = page.text[page.text.index(f'data-client-id="{rp.client_id}"') :]
    assert '<td class="app-offline">yes</td>' in row[: row.index("</tr>")]

    # Remove FinanceCloud's access: a page that names it, then its form.
    confirm = get(admin_browser, f"/admin/users/{user.sub}/apps/remove", client_id=rp.client_id)
    assert by_id(confirm, "app-name") == "FinanceCloud"
    done = send(
        admin_browser, confirm, f"/admin/users/{user.sub}/apps/remove", client_id=rp.client_id
    )
    assert done.status_code == 200 and "FinanceCloud no longer has access" in done.text
    assert re.findall(r'<tr class="app" data-client-id="([^"]+)"', done.text) == [other_id]
    [removed] = idp.events("app_access_removed")
    assert (removed.user_id, removed.actor) == (user.id, f"admin:{admin.id}")
    assert logouts(idp, rp.client_id)[0].detail["reason"] == "app_removed"
    assert not signed_in_at(browser, rp)
    answer = refresh(idp, rp, tokens.refresh_token)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_grant")
    # Gone: the page says so rather than pretending.
    gone = get(admin_browser, f"/admin/users/{user.sub}/apps/remove", client_id=rp.client_id)
    assert gone.status_code == 404

    # The admin API lists the other app and removes it.
    api = automation(idp)
    listed = api.ok("GET", f"/users/{user.sub}/apps")
    assert listed["total"] == 1
    [app] = listed["items"]
    assert (app["client_id"], app["name"], app["offline_access"]) == (other_id, "Ledger", True)
    assert "email" in app["scopes"] and app["granted_at"] and app["last_used_at"]
    api.ok("DELETE", f"/users/{user.sub}/apps/{other_id}", status=204)
    assert api.ok("GET", f"/users/{user.sub}/apps")["items"] == []
    missing = api.call("DELETE", f"/users/{user.sub}/apps/{other_id}")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
    by_api = [e for e in idp.events("app_access_removed") if e.client_id == other_id]
    assert [e.actor for e in by_api] == [f"api:{api.client_id}"]
    assert consents(idp, user) == []


# --- recent activity -----------------------------------------------------------------

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def activity(page: requests.Response) -> list[tuple[str, str]]:
    """(type, text) of each entry of "Recent activity", as shown."""
    entries = re.findall(
        r'<li class="activity-entry" data-type="([^"]+)">(.*?)</li>', page.text, re.S
    )
    return [
        (kind, " ".join(unescape(re.sub(r"<[^>]+>", "", body.replace("<br>", " | "))).split()))
        for kind, body in entries
    ]


def test_recent_activity_shows_the_users_own_events_in_words(idp: Any) -> None:
    erika, device = enrolled(idp, email="erika@example.org")
    max_ = idp.add_user(email="max@example.org")
    browser = Browser(idp.url)
    browser.session.headers["User-Agent"] = FIREFOX
    wrong = browser.go(f"{idp.url}/login")
    browser.sign_in(wrong, erika.access_number, "not the password")
    browser.sign_in(browser.go(f"{idp.url}/login"), erika.access_number, PASSWORD)
    step_up_with_app(idp, browser, device)
    # Someone else, with Erika's password, is denied on her phone and reported.
    _other, _page, _ = to_waiting_page(idp, mfa_client(idp), erika)
    approval = device.approvals()[0]
    assert device.answer(approval["id"], "deny", "", fraud=True).status_code == 200
    # Max signs in too: none of it is Erika's business.
    max_browser = Browser(idp.url)
    max_browser.sign_in(max_browser.go(f"{idp.url}/login"), max_.access_number, PASSWORD)

    page = browser.go(f"{idp.url}/account")
    shown = activity(page)
    assert [kind for kind, _ in shown] == [
        "approval_fraud_reported",
        "login",
        "login_mfa",
        "login",
        "login_failed",
        "device_enrolled",
    ]
    texts = dict(shown)  # the oldest of each kind
    assert "Device Test phone added" in texts["device_enrolled"]
    assert "A sign-in failed: the password was wrong" in texts["login_failed"]
    assert "Signed in with your password" in texts["login"]
    assert "password | Firefox on Linux, from 127.0.0.1" in texts["login"]
    assert "confirmed on Test phone" in texts["login_mfa"]
    assert "denied and reported as fraud" in texts["approval_fraud_reported"]
    # The newest sign-in: at the app, from another browser.
    assert "Signed in with your password, at Client 1" in shown[1][1]
    assert "Python Requests, from 127.0.0.1" in shown[1][1]
    assert max_.access_number not in page.text
    # Not you? To the devices and the sessions.
    assert 'href="/account#devices"' in page.text and 'href="/account#sessions"' in page.text

    browser.go(f"{idp.url}/lang/de")
    german = dict(activity(browser.go(f"{idp.url}/account")))
    assert "Gerät Test phone hinzugefügt" in german["device_enrolled"]
    assert "Eine Anmeldung ist fehlgeschlagen" in german["login_failed"]
    assert "bestätigt auf Test phone" in german["login_mfa"]
    assert "als Betrug gemeldet" in german["approval_fraud_reported"]
    assert "angemeldet | Firefox unter Linux, von 127.0.0.1" in german["login"]

    # Older activity, a page at a time (here all of it on the first).
    older = browser.go(f"{idp.url}/account/activity")
    assert older.status_code == 200 and len(activity(older)) == len(shown)
    assert 'id="activity-older"' not in older.text


def test_a_sign_in_names_its_browser_after_its_session_was_purged(idp: Any) -> None:
    """The purge deletes a session 30 days after it ended; the sign-in event
    keeps the browser it came from."""
    from datetime import timedelta

    from sqlalchemy import update

    from idp.auth.models import LoginSession
    from idp.extensions import db, utcnow
    from idp.housekeeping import purge

    user = idp.add_user()
    firefox = Browser(idp.url)
    firefox.session.headers["User-Agent"] = FIREFOX
    firefox.sign_in(firefox.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    with idp.app.app_context():
        db.session.execute(update(LoginSession).values(ended_at=utcnow() - timedelta(days=40)))
        db.session.commit()
        assert purge(idp.app.extensions["idp"].settings, actor="cli").login_sessions == 1

    other = Browser(idp.url)
    other.sign_in(other.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    shown = activity(other.go(f"{idp.url}/account"))
    assert [kind for kind, _ in shown] == ["login", "login"]
    assert "Python Requests, from 127.0.0.1" in shown[0][1]
    assert "Firefox on Linux, from 127.0.0.1" in shown[1][1]
