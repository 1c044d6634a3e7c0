"""No open redirect through a return path, on every endpoint that takes one.

Each endpoint that sends the browser back to a path it was given (the login's
``next``, the passkey login's, the pending password change's, the language
switch, the account's and the admin pages' step-up) gets every hostile value
of tests/support/return_paths.py. For each, the answer is never a 5xx, and a
``Location`` (or the passkey script's ``redirect``) resolved the way a browser
resolves it (ada_url, the WHATWG URL parser, against the page's URL) stays on
the IdP's origin. RP-initiated logout (``/logout``) takes no return path, only
a registered ``post_logout_redirect_uri``: there, no hostile value is followed
at all. ``POST /account/logout`` takes no target.

Before idp.redirects, ``/lang/en?next=/%09/evil.example`` answered
``Location: //evil.example`` and ``?next=/%0a/x`` an HTTP 500.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import ada_url
import requests

from clients.device.authenticator import get_assertion_for_options
from tests.support.return_paths import HOSTILE

from .conftest import PASSWORD
from .helpers import Browser, RelyingParty, form_fields
from .test_account_devices import direct_login
from .test_admin_pages import make_admin
from .test_passkeys import login_page, passkey_options, post_json, user_with_passkey
from .test_protocol import login_through

# Return paths are the same on every backend.

NEW_PASSWORD = "Staple-Battery-42"


def where(response: requests.Response, target: str | None = None) -> str | None:
    """Where a browser goes after ``response`` (its Location, or ``target``
    for a script's redirect), resolved against the page's URL; None if it
    stays on the page."""
    target = response.headers.get("Location") if target is None else target
    if target is None:
        return None
    return ada_url.URL(target, response.url).href


class Findings:
    """What went wrong, per value: every value is tried before the test fails."""

    def __init__(self, idp: Any) -> None:
        self.origin = ada_url.URL(idp.url).origin
        self.problems: dict[str, str] = {}

    def check(
        self, value: str, response: requests.Response, *, target: str | None = None
    ) -> str | None:
        """The URL the browser goes to, recorded as a problem if it leaves
        the IdP, or if the answer is a server error."""
        if response.status_code >= 500:
            self.problems[value] = f"HTTP {response.status_code} at {response.url[:120]}"
            return None
        try:
            url = where(response, target)
        except ValueError:
            self.problems[value] = f"a browser cannot follow {target or response.headers}"
            return None
        if url is not None and ada_url.URL(url).origin != self.origin:
            self.problems[value] = f"{response.url[:120]} sends the browser to {url}"
        return url

    def expect(self, value: str, url: str | None, expected: str) -> None:
        if value not in self.problems and url != expected:
            self.problems[value] = f"went to {url}, not {expected}"

    def assert_none(self) -> None:
        assert not self.problems, "\n".join(f"{v[:60]!r}: {p}" for v, p in self.problems.items())


def hostile(*more: str) -> Iterable[str]:
    return (*HOSTILE, *more)


# --- the language switch -----------------------------------------------------------------


def test_language_switch(idp: Any) -> None:
    findings = Findings(idp)
    browser = requests.Session()
    for value in hostile():
        answer = browser.get(
            f"{idp.url}/lang/de", params={"next": value}, allow_redirects=False, timeout=30
        )
        if findings.check(value, answer) is None and value not in findings.problems:
            findings.problems[value] = f"HTTP {answer.status_code} without a Location"
    # The request lines of the report, as sent (not encoded again by requests):
    # a browser reads the first as //evil.example, the others as local paths
    # (newlines vanish), and they were an HTTP 500.
    for raw in ("/%09/evil.example", "/%0a/x", "/%0d%0aSet-Cookie:x"):
        answer = browser.get(f"{idp.url}/lang/en?next={raw}", allow_redirects=False, timeout=30)
        findings.check(raw, answer)
        assert "x" not in answer.cookies, answer.headers
    # Without a next, with several, and one in brackets.
    for query in ("", "?next=//evil.example&next=/account", "?next[]=/account"):
        answer = browser.get(f"{idp.url}/lang/en{query}", allow_redirects=False, timeout=30)
        findings.expect(query, findings.check(query, answer), f"{idp.url}/")
    findings.assert_none()

    # A page of ours comes back as it was, with its query.
    for path in ("/account?x=1&y=%2F", "/login?tx=abc&next=%2Fadmin%2F", "/app/"):
        answer = browser.get(
            f"{idp.url}/lang/en", params={"next": path}, allow_redirects=False, timeout=30
        )
        assert answer.status_code == 302 and answer.headers["Location"] == path


# --- the login's next --------------------------------------------------------------------


def login_answer(
    idp: Any, user: Any, value: str, findings: Findings
) -> tuple[requests.Session, requests.Response]:
    """The login page with ``next=value``, then the password sent to the URL
    with that next as an attacker would link it (not the form's own action,
    which must not carry it either)."""
    browser = requests.Session()
    page = browser.get(f"{idp.url}/login", params={"next": value}, timeout=30)
    findings.check(value, page)
    action = page.text.split('<form method="post" action="', 1)[1].split('"', 1)[0]
    if "evil" in action:
        findings.problems[value] = f"the login form posts to {action}"
    answer = browser.post(
        f"{idp.url}/login",
        params={"next": value},
        data={
            "csrf_token": form_fields(page.text)["csrf_token"],
            "identifier": user.access_number,
            "password": PASSWORD,
        },
        allow_redirects=False,
        timeout=30,
    )
    return browser, answer


def test_login_next(idp: Any) -> None:
    user = idp.add_user()
    findings = Findings(idp)
    for value in hostile():
        _, answer = login_answer(idp, user, value, findings)
        findings.expect(value, findings.check(value, answer), f"{idp.url}/account")
    findings.assert_none()

    # The account and admin pages, with their query.
    for path in ("/account", "/admin/audit?event=login&offset=50"):
        _, answer = login_answer(idp, user, path, findings)
        assert answer.status_code == 302 and answer.headers["Location"] == path
    # Any other page of ours is not a place the login returns to.
    _, answer = login_answer(idp, user, "/lang/de", findings)
    assert answer.headers["Location"] == "/account"
    findings.assert_none()


def test_pending_password_change_next(idp: Any) -> None:
    from idp.accounts.models import User
    from idp.extensions import db

    findings = Findings(idp)

    def change_password(value: str) -> str | None:
        user = idp.add_user()
        with idp.app.app_context():
            db.session.get(User, user.id).password_reset_required = True
            db.session.commit()
        browser, answer = login_answer(idp, user, value, findings)
        assert answer.headers.get("Location") == "/login/new-password", answer.headers
        page = browser.get(f"{idp.url}/login/new-password", timeout=30)
        assert page.status_code == 200, page.text[:500]
        done = browser.post(
            page.url,
            data={
                "csrf_token": form_fields(page.text)["csrf_token"],
                "password": NEW_PASSWORD,
                "password_again": NEW_PASSWORD,
            },
            allow_redirects=False,
            timeout=30,
        )
        return findings.check(value, done)

    for value in hostile():
        findings.expect(value, change_password(value), f"{idp.url}/account")
    findings.assert_none()
    assert change_password("/admin/users?search=x") == f"{idp.url}/admin/users?search=x"


# --- the passkey login's next ------------------------------------------------------------


def test_passkey_login_next(idp: Any) -> None:
    _user, key = user_with_passkey(idp)
    findings = Findings(idp)

    def sign_in(value: str) -> str | None:
        browser = Browser(idp.url)
        page = login_page(browser, f"{idp.url}/login")
        options = passkey_options(browser, page)
        assert options.status_code == 200, options.text
        credential = get_assertion_for_options(key=key, options_json=options.json(), origin=idp.url)
        path = "/login/passkey?" + urlencode({"next": value})
        answer = post_json(browser, page, path, {"credential": credential})
        if answer.status_code != 200:
            findings.check(value, answer)
            findings.problems.setdefault(value, f"HTTP {answer.status_code}: {answer.text[:200]}")
            return None
        # passkeys.js: window.location.assign(answer.redirect), on the login page.
        answer.url = page.url
        return findings.check(value, answer, target=answer.json()["redirect"])

    for value in hostile():
        findings.expect(value, sign_in(value), f"{idp.url}/account")
    findings.assert_none()
    assert sign_in("/account?x=1") == f"{idp.url}/account?x=1"


# --- the step-up's return on the account and admin pages ---------------------------------


def _step_up_answers(idp: Any, user: Any, action: str, values: Iterable[str]) -> Any:
    """``POST action`` (method "app", next=value) for each value, from a
    password session of ``user``, who has nothing to confirm with: the
    answer sends the browser straight back to ``next``."""
    browser, account = direct_login(idp, user)
    token = form_fields(account.text)["csrf_token"]
    for value in values:
        yield (
            value,
            browser.session.post(
                idp.url + action,
                data={"csrf_token": token, "method": "app", "next": value},
                allow_redirects=False,
                timeout=30,
            ),
        )


def test_account_step_up_next(idp: Any) -> None:
    findings = Findings(idp)
    user = idp.add_user()
    for value, answer in _step_up_answers(idp, user, "/account/confirm", hostile()):
        findings.expect(value, findings.check(value, answer), f"{idp.url}/account")
    findings.assert_none()
    [(_, answer)] = _step_up_answers(idp, user, "/account/confirm", ["/account?tab=devices"])
    assert answer.status_code == 302 and answer.headers["Location"] == "/account?tab=devices"


def test_admin_step_up_next(idp: Any) -> None:
    findings = Findings(idp)
    user = idp.add_user()
    make_admin(idp, user)
    # An account page is not where the admin step-up returns to.
    values = hostile("/account")
    for value, answer in _step_up_answers(idp, user, "/admin/confirm", values):
        findings.expect(value, findings.check(value, answer), f"{idp.url}/admin/")
    findings.assert_none()
    [(_, answer)] = _step_up_answers(idp, user, "/admin/confirm", ["/admin/audit?event=login"])
    assert answer.status_code == 302 and answer.headers["Location"] == "/admin/audit?event=login"


# --- RP-initiated logout: a registered URI or nothing ------------------------------------


def test_logout_follows_no_hostile_post_logout_redirect_uri(idp: Any) -> None:
    user = idp.add_user()
    bye = "http://localhost:9/bye"
    client_id, secret = idp.add_client(first_party=True, post_logout_redirect_uris=[bye])
    rp = RelyingParty(idp.url, client_id, secret)
    browser = Browser(idp.url)
    params, req = login_through(idp, rp, browser, user)
    id_token = rp.redeem(params["code"], req["verifier"]).json()["id_token"]
    findings = Findings(idp)

    for value in hostile():
        asked = browser.session.get(
            f"{idp.url}/logout",
            params={"client_id": client_id, "post_logout_redirect_uri": value},
            allow_redirects=False,
            timeout=30,
        )
        if findings.check(value, asked) is not None:
            findings.problems[value] = "redirected without asking"
            continue
        confirmed = browser.session.post(
            f"{idp.url}/logout",
            data={**form_fields(asked.text), "confirm": "yes"},
            allow_redirects=False,
            timeout=30,
        )
        hinted = browser.session.get(
            f"{idp.url}/logout",
            params={"id_token_hint": id_token, "post_logout_redirect_uri": value, "state": "s"},
            allow_redirects=False,
            timeout=30,
        )
        for answer in (confirmed, hinted):
            if findings.check(value, answer) is not None:
                findings.problems[value] = f"{answer.request.method} redirected"
    findings.assert_none()

    # The registered URI is followed, with the state.
    answer = browser.session.get(
        f"{idp.url}/logout",
        params={"id_token_hint": id_token, "post_logout_redirect_uri": bye, "state": "s"},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302 and answer.headers["Location"] == bye + "?state=s"
