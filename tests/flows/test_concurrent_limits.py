"""Limits hold under concurrency: many attempts sent at the same moment get no
more checks than the limit allows.

Each test releases N threads at once (a barrier) against a live IdP, then
counts the attempts that reached the check by their audit events (each
checked attempt records one). Before the attempt was reserved ahead of the
check, 9 to 11 of 20 concurrent wrong passwords were checked against a limit
of 5.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
import requests

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser, RelyingParty, form_fields
from .test_approvals import enrolled, match_code, mfa_client, to_waiting_page
from .test_device_delete import binding_device
from .test_restoration import RestoringDevice, activated, verify_email

T = TypeVar("T")
N = 20


def at_once(n: int, attempt: Callable[[int], T]) -> list[T]:
    """Run ``attempt(i)`` for i in 0..n-1 in n threads released together."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = attempt(i)
        except Exception as exc:  # reported below, with the others
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results


def statuses(responses: list[requests.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def login_pages(idp: Any, n: int) -> list[tuple[Browser, requests.Response]]:
    client_id, secret = idp.add_client(first_party=True)
    rp = RelyingParty(idp.url, client_id, secret)
    pages = []
    for _ in range(n):
        browser = Browser(idp.url)
        pages.append((browser, browser.go(rp.authorize_url()[0])))
    return pages


def test_concurrent_wrong_passwords_get_at_most_the_limit_checked(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_account=5)
    user = idp.add_user(username="target")
    pages = login_pages(idp, N)

    answers = at_once(N, lambda i: pages[i][0].sign_in(pages[i][1], "target", "wrong-password"))

    assert len(idp.events("login_failed")) == 5
    assert statuses(answers) == [401] * 5 + [429] * (N - 5)
    # The account stays blocked for the window, the right password included.
    browser, page = login_pages(idp, 1)[0]
    assert browser.sign_in(page, user.access_number, PASSWORD).status_code == 429


def test_concurrent_guesses_from_one_address_get_at_most_the_ip_limit(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=4)
    pages = login_pages(idp, N)

    answers = at_once(N, lambda i: pages[i][0].sign_in(pages[i][1], f"guess-{i}", "nope-nope"))

    assert len(idp.events("login_failed")) == 4
    assert statuses(answers) == [401] * 4 + [429] * (N - 4)


def test_a_right_password_gives_its_attempt_back(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=3)
    user = idp.add_user()
    # More successful sign-ins from one address than the limit of failures.
    for browser, page in login_pages(idp, 5):
        signed_in = browser.sign_in(page, user.access_number, PASSWORD)
        assert signed_in.status_code in (200, 302), signed_in.text[:300]
    browser, page = login_pages(idp, 1)[0]
    assert browser.sign_in(page, "nobody", "wrong-password").status_code == 401


def test_concurrent_passkey_failures_get_at_most_the_ip_limit(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=3)
    pages = login_pages(idp, N)

    def bogus_passkey(i: int) -> requests.Response:
        browser, page = pages[i]
        token = form_fields(page.text)["csrf_token"]
        return browser.session.post(
            f"{idp.url}/login/passkey",
            json={"credential": {"id": f"not-a-passkey-{i}", "response": {}}},
            headers={"X-CSRFToken": token},
            timeout=30,
        )

    answers = at_once(N, bogus_passkey)

    assert len(idp.events("passkey_refused")) == 3
    assert statuses(answers).count(429) == N - 3


def test_concurrent_binding_code_guesses_get_at_most_the_limit(idp_factory: Any) -> None:
    idp = idp_factory(login_failures_per_ip=5)

    def guess(i: int) -> requests.Response:
        return SoftDevice(idp.url).start(binding_code=f"AAAA-BBBB-{i:04d}")

    answers = at_once(N, guess)

    assert len(idp.events("binding_code_refused")) == 5
    assert statuses(answers) == [400] * 5 + [429] * (N - 5)


def test_concurrent_enrolment_codes_get_at_most_five_tries(idp: Any) -> None:
    user = idp.add_user(phone_number="+49 151 1234567")
    device = SoftDevice(idp.url)
    started = device.start(identifier=user.access_number, password=PASSWORD)
    assert started.status_code == 201, started.text
    body = started.json()

    def wrong(i: int) -> requests.Response:
        return SoftDevice(idp.url).call(
            "POST",
            f"/enrolments/{body['enrolment_id']}/complete",
            json={"credential": {}, "confirmation_code": f"{i:06d}x"},
        )

    at_once(N, wrong)

    assert len(idp.events("device_enrolment_wrong_code")) == 5


def test_concurrent_code1_guesses_get_at_most_the_limit(idp_factory: Any, smtp_server: Any) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_login=5)
    user, device = enrolled_for_restoration(idp)
    activated(idp, device)

    def guess(i: int) -> requests.Response:
        return RestoringDevice(idp.url).restore(user.access_number, f"AAAA-BBBB-CCCC-{i:04d}")

    answers = at_once(N, guess)

    wrong = [e for e in idp.events("restore_failed") if e.detail.get("reason") == "wrong_code1"]
    assert len(wrong) == 5
    assert statuses(answers) == [400] * 5 + [429] * (N - 5)


def test_concurrent_code2_guesses_get_at_most_three_tries(
    idp_factory: Any, smtp_server: Any
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_login=1000)
    user, device = enrolled_for_restoration(idp)
    code1 = activated(idp, device)
    new = RestoringDevice(idp.url)
    started = new.restore(user.access_number, code1)
    assert started.status_code == 201, started.text
    restoration = started.json()["restoration_id"]

    at_once(N, lambda i: RestoringDevice(idp.url).send_code2(restoration, f"{i:08d}"))

    wrong = [e for e in idp.events("restore_failed") if e.detail.get("reason") == "wrong_code2"]
    assert len(wrong) == 3


def test_concurrent_wrong_numbers_get_at_most_the_limit(idp_factory: Any) -> None:
    limit = 3
    idp = idp_factory(approval_code_failures=limit)
    user, first = enrolled(idp)
    # Several devices of one user, each answering with a wrong number: the
    # limit is per user, across devices and approvals.
    devices = [first] + [binding_device(idp, user) for _ in range(5)]
    rp = mfa_client(idp)
    _browser, page, _ = to_waiting_page(idp, rp, user)
    wrong = f"{(int(match_code(page)) + 1) % 100:02d}"
    approval = devices[0].approvals()[0]
    assertions = [d.assertion(approval, "approve", wrong) for d in devices]

    answers = at_once(
        len(devices),
        lambda i: devices[i].answer(approval["id"], "approve", wrong, assertion=assertions[i]),
    )

    assert len(idp.events("approval_wrong_code")) == limit
    # Wrong (400), too many (429), or the approval was cancelled by then (410).
    assert set(statuses(answers)) <= {400, 410, 429}


@pytest.mark.parametrize(
    "limits",
    [
        {"approval_push_limit": 3},
        # The request limit (withdrawn ones count too) is reserved in the same step.
        {"approval_push_limit": 10, "approval_request_limit": 3},
    ],
    ids=["push", "request"],
)
def test_concurrent_approval_requests_get_at_most_the_push_limit(
    idp_factory: Any, limits: dict[str, int]
) -> None:
    idp = idp_factory(**limits)
    user, _device = enrolled(idp)
    rp = mfa_client(idp)
    browsers = []
    for _ in range(8):
        browser = Browser(idp.url)
        url, _req = rp.authorize_url()
        page = browser.go(url)
        browsers.append((browser, page))

    def sign_in(i: int) -> requests.Response:
        browser, page = browsers[i]
        return browser.sign_in(page, user.access_number, PASSWORD)

    at_once(len(browsers), sign_in)

    assert len(idp.events("approval_requested")) == 3


def test_concurrent_open_registrations_get_at_most_the_limit(idp_factory: Any) -> None:
    idp = idp_factory(client_registration_open=True, client_registration_rate_limit=3)
    metadata = {"redirect_uris": ["https://app.example.org/cb"], "client_name": "App"}

    answers = at_once(
        N,
        lambda i: requests.post(
            f"{idp.url}/register",
            data=json.dumps(metadata),
            headers={"Content-Type": "application/json"},
            timeout=30,
        ),
    )

    assert statuses(answers) == [201] * 3 + [429] * (N - 3)
    assert len(idp.events("client_registered")) == 3


def smtp_idp(idp_factory: Any, smtp_server: Any, **limits: int) -> Any:
    limits.setdefault("restore_failures_per_ip", 1000)
    return idp_factory(
        smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_security="none", **limits
    )


def enrolled_for_restoration(idp: Any) -> tuple[Any, RestoringDevice]:
    user = idp.add_user(phone_number="+49 151 1234567", email="erika@example.org")
    device = RestoringDevice(idp.url)
    device.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    verify_email(idp, user)
    return user, device
