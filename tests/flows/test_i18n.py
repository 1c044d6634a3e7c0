"""German and English pages, chosen from the browser, ui_locales or the switch,
against a live IdP."""

from __future__ import annotations

import email
import email.policy
import html
import os
import re
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from .helpers import Browser, RelyingParty

PASSWORD = "Correct-Horse-9"
TRANSLATIONS = Path(__file__).resolve().parents[2] / "idp" / "translations"
GERMAN = "de-DE,de;q=0.9"
ENGLISH = "en-GB,en;q=0.9"


def compile_catalogs() -> None:
    """What `pybabel compile -d idp/translations` does, for catalogs whose .mo
    is missing or older than the .po (the .mo is not in git)."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.parent.parent.name)
        # Write beside it and rename, so a parallel test run never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=po.parent, suffix=".mo.tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog)
            os.chmod(tmp, 0o644)
            os.replace(tmp, mo)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


@pytest.fixture(scope="session", autouse=True)
def compiled_catalogs() -> None:
    compile_catalogs()


def browser(idp: Any, accept_language: str) -> Browser:
    b = Browser(idp.url)
    b.session.headers["Accept-Language"] = accept_language
    return b


def login_page(idp: Any, b: Browser, **extra: str) -> requests.Response:
    """The login page, reached the way a relying party sends people there."""
    client_id, secret = idp.add_client()
    url, _ = RelyingParty(idp.url, client_id, secret).authorize_url(**extra)
    page = b.go(url)
    assert page.status_code == 200, page.text[:500]
    assert urlsplit(page.url).path == "/login"
    return page


def switch_link(page: requests.Response, code: str) -> str:
    match = re.search(rf'<a href="([^"]+)" hreflang="{code}"', page.text)
    assert match is not None, page.text[:800]
    return html.unescape(match.group(1))


def assert_german(page: requests.Response) -> None:
    assert '<html lang="de">' in page.text
    assert "Zugangsnummer, Benutzername oder E-Mail-Adresse" in page.text
    assert "Passwort" in page.text
    assert ">Anmelden<" in page.text
    assert "Sign in" not in page.text


def assert_english(page: requests.Response) -> None:
    assert '<html lang="en">' in page.text
    assert "Access number, user name or e-mail" in page.text
    assert ">Sign in<" in page.text
    assert "Zugangsnummer" not in page.text


def test_german_browser_gets_the_german_login_page(idp: Any) -> None:
    page = login_page(idp, browser(idp, GERMAN))
    assert_german(page)
    assert "um mit Client 1 fortzufahren" in page.text
    assert "Abbrechen und zur Anwendung zurückkehren" in page.text


def test_english_browser_gets_the_english_login_page(idp: Any) -> None:
    page = login_page(idp, browser(idp, "en"))
    assert_english(page)
    assert "to continue to Client 1" in page.text


def test_unsupported_browser_language_falls_back_to_english(idp: Any) -> None:
    assert_english(login_page(idp, browser(idp, "fr-FR,fr;q=0.9")))


def test_ui_locales_overrides_the_browser(idp: Any) -> None:
    # OIDC Core §3.1.2.1: space-separated, in order of preference.
    assert_german(login_page(idp, browser(idp, ENGLISH), ui_locales="fr-CA de-AT en"))
    assert_english(login_page(idp, browser(idp, GERMAN), ui_locales="en"))


def test_switch_changes_language_returns_to_the_page_and_stays(idp: Any) -> None:
    b = browser(idp, ENGLISH)
    page = login_page(idp, b)
    assert_english(page)
    assert "<strong>EN</strong>" in page.text

    switched = b.go(idp.url + switch_link(page, "de"))
    assert switched.status_code == 200
    assert switched.url == page.url  # back on the same login page, same transaction
    assert_german(switched)
    assert "<strong>DE</strong>" in switched.text

    # The choice is kept in the session and beats the browser and ui_locales.
    assert_german(login_page(idp, b))
    assert_german(login_page(idp, b, ui_locales="en"))

    back = b.go(idp.url + switch_link(switched, "en"))
    assert back.url == page.url
    assert_english(back)


def test_switch_only_redirects_within_the_idp(idp: Any) -> None:
    b = browser(idp, ENGLISH)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = b.session.get(
            f"{idp.url}/lang/de", params={"next": target}, allow_redirects=False, timeout=30
        )
        assert response.status_code == 302
        assert response.headers["Location"] in ("/", f"{idp.url}/")


def test_error_page_for_an_unknown_client_is_german(idp: Any) -> None:
    rp = RelyingParty(idp.url, "no-such-client")
    url, _ = rp.authorize_url()
    page = browser(idp, GERMAN).go(url)
    assert page.status_code == 400
    assert '<html lang="de">' in page.text
    assert "Etwas ist schiefgelaufen" in page.text
    assert "Die Anwendung hat eine ungültige Anmeldeanfrage gesendet." in page.text
    assert "Fehlercode" in page.text
    assert '<code id="error-code">invalid_request</code>' in page.text


def test_login_error_message_is_german(idp: Any) -> None:
    user = idp.add_user()
    b = browser(idp, GERMAN)
    page = b.sign_in(login_page(idp, b), user.access_number, "wrong-password")
    assert page.status_code == 401
    assert '<p class="error" role="alert" id="login-error">' in page.text
    assert "Die Anmeldedaten sind nicht korrekt." in page.text


def test_consent_and_account_pages_are_german(idp: Any) -> None:
    user = idp.add_user(username="erika")
    b = browser(idp, GERMAN)
    consent = b.sign_in(login_page(idp, b, scope="openid email"), "erika", PASSWORD)
    assert consent.status_code == 200, consent.text[:500]
    assert "Zugriff für Client 1 erlauben?" in consent.text
    assert "Angemeldet als erika." in consent.text
    assert "Ihre E-Mail-Adresse" in consent.text
    assert ">Erlauben<" in consent.text and ">Ablehnen<" in consent.text
    # No promise of an account page section that does not exist.
    assert (
        "Wenn Sie erlauben, werden Sie nicht erneut gefragt, wenn Client 1 denselben "
        "Zugriff anfragt." in html.unescape(consent.text)
    )
    assert "Ihr Zugang" not in consent.text

    account = b.go(f"{idp.url}/account")
    assert account.status_code == 200
    assert "Ihr Zugang" in account.text
    assert user.access_number in account.text
    # The sign-in time in German notation (dd.mm.yyyy, hh:mm:ss).
    assert re.search(r"<dd>\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}:\d{2} UTC</dd>", account.text)


def outbox_subjects(idp: Any, to: str) -> list[str]:
    """The subjects of the development outbox's mails to ``to``, oldest first."""
    subjects = []
    for path in sorted((Path(idp.app.instance_path) / "outbox").glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to in str(mail["To"]):
            subjects.append(str(mail["Subject"]))
    return subjects


def test_messages_follow_the_language_the_person_used(idp: Any) -> None:
    from .devices import SoftDevice, last_sms_code
    from .test_admin_cli import ok as idp_command
    from .test_device_change_notices import ADDED_DE, REMOVED_DE

    address = "sprache@example.org"
    user = idp.add_user(phone_number="+49 151 7654321", email=address)
    phone = SoftDevice(idp.url)
    # The enrolment is started in German (the device's Accept-Language): the
    # text message with the code is German.
    started = phone.call(
        "POST",
        "/enrolments",
        json={"identifier": user.access_number, "password": PASSWORD, "device_name": "Handy",
              "kind": "cli"},
        headers={"Accept-Language": GERMAN},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    sms = (Path(idp.app.instance_path) / "outbox" / "sms.log").read_text(encoding="utf-8")
    assert '"text": "Ihr Freigabe-Bestätigungscode: ' in sms, sms

    # The language is remembered: the completion states none, and the mail
    # about the new device is German; so is the one an administrator causes.
    done = phone.complete(started.json(), last_sms_code(idp.app.instance_path))
    assert done.status_code == 201, done.text
    assert outbox_subjects(idp, address) == [ADDED_DE]
    idp_command(idp, "devices", "remove", user.access_number, str(phone.device_id))
    assert outbox_subjects(idp, address) == [ADDED_DE, REMOVED_DE]

    # A sign-in in English changes it: the next message is English.
    b = browser(idp, ENGLISH)
    page = b.sign_in(login_page(idp, b), user.access_number, PASSWORD)
    assert page.status_code in (200, 302), page.text[:500]
    started = SoftDevice(idp.url).start(identifier=user.access_number, password=PASSWORD)
    assert started.status_code == 201, started.text
    last = (Path(idp.app.instance_path) / "outbox" / "sms.log").read_text().splitlines()[-1]
    assert '"text": "Your Freigabe confirmation code: ' in last, last
