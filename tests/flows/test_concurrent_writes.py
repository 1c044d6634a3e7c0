"""Concurrent writes of one row are upserts: no request ends in a 500
because another did the same thing at the same moment."""

from __future__ import annotations

from typing import Any

import requests

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty
from .test_admin_api import automation
from .test_concurrent_limits import at_once


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
    return at_once(len(pages), lambda i: pages[i][0].allow(pages[i][1]))


def test_two_registrations_of_one_client_id_at_once_give_one_client(idp: Any) -> None:
    api = automation(idp)
    for n in range(5):
        body = {"client_name": "Payroll", "client_id": f"payroll-{n}",
                "grant_types": ["client_credentials"], "scope": "openid"}  # fmt: skip
        answers = at_once(4, lambda _i, body=body: api.call("POST", "/clients", json=body))
        codes = sorted(a.status_code for a in answers)
        assert codes == [201, 400, 400, 400], [a.text for a in answers]
