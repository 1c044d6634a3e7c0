"""Concurrent writes of one row are upserts: no request ends in a 500
because another did the same thing at the same moment."""

from __future__ import annotations

import threading
from typing import Any

import requests

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty


def test_two_sign_ins_granting_consent_at_once_both_succeed(idp: Any) -> None:
    user = idp.add_user()
    for _round in range(5):
        client_id, secret = idp.add_client()  # not first-party: consent is asked
        rp = RelyingParty(idp.url, client_id, secret)
        pages = []
        for scope in ("openid profile", "openid email"):
            browser = Browser(idp.url)
            page = browser.sign_in(
                browser.go(rp.authorize_url(scope=scope)[0]), user.access_number, PASSWORD
            )
            assert 'value="allow"' in page.text, page.text[:300]
            pages.append((browser, page))
        answers = allow_at_once(pages)
        assert [a.status_code for a in answers] == [302, 302]
        # Both grants are remembered: neither sign-in is asked again.
        browser = pages[0][0]
        again = browser.go(rp.authorize_url(scope="openid profile email")[0])
        assert again.status_code == 302, again.text[:300]


def allow_at_once(pages: list[tuple[Browser, requests.Response]]) -> list[requests.Response]:
    barrier = threading.Barrier(len(pages))
    answers: list[requests.Response | None] = [None] * len(pages)

    def allow(i: int) -> None:
        browser, page = pages[i]
        barrier.wait()
        answers[i] = browser.allow(page)

    threads = [threading.Thread(target=allow, args=(i,)) for i in range(len(pages))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]
