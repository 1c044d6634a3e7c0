"""What counts toward the approval limits, and what the waiting page says.

Against push bombing (MFA fatigue) an approval counts toward
``approval_push_limit`` when it may wear the user down: left unanswered
(expired, replaced) or denied. One the user approved, withdrew (cancelled the
sign-in, or confirmed with a passkey instead) is given back. Withdrawn ones
still count toward ``approval_request_limit``, unless a passkey proved who
withdrew them: a browser with the password alone cannot push without end by
withdrawing each request. Counting is reserve-then-give-back
(idp.store.ratelimit); tests/flows/test_concurrent_limits.py bursts it.

Plain HTTP on both backends; the browser walk is in test_browser_approval.py.
"""

from __future__ import annotations

import html
import re
from typing import Any

import requests

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty
from .test_approvals import enrolled, match_code, mfa_client, proceed, to_waiting_page
from .test_i18n import switch_link
from .test_passkeys import enrol_device, use_passkey, user_with_passkey


def push_window_ends(idp: Any, user: Any) -> None:
    """The user's push limit window ends: its counter expires, as 15 minutes
    would make it (without waiting them out)."""
    from idp.approvals.service import limits
    from idp.store.ratelimit import reset

    with idp.app.app_context():
        _wrong_codes, pushes, _requests = limits()
        reset(idp.app.extensions["idp"].store, pushes, str(user.id))


def refused(idp: Any, rp: RelyingParty, user: Any) -> requests.Response:
    """A new sign-in that gets no approval: the waiting page with the error."""
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 429, (page.status_code, page.text[:500])
    assert 'id="approval-error"' in page.text
    return page


def approve(device: Any, browser: Browser, page: requests.Response) -> None:
    (pending,) = device.approvals()
    assert device.answer(pending["id"], "approve", match_code(page)).status_code == 200
    assert proceed(browser, page).status_code == 302


def cancel(browser: Browser, page: requests.Response) -> None:
    """The waiting page's "Cancel and return to the application"."""
    done = browser.submit(page, "/authorize/cancel")
    assert done.status_code == 302 and "error=access_denied" in done.headers["Location"]


def test_approved_requests_do_not_count(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=1, approval_request_limit=1)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    for _ in range(3):
        browser, page, _ = to_waiting_page(idp, rp, user)
        approve(device, browser, page)
    assert len(idp.events("approval_approved")) == 3
    assert not idp.events("approval_push_limit")


def test_cancelled_requests_do_not_count_toward_the_push_limit(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=1, approval_request_limit=3)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    for _ in range(3):
        browser, page, _ = to_waiting_page(idp, rp, user)
        cancel(browser, page)
        # Withdrawn: the device cannot answer it any more.
        assert device.approvals() == []
    assert [e.detail["reason"] for e in idp.events("approval_cancelled")] == ["cancelled"] * 3
    # ... but each still counts toward the request limit: a browser with the
    # password cannot push without end by withdrawing every request.
    refused(idp, rp, user)
    assert [e.detail["limit"] for e in idp.events("approval_push_limit")] == ["approval-request"]


def test_a_passkey_instead_does_not_count(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=1, approval_request_limit=1)
    user, key = user_with_passkey(idp, phone_number="+49 151 1234567")
    device = enrol_device(idp, user)
    rp = mfa_client(idp)
    for _ in range(2):
        browser, page, _ = to_waiting_page(idp, rp, user)
        link = re.search(r'href="([^"]+)" id="use-passkey"', page.text)
        assert link
        confirm = browser.go(idp.url + html.unescape(link.group(1)))
        _, answer = use_passkey(browser, confirm, key, "passkey-confirm")
        assert answer.status_code == 200, answer.text
        assert device.approvals() == []
    assert [e.detail["reason"] for e in idp.events("approval_cancelled")] == ["passkey"] * 2
    assert not idp.events("approval_push_limit")


def test_unanswered_and_denied_requests_count(idp_factory: Any) -> None:
    from idp.approvals.store import OPEN

    idp = idp_factory(approval_push_limit=2)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    # One denied on the device ...
    to_waiting_page(idp, rp, user)
    (first,) = device.approvals()
    assert device.answer(first["id"], "deny", "").status_code == 200
    # ... and one that reached the device and was never answered.
    to_waiting_page(idp, rp, user)
    (second,) = device.approvals()
    with idp.app.app_context():
        OPEN.expire(second["id"])

    page = refused(idp, rp, user)
    assert [e.detail["limit"] for e in idp.events("approval_push_limit")] == ["approval-push"]
    # The page says exactly when (a time, also without JavaScript), and offers
    # no "Send a new request" until then.
    retry_after = int(page.headers["Retry-After"])
    assert 0 < retry_after <= 900
    assert re.search(
        r'id="retry-at">You can send a new request at <time datetime="[^"]+">', page.text
    )
    assert re.search(rf'data-retry-in="{retry_after + 1}"', page.text)
    assert re.search(r'<form [^>]*id="retry-form" hidden>', page.text)


def test_when_the_window_ends_a_reload_sends_a_new_request(idp_factory: Any) -> None:
    """Without JavaScript: the page states the time; reloading it then is enough."""
    idp = idp_factory(approval_push_limit=1)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    to_waiting_page(idp, rp, user)
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 429 and browser.last is not None
    waiting_url = browser.last.url
    push_window_ends(idp, user)
    again = browser.go(waiting_url)
    assert again.status_code == 200 and 'id="retry-at"' not in again.text
    assert match_code(again)
    assert len(device.approvals()) == 2


def test_the_limit_page_in_german(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=1)
    user, _ = enrolled(idp)
    rp = mfa_client(idp)
    to_waiting_page(idp, rp, user)
    browser = Browser(idp.url)
    browser.session.headers["Accept-Language"] = "de"
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 429
    assert "Eine neue Anfrage ist um <time" in page.text
    assert "zu viele Freigaben nicht bestätigt" in page.text
    # "Send a new request" (a POST) refused the same way: the language switch
    # on that answer leads to the waiting page, not to the form's address.
    assert browser.last is not None
    waiting_url = browser.last.url
    form = re.search(r'<form method="post" action="([^"]+)" id="retry-form"', page.text)
    assert form is not None
    again = browser.submit(page, html.unescape(form.group(1)))
    assert again.status_code == 429 and "Eine neue Anfrage ist um <time" in again.text
    english = browser.go(idp.url + switch_link(again, "en"))
    assert browser.last.url == waiting_url
    assert english.status_code == 429 and "You can send a new request at <time" in english.text


def test_continue_before_the_answer_says_what_is_missing(idp: Any) -> None:
    """Without JavaScript "Continue" is always there; pressed too early, the
    page says what is missing (and signs nobody in)."""
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    early = proceed(browser, page)
    assert early.status_code == 200 and 'id="not-yet"' in early.text
    assert match_code(early) == match_code(page)
    browser.session.headers["Accept-Language"] = "de"
    early = proceed(browser, page)
    assert "Noch nicht bestätigt" in early.text
    approve(device, browser, early)


def test_a_give_back_from_an_ended_window_does_not_lower_the_next(idp: Any) -> None:
    """ratelimit.give_back_later: an attempt counted in a window that ended
    meanwhile is not taken off the window running now."""
    from idp.store.ratelimit import Limit, give_back_later, reserve, reset

    store = idp.app.extensions["idp"].store
    limit = Limit("give-back-test", 5, 900)
    earlier = reserve(store, (limit, "u"))
    assert give_back_later(store, limit, "u", window_end=earlier.window_end(limit))
    earlier = reserve(store, (limit, "u"))
    # That window ends; the next one (of another length, so it ends at another
    # time than the first would have) counts one attempt.
    reset(store, limit, "u")
    later = Limit("give-back-test", 5, 600)
    assert reserve(store, (later, "u")).number(later) == 1
    assert not give_back_later(store, later, "u", window_end=earlier.window_end(limit))
    assert reserve(store, (later, "u")).number(later) == 2
