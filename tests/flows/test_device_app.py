"""The browser device app (``/app/``) at the HTTP level: what the server serves.

The page and its script, the web manifest and icons, the service worker with
its scope and headers, the localised texts for the script and the service
worker, the binding-code prefill, and a Content-Security-Policy the app lives
within. The journeys in a real browser (enrol, approve, push) are in the
browser tests.
"""

from __future__ import annotations

import json
import re
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import requests

from .test_approvals import enrolled, match_code, mfa_client, proceed, to_waiting_page

ROOT = Path(__file__).resolve().parents[2]
APP_JS = ROOT / "idp" / "static" / "app.js"
SCOPE = "/app/"


class Elements(HTMLParser):
    """Every start tag's attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def ids(self) -> set[str]:
        return {str(attrs["id"]) for _, attrs in self.tags if attrs.get("id")}

    def find(self, element_id: str) -> dict[str, str | None]:
        (found,) = [attrs for _, attrs in self.tags if attrs.get("id") == element_id]
        return found


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


def app_config(html: str) -> dict[str, Any]:
    found = re.search(
        r'<script type="application/json" id="app-config">(.*?)</script>', html, re.DOTALL
    )
    assert found, html[:500]
    config: dict[str, Any] = json.loads(found.group(1))
    return config


def get(idp: Any, path: str, **headers: str) -> requests.Response:
    return requests.get(idp.url + path, headers=headers, allow_redirects=False, timeout=30)


def translated(idp: Any, text: str, locale: str) -> str:
    from flask_babel import force_locale, gettext

    with idp.app.test_request_context(), force_locale(locale):
        return str(gettext(text))


def test_the_page_is_served_within_the_content_security_policy(idp: Any) -> None:
    # /app redirects to /app/, the scope of the manifest and the service worker.
    redirected = get(idp, "/app?code=K7QH-2MZD-X9TA")
    assert redirected.status_code == 308
    assert redirected.headers["Location"].endswith("/app/?code=K7QH-2MZD-X9TA")

    page = get(idp, SCOPE)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-store"
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    elements = parse(page.text)
    for tag, attrs in elements.tags:
        # No inline script runs: scripts come from our origin, or are data.
        if tag == "script":
            assert attrs.get("type") == "application/json" or str(attrs["src"]).startswith(
                "/static/"
            ), attrs
        # No inline styles or event handlers (style-src 'self', script-src 'self').
        assert "style" not in attrs and not any(name.startswith("on") for name in attrs), attrs
    scripts = [attrs["src"] for tag, attrs in elements.tags if tag == "script" and "src" in attrs]
    assert scripts == ["/static/app.js"]
    links = [(attrs.get("rel"), attrs.get("href")) for tag, attrs in elements.tags if tag == "link"]
    assert ("manifest", "/app/manifest.webmanifest") in links
    assert ("stylesheet", "/static/app.css") in links
    # The language switch of every page is there, and comes back here.
    assert 'href="/lang/de?next=/app/' in page.text

    script = get(idp, "/static/app.js")
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert get(idp, "/static/app.css").headers["Content-Type"].startswith("text/css")


def test_the_page_carries_its_configuration(idp: Any) -> None:
    config = app_config(get(idp, SCOPE).text)
    assert config["api"] == "/device/v1"
    assert config["scope"] == SCOPE
    assert config["serviceWorker"] == "/app/sw.js"
    assert config["rpId"] == "localhost"
    assert config["pollSeconds"] > 0
    # The VAPID key for PushManager.subscribe(): the one the server signs with.
    with idp.app.app_context():
        assert config["vapidPublicKey"] == idp.app.extensions["idp"].push.public_key()
    import base64

    point = base64.urlsafe_b64decode(config["vapidPublicKey"] + "==")
    assert len(point) == 65 and point[0] == 4  # uncompressed P-256 point
    # Every text the script uses is there (msg("...") in app.js).
    used = set(re.findall(r'msg\("(\w+)"[,)]', APP_JS.read_text(encoding="utf-8")))
    assert used and used <= set(config["messages"]), used - set(config["messages"])
    # ... and the ones it puts together: device kinds, enrolment paths, statuses.
    from idp.devices.models import DEVICE_KINDS, EnrolledVia

    vias = [v for k, v in vars(EnrolledVia).items() if k.isupper()]
    families = [f"kind_{kind}" for kind in DEVICE_KINDS] + [f"via_{via}" for via in vias]
    families += [f"status_{s}" for s in ("expired", "cancelled", "approved", "denied")]
    assert set(families) <= set(config["messages"]), set(families) - set(config["messages"])
    assert all(isinstance(text, str) and text for text in config["messages"].values())


def test_every_element_the_script_uses_is_on_the_page(idp: Any) -> None:
    page = get(idp, SCOPE).text
    ids = parse(page).ids()
    script = APP_JS.read_text(encoding="utf-8")
    used = set(re.findall(r'\$\("([\w-]+)"\)', script))
    used |= set(re.findall(r'setText\("([\w-]+)"', script))
    assert used and used <= ids, used - ids
    # The ids tests drive, documented at the top of app.js.
    documented = [
        *("device-name", "enrol-identifier", "enrol-password", "enrol-start", "enrol-code"),
        *("enrol-complete", "binding-code", "binding-start", "enrol-error", "approvals"),
        *("approval", "approval-code", "approve", "deny", "deny-fraud", "approval-result"),
        *("devices", "push-status", "push-enable", "delete-dialog", "delete-confirm"),
        *("delete-cancel", "app-message"),
    ]
    header = script.split("(function ()", 1)[0]
    for element_id in documented:
        assert element_id in ids, element_id
        assert f"#{element_id}" in header, element_id
    # List items carry their ids as data attributes.
    assert "li.dataset.approvalId" in script and "li.dataset.deviceId" in script


def test_the_number_field_takes_as_many_digits_as_the_browser_shows(idp_factory: Any) -> None:
    six = idp_factory(approval_code_digits=6)
    field = parse(get(six, SCOPE).text).find("approval-code")
    assert field["maxlength"] == "6" and field["inputmode"] == "numeric"


def test_a_binding_code_in_the_url_prefills_path_b(idp: Any) -> None:
    page = get(idp, "/app/?code=K7QH-2MZD-X9TA")
    assert parse(page.text).find("binding-code")["value"] == "K7QH-2MZD-X9TA"
    # Anything that is not a binding code stays out of the page.
    hostile = get(idp, '/app/?code="><script>alert(1)</script>')
    assert parse(hostile.text).find("binding-code")["value"] == ""
    assert "<script>alert" not in hostile.text
    assert parse(get(idp, SCOPE).text).find("binding-code")["value"] == ""
    # The fragment form (#code=...) never reaches the server; the script reads it.
    assert 'hash.get("code")' in APP_JS.read_text(encoding="utf-8")


def test_the_binding_code_page_links_to_the_app(idp: Any) -> None:
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    approved = device.answer(device.approvals()[0]["id"], "approve", match_code(page))
    assert approved.status_code == 200
    proceed(browser, page)
    account = browser.go(f"{idp.url}/account")
    shown = browser.submit(account, "/account/devices/binding-code")
    code = re.search(r'id="binding-code">([A-Z0-9-]+)<', shown.text)
    assert code, shown.text
    link = parse(shown.text).find("open-device-app")
    assert link["href"] == f"/app/#code={code.group(1)}"
    # The QR code's link (shown next to it) is absolute: a phone opens it.
    assert parse(shown.text).find("binding-link")["href"] == f"{idp.url}/app/#code={code.group(1)}"
    assert "freigabe://" not in shown.text
    # In German too, naming the app's own button.
    browser.session.headers["Accept-Language"] = "de"
    german = browser.submit(account, "/account/devices/binding-code")
    assert "„Mit Code hinzufügen“" in german.text and "Code kopieren" in german.text
    assert parse(german.text).find("copy-code")["data-copied"] == "Kopiert"


def test_the_manifest_makes_an_installable_app(idp: Any) -> None:
    response = get(idp, "/app/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["name"] == "Freigabe" and manifest["short_name"] == "Freigabe"
    # start_url and id lie within the scope, or browsers ignore the scope.
    assert manifest["scope"] == SCOPE
    assert manifest["start_url"] == SCOPE and manifest["id"] == SCOPE
    assert manifest["display"] == "standalone"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    icons = {icon["sizes"]: icon for icon in manifest["icons"]}
    assert icons["any"]["type"] == "image/svg+xml"
    svg = get(idp, icons["any"]["src"])
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg") and "<script" not in svg.text
    for size in (192, 512):
        icon = icons[f"{size}x{size}"]
        assert icon["type"] == "image/png"
        png = get(idp, icon["src"])
        assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
        body = png.content
        assert body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR"
        assert struct.unpack(">II", body[16:24]) == (size, size)
    assert get(idp, "/app/icon-100.png").status_code == 404
    assert manifest["description"] == translated(
        idp, "Confirm sign-ins to your account on this device.", "en"
    )


def test_the_service_worker_is_served_for_the_app_scope(idp: Any) -> None:
    response = get(idp, "/app/sw.js")
    assert response.status_code == 200
    # A service worker must be served as JavaScript; its default (and
    # maximum) scope is the folder it is served from: /app/.
    assert response.headers["Content-Type"].split(";")[0] == "application/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Service-Worker-Allowed" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    source = response.text
    for event in ("push", "notificationclick", "install", "activate", "fetch"):
        assert f'addEventListener("{event}"' in source, event
    # What it shows comes from messages.json; the notification opens the approval.
    assert "messages.json" in source and "#approval=" in source and "showNotification" in source


def test_the_notification_texts_follow_the_browser_language(idp: Any) -> None:
    english = get(idp, "/app/messages.json", **{"Accept-Language": "en-GB,en;q=0.8"})
    assert english.status_code == 200 and english.headers["Content-Type"] == "application/json"
    assert english.headers["Cache-Control"] == "no-cache"
    assert "Accept-Language" in english.headers["Vary"]
    assert english.headers["Content-Language"] == "en"
    body = english.json()
    assert body["lang"] == "en" and body["url"] == SCOPE
    assert body["notification"] == {
        "title": "Sign-in request",
        "body": "A sign-in to your account waits for your confirmation. Open it to check it.",
    }

    german = get(idp, "/app/messages.json", **{"Accept-Language": "de-DE,de;q=0.9"})
    assert german.headers["Content-Language"] == "de"
    assert german.json()["lang"] == "de"
    assert german.json()["notification"] == {
        key: translated(idp, text, "de") for key, text in body["notification"].items()
    }
    # The language switch wins over the browser, as on every page.
    session = requests.Session()
    session.get(f"{idp.url}/lang/de?next=/app/", timeout=30)
    switched = session.get(
        f"{idp.url}/app/messages.json", headers={"Accept-Language": "en"}, timeout=30
    )
    assert switched.json()["lang"] == "de"


def test_the_page_is_german_for_a_german_browser(idp: Any) -> None:
    page = get(idp, SCOPE, **{"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="de">' in page.text
    assert "Ihre Geräte" in page.text  # "Your devices"
    config = app_config(page.text)
    assert config["lang"] == "de"
    assert config["messages"]["expires_in"] == "Diese Anfrage läuft in %(seconds)s Sekunden ab."
    english = app_config(get(idp, SCOPE, **{"Accept-Language": "en"}).text)
    assert english["lang"] == "en"
    assert english["messages"]["expires_in"] == "This request expires in %(seconds)s seconds."


def test_the_device_api_is_same_origin_only(idp: Any) -> None:
    # The app calls the device API on its own origin: no CORS is offered to others.
    preflight = requests.options(
        f"{idp.url}/device/v1/approvals",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=30,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = requests.get(
        f"{idp.url}/device/v1/approvals", headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert answer.status_code == 401 and "Access-Control-Allow-Origin" not in answer.headers
