"""Push approval: the second factor confirmed on the user's device.

A software device (tests/flows/devices.py) speaks the device API as the app
does; the browser is the protocol-level Browser; pushes go to the Web Push
receiver stand-in, which checks VAPID and decrypts.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import requests

from ..support.waiting import wait_until
from .conftest import PASSWORD
from .devices import SoftDevice, last_sms_code
from .helpers import Browser, RelyingParty, form_fields, query

ACR_MFA = "urn:freigabe:acr:mfa"


def mfa_client(idp: Any, **fields: Any) -> RelyingParty:
    fields.setdefault("first_party", True)
    client_id, secret = idp.add_client(require_mfa=True, **fields)
    return RelyingParty(idp.url, client_id, secret)


def enrolled(idp: Any, **user_fields: Any) -> tuple[Any, SoftDevice]:
    user_fields.setdefault("phone_number", "+49 151 1234567")
    user = idp.add_user(**user_fields)
    device = SoftDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    return user, device


def to_waiting_page(
    idp: Any, rp: RelyingParty, user: Any, browser: Browser | None = None, **extra: str
) -> tuple[Browser, requests.Response, dict[str, str]]:
    browser = browser or Browser(idp.url)
    url, req = rp.authorize_url(**extra)
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    assert page.status_code == 200, (page.status_code, page.headers, page.text[:300])
    assert "/login/approval" in (browser.last.url if browser.last else ""), browser.last
    return browser, page, req


def match_code(page: requests.Response) -> str:
    found = re.search(r'id="match-code"[^>]*>(\d+)<', page.text)
    assert found, page.text
    return found.group(1)


def proceed(browser: Browser, page: requests.Response) -> requests.Response:
    action = re.search(r'<form method="post" action="([^"]+)" id="continue-form"', page.text)
    assert action, page.text
    return browser.go(
        browser.issuer + action.group(1).replace("&amp;", "&"), "POST", data=form_fields(page.text)
    )


def test_push_approval_end_to_end(idp: Any, push_service: Any) -> None:
    user, device = enrolled(idp, email="erika@example.org")
    subscription = push_service.new_subscription()
    assert device.call("PUT", "/push-subscription", json=subscription).status_code == 204
    rp = mfa_client(idp)

    browser, page, req = to_waiting_page(idp, rp, user)
    code = match_code(page)
    # The push carries only the approval id, never the number.
    pushed = push_service.wait_for_message(subscription, timeout=10).json()
    assert pushed == {"type": "approval", "id": pushed["id"]}
    assert code not in json.dumps(pushed)

    pending = device.approvals()
    assert [a["id"] for a in pending] == [pushed["id"]]
    context = pending[0]
    assert context["client_name"] and context["ip"] == "127.0.0.1"
    answered = device.answer(context["id"], "approve", code)
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"status": "approved"}

    status_url = re.search(r'data-status-url="([^"]+)"', page.text)
    assert status_url
    status = browser.session.get(idp.url + status_url.group(1).replace("&amp;", "&"), timeout=10)
    assert status.json() == {"status": "approved"}
    done = proceed(browser, page)
    assert done.status_code == 302 and done.headers["Location"].startswith(rp.redirect_uri)
    params = query(done.headers["Location"])
    tokens = rp.redeem(params["code"], req["verifier"]).json()
    claims = rp.validate_id_token(tokens["id_token"], req["nonce"])
    assert set(claims["amr"]) == {"pwd", "mfa", "user", "swk"}
    assert claims["acr"] == ACR_MFA
    for event in ("approval_requested", "approval_approved", "login_mfa"):
        assert idp.events(event), event


def test_waiting_page_is_woken_by_server_sent_events(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    events_url = idp.url + re.search(r'data-events="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    events_url = events_url.replace("&amp;", "&")
    received: list[str] = []
    opened = threading.Event()

    def listen() -> None:
        with browser.session.get(events_url, stream=True, timeout=30) as response:
            opened.set()
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    received.append(json.loads(line[5:])["status"])
                    if received[-1] != "pending":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    assert opened.wait(10)
    approval = device.approvals()[0]
    assert device.answer(approval["id"], "approve", match_code(page)).status_code == 200
    listener.join(15)
    assert received[0] == "pending" and received[-1] == "approved"


def test_wrong_code_counts_and_locks_out_across_approvals(idp_factory: Any) -> None:
    idp = idp_factory(approval_code_failures=3)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    code = match_code(page)
    wrong = f"{(int(code) + 1) % 100:02d}"
    approval = device.approvals()[0]

    first = device.answer(approval["id"], "approve", wrong)
    assert first.status_code == 400 and first.json()["error"] == "wrong_code"
    # Still pending after a wrong number; the right one is still accepted.
    assert device.approvals()[0]["id"] == approval["id"]
    second = device.answer(approval["id"], "approve", wrong)
    assert second.json()["error"] == "wrong_code"

    # A new approval does not reset the count (NIST SP 800-63B-4 §3.2.2).
    page = send_again(browser, page)
    new_code = match_code(page)
    newer = device.approvals()[0]
    assert newer["id"] != approval["id"]
    third = device.answer(newer["id"], "approve", f"{(int(new_code) + 1) % 100:02d}")
    assert third.status_code == 429 and third.json()["error"] == "too_many_attempts"
    # Locked out: even the right number is refused now, and no new approval starts.
    assert device.answer(newer["id"], "approve", new_code).status_code in (410, 429)
    assert len(idp.events("approval_wrong_code")) == 3


def test_the_match_code_has_the_configured_number_of_digits(idp_factory: Any) -> None:
    idp = idp_factory(approval_code_digits=6)
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, req = to_waiting_page(idp, rp, user)
    code = match_code(page)
    assert re.fullmatch(r"\d{6}", code), code
    approval = device.approvals()[0]

    # A wrong six-digit number counts as a wrong number, like a wrong two-digit one.
    wrong = device.answer(approval["id"], "approve", f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.status_code == 400 and wrong.json()["error"] == "wrong_code"
    (counted,) = idp.events("approval_wrong_code")
    assert counted.detail["approval"] == approval["id"]
    # So does its first two digits alone (what the default would have shown).
    short = device.answer(approval["id"], "approve", code[:2])
    assert short.status_code == 400 and short.json()["error"] == "wrong_code"

    answered = device.answer(approval["id"], "approve", code)
    assert answered.status_code == 200 and answered.json() == {"status": "approved"}
    done = proceed(browser, page)
    assert done.status_code == 302 and done.headers["Location"].startswith(rp.redirect_uri)
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    assert rp.validate_id_token(tokens["id_token"], req["nonce"])["acr"] == ACR_MFA


def send_again(browser: Browser, page: requests.Response) -> requests.Response:
    """The page's "send a new request" (posted to the transaction's retry URL)."""
    tx = re.search(r"/login/approval\?tx=([\w-]+)", page.text)
    assert tx, page.text
    return browser.go(
        f"{browser.issuer}/login/approval/retry?tx={tx.group(1)}",
        "POST",
        data=form_fields(page.text),
    )


def test_replayed_and_foreign_assertions_are_refused(idp: Any) -> None:
    user, device = enrolled(idp)
    other_user, other_device = enrolled(idp, phone_number="+49 151 7654321")
    rp = mfa_client(idp)
    _, page, _ = to_waiting_page(idp, rp, user)
    code = match_code(page)
    approval = device.approvals()[0]

    # Another user's device cannot see or answer it: as if it did not exist.
    assert other_device.call("GET", f"/approvals/{approval['id']}").status_code == 404
    foreign = other_device.answer(
        approval["id"], "approve", code, assertion=device.assertion(approval, "approve", code)
    )
    assert foreign.status_code == 404 and foreign.json()["error"] == "approval_not_found"

    # An assertion by another user's key, sent with this device's token.
    forged = other_device.assertion(approval, "approve", code)
    refused = device.answer(approval["id"], "approve", code, assertion=forged)
    assert refused.status_code == 400 and refused.json()["error"] == "webauthn_failed"

    # Without user verification (no biometrics): refused.
    no_uv = device.assertion(approval, "approve", code, user_verified=False)
    assert device.answer(approval["id"], "approve", code, assertion=no_uv).status_code == 400

    # A signature over another number does not fit the challenge.
    other_number = device.assertion(approval, "approve", "00" if code != "00" else "01")
    assert device.answer(approval["id"], "approve", code, assertion=other_number).status_code == 400

    good = device.assertion(approval, "approve", code)
    assert device.answer(approval["id"], "approve", code, assertion=good).status_code == 200
    # The same assertion again, and a fresh one: the approval is used up.
    replay = device.answer(approval["id"], "approve", code, assertion=good)
    assert replay.status_code in (400, 409)
    again = device.answer(approval["id"], "approve", code)
    assert again.status_code == 409 and again.json()["error"] == "approval_already_answered"
    assert other_user.id != user.id


def test_expired_approval_cannot_be_answered(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    _, page, _ = to_waiting_page(idp, rp, user)
    approval = device.approvals()[0]
    from idp.approvals.store import OPEN

    # Its lifetime is over: the open marker expires.
    with idp.app.app_context():
        OPEN.expire(approval["id"])
    answer = device.answer(approval["id"], "approve", match_code(page))
    assert answer.status_code == 410 and answer.json()["error"] == "approval_expired"


def test_revoked_device_cannot_approve(idp: Any) -> None:
    from idp.devices.models import Device
    from idp.extensions import db, utcnow

    user, device = enrolled(idp)
    rp = mfa_client(idp)
    _, page, _ = to_waiting_page(idp, rp, user)
    approval = device.approvals()[0]
    with idp.app.app_context():
        row = db.session.get(Device, device.device_id)
        row.revoked_at = utcnow()
        db.session.commit()
    answer = device.answer(approval["id"], "approve", match_code(page), assertion={})
    assert answer.status_code == 401 and answer.json()["error"] == "device_revoked"


def test_push_bombing_is_capped(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=2)
    user, _ = enrolled(idp)
    rp = mfa_client(idp)
    for _ in range(2):
        to_waiting_page(idp, rp, user)
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 429
    assert 'id="approval-error"' in page.text
    assert idp.events("approval_push_limit")


def test_deny_and_report_fraud_pauses_approvals(idp: Any) -> None:
    user, device = enrolled(idp, email="victim@example.org")
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    approval = device.approvals()[0]
    denied = device.answer(approval["id"], "deny", "", fraud=True)
    assert denied.status_code == 200 and denied.json() == {"status": "denied"}
    page = browser.go(browser.last.url)  # type: ignore[union-attr]
    assert 'id="denied"' in page.text
    assert idp.events("approval_fraud_reported")
    mails = list((Path(idp.app.instance_path) / "outbox").glob("*.eml"))
    assert any("victim@example.org" in m.read_text() for m in mails)

    # Further logins get no push for a while.
    other = Browser(idp.url)
    blocked = other.sign_in(other.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert blocked.status_code == 429 and 'id="approval-error"' in blocked.text
    assert idp.events("approval_blocked")


def test_no_device_follows_the_client_policy(idp: Any) -> None:
    user = idp.add_user()
    strict = mfa_client(idp)
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(strict.authorize_url()[0]), user.access_number, PASSWORD)
    assert page.status_code == 403 and 'id="no-device"' in page.text
    assert user.access_number in page.text  # enrolment is offered with the number to use
    # The way to a device: the browser device app on this server (a link and a
    # QR code), with the steps in the words the app shows (in English here; the
    # browser test walks it in German).
    app_link = f'<a href="{idp.url}/app/" id="get-device-link">'
    assert app_link in page.text and 'id="get-device-qr"' in page.text
    for label in ("Set up this browser as a device", "With your access number and password"):
        assert f"“{label}”" in page.text
    assert "“Register key”" in page.text and "“Complete key registration”" in page.text
    assert "plus symbol" not in page.text
    # The account page, signed in with the password alone, offers the same.
    account = browser.go(f"{idp.url}/account")
    assert 'id="no-devices"' in account.text and app_link in account.text

    lenient = mfa_client(idp, mfa_fallback="password")
    url, req = lenient.authorize_url()
    page = browser.go(url)
    assert page.status_code == 302
    tokens = lenient.redeem(query(page.headers["Location"])["code"], req["verifier"]).json()
    claims = lenient.validate_id_token(tokens["id_token"], req["nonce"])
    assert claims["acr"] == "urn:freigabe:acr:pwd" and claims["amr"] == ["pwd"]


def test_acr_values_ask_for_push_approval(idp: Any) -> None:
    user, device = enrolled(idp)
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    browser, page, req = to_waiting_page(idp, rp, user, acr_values=ACR_MFA)
    assert (
        device.answer(device.approvals()[0]["id"], "approve", match_code(page)).status_code == 200
    )
    done = proceed(browser, page)
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    assert rp.validate_id_token(tokens["id_token"], req["nonce"])["acr"] == ACR_MFA


def test_enrolment_path_a_rules(idp: Any) -> None:
    user = idp.add_user(phone_number="+49 151 1234567", email="shared@example.org")
    idp.add_user(email="shared@example.org")
    device = SoftDevice(idp.url)
    ambiguous = device.start(identifier="shared@example.org", password=PASSWORD)
    assert ambiguous.status_code == 400 and ambiguous.json()["error"] == "ambiguous_email"
    wrong = device.start(identifier=user.access_number, password="wrong-password")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"

    started = device.start(identifier=user.access_number, password=PASSWORD)
    assert started.status_code == 201
    body = started.json()
    assert body["confirmation"]["channel"] == "sms"
    assert "1234567" not in body["confirmation"]["destination"]
    code = last_sms_code(idp.app.instance_path)
    bad = device.complete(body, "000000" if code != "000000" else "111111")
    assert bad.status_code == 400 and bad.json()["error"] == "wrong_code"
    # Without user verification the key is not registered.
    no_uv = device.complete(body, code, user_verified=False)
    assert no_uv.status_code == 400 and no_uv.json()["error"] == "webauthn_failed"
    # That used the enrolment up: start again.
    again = device.start(identifier=user.access_number, password=PASSWORD).json()
    assert device.complete(again, last_sms_code(idp.app.instance_path)).status_code == 201
    assert device.call("GET", "/status").json()["user"]["sub"] == user.sub


def test_enrolment_code_tries_are_limited(idp: Any) -> None:
    user = idp.add_user(email="only-mail@example.org")
    device = SoftDevice(idp.url)
    body = device.start(identifier=user.access_number, password=PASSWORD).json()
    assert body["confirmation"]["channel"] == "email"
    for _ in range(4):
        assert device.complete(body, "999999x").json()["error"] == "wrong_code"
    assert device.complete(body, "999999x").json()["error"] == "too_many_attempts"
    assert device.complete(body, "999999x").json()["error"] == "invalid_enrolment"


def test_binding_code_enrols_a_second_device(idp: Any) -> None:
    user, first = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    assert first.answer(first.approvals()[0]["id"], "approve", match_code(page)).status_code == 200
    proceed(browser, page)
    account = browser.go(f"{idp.url}/account")
    assert 'id="add-device"' in account.text
    shown = browser.submit(account, "/account/devices/binding-code")
    code = re.search(r'id="binding-code">([A-Z0-9-]+)<', shown.text)
    assert code, shown.text
    second = SoftDevice(idp.url)
    started = second.start(binding_code=code.group(1), kind="ipad")
    assert started.status_code == 201, started.text
    assert "confirmation" not in started.json()
    assert second.complete(started.json()).status_code == 201
    # Single use.
    reused = SoftDevice(idp.url).start(binding_code=code.group(1))
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_binding_code"
    listed = second.call("GET", "/devices").json()["devices"]
    assert len(listed) == 2 and sum(d["this_device"] for d in listed) == 1


def test_password_session_cannot_add_a_device_by_binding_code(idp: Any) -> None:
    user, _ = enrolled(idp)
    browser = Browser(idp.url)
    page = browser.sign_in(browser.go(f"{idp.url}/login"), user.access_number, PASSWORD)
    account = browser.go(f"{idp.url}/account")
    assert 'id="add-device"' not in account.text
    forced = browser.submit(account, "/account/devices/binding-code")
    assert 'id="binding-code"' not in forced.text
    assert page is not None


def test_login_on_one_instance_approved_through_another(idp_factory: Any) -> None:
    import base64
    import os
    import secrets

    shared = {
        "secret_key": secrets.token_urlsafe(48),
        "key_encryption_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    }
    first = idp_factory(**shared)
    second = idp_factory(issuer=first.url, **shared)
    user = first.add_user(phone_number="+49 151 1234567")
    device = SoftDevice(second.url, origin=first.url)
    device.enrol(user.access_number, PASSWORD, first.app.instance_path)
    rp = mfa_client(first)

    browser, page, req = to_waiting_page(first, rp, user)
    events = first.url + re.search(r'data-events="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    received: list[str] = []

    def listen() -> None:
        with browser.session.get(events.replace("&amp;", "&"), stream=True, timeout=30) as r:
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data:"):
                    received.append(json.loads(line[5:])["status"])
                    if received[-1] != "pending":
                        return

    listener = threading.Thread(target=listen)
    listener.start()
    # The device talks to the other instance; the browser waits on the first.
    approval = device.approvals()[0]
    assert device.answer(approval["id"], "approve", match_code(page)).status_code == 200
    listener.join(15)
    assert received[-1:] == ["approved"]
    done = proceed(browser, page)
    tokens = rp.redeem(query(done.headers["Location"])["code"], req["verifier"]).json()
    assert rp.validate_id_token(tokens["id_token"], req["nonce"])["acr"] == ACR_MFA


def test_gone_push_subscription_is_dropped(idp: Any, push_service: Any) -> None:
    from idp.devices.models import Device
    from idp.extensions import db

    user, device = enrolled(idp)
    subscription = push_service.new_subscription()
    assert device.call("PUT", "/push-subscription", json=subscription).status_code == 204
    push_service.mark_gone(subscription)
    to_waiting_page(idp, mfa_client(idp), user)
    # Delivery runs off the request thread: wait for its audit event.
    wait_until(lambda: idp.events("push_subscription_dropped"), what="the dropped subscription")
    with idp.app.app_context():
        assert db.session.get(Device, device.device_id).push_subscription is None


def test_one_live_approval_per_login(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    first = device.approvals()[0]
    page = send_again(browser, page)
    pending = device.approvals()
    assert len(pending) == 1 and pending[0]["id"] != first["id"]
    stale = device.answer(first["id"], "approve", "00")
    assert stale.status_code == 410 and stale.json()["error"] == "approval_expired"
    assert idp.events("approval_cancelled")


def test_one_live_approval_per_login_however_often_it_is_resumed(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    assert browser.last is not None
    tx = query(browser.last.url)["tx"]
    # The authorization resumed again (after the password), and the waiting
    # page reloaded, in turn and at the same moment.
    for _ in range(2):
        browser.go(f"{idp.url}/authorize/resume?tx={tx}")
        browser.go(f"{idp.url}/login/approval?tx={tx}")
    barrier = threading.Barrier(6)

    def again(i: int) -> None:
        barrier.wait()
        path = "/authorize/resume" if i % 2 else "/login/approval"
        browser.session.get(f"{idp.url}{path}?tx={tx}", timeout=30)

    threads = [threading.Thread(target=again, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    pending = device.approvals()
    assert len(pending) == 1, pending
    # The page shows that one's number, and it signs in.
    page = browser.go(f"{idp.url}/login/approval?tx={tx}")
    answered = device.answer(pending[0]["id"], "approve", match_code(page))
    assert answered.status_code == 200, answered.text
    assert proceed(browser, page).status_code == 302
    assert device.approvals() == []


def test_a_new_request_cancels_the_one_before(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    (first,) = device.approvals()
    retried = browser.submit(page, "/login/approval/retry")
    (second,) = device.approvals()
    assert second["id"] != first["id"]
    old = device.answer(first["id"], "approve", match_code(page))
    assert old.status_code == 410, old.text
    assert device.answer(second["id"], "approve", match_code(retried)).status_code == 200
