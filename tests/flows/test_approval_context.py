"""The approval context in words: "Chrome on Linux", "Berlin, Germany" (issue 14, point 5).

The device API describes the browser that asked and, with a GeoIP database,
the approximate place of its address, in the device's language; the raw
user-agent string stays beside the words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser
from .test_approvals import enrolled, mfa_client, to_waiting_page

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
EDGE_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
UNKNOWN = "Frobnicator/0.1 (unknown device)"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CRAWLER = "FrobnicatorAgent/0.1 (+https://example.org/bot)"

# user agent, English words, German words
DESCRIBED = [
    (CHROME_LINUX, "Chrome on Linux", "Chrome unter Linux"),
    (SAFARI_IPHONE, "Safari on iPhone", "Safari auf einem iPhone"),
    (FIREFOX_WINDOWS, "Firefox on Windows", "Firefox unter Windows"),
    (EDGE_WINDOWS, "Edge on Windows", "Edge unter Windows"),
    (UNKNOWN, "Unknown browser", "Unbekannter Browser"),
    (GOOGLEBOT, "Googlebot (a program, not a browser)", "Googlebot (ein Programm, kein Browser)"),
    (CRAWLER, "A program, not a browser", "Ein Programm, kein Browser"),
]


def _approval_from(idp: Any, user: Any, rp: Any, user_agent: str) -> str:
    browser = Browser(idp.url)
    browser.session.headers["User-Agent"] = user_agent
    to_waiting_page(idp, rp, user, browser)
    requested = max(idp.events("approval_requested"), key=lambda event: event.id)
    return str(requested.detail["approval"])


def _shown(device: SoftDevice, approval_id: str, language: str) -> dict[str, Any]:
    response = device.call(
        "GET", f"/approvals/{approval_id}", headers={"Accept-Language": language}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_device_api_describes_the_browser_in_words(idp_factory: Any) -> None:
    idp = idp_factory(approval_push_limit=len(DESCRIBED) + 1)  # one sign-in per browser
    user, device = enrolled(idp)
    rp = mfa_client(idp)
    ids = [_approval_from(idp, user, rp, agent) for agent, _en, _de in DESCRIBED]
    for approval_id, (agent, english, german) in zip(ids, DESCRIBED, strict=True):
        shown = _shown(device, approval_id, "en")
        assert shown["browser"] == english, agent
        # The raw string stays beside the words (shown on demand), and the
        # signed context is the raw one: the words never enter the signature.
        assert shown["user_agent"] == agent
        assert shown["context"]["user_agent"] == agent and "browser" not in shown["context"]
        assert _shown(device, approval_id, "de")["browser"] == german, agent
    # The list says the same as each approval.
    listed = {a["id"]: a["browser"] for a in device.approvals()}
    assert listed[ids[0]] == "Chrome on Linux"
    # A loopback address has no place, and no database is configured.
    assert all(_shown(device, i, "en")["location"] is None for i in ids)
    # The answer is signed over the context as before.
    answered = device.answer(ids[0], "deny", "")
    assert answered.status_code == 200, answered.text


def _geoip_database(path: Path) -> Path:
    writer = MMDBWriter(
        ip_version=6, database_type="GeoLite2-City", languages=["de", "en"], ipv4_compatible=True
    )
    germany = {"iso_code": "DE", "names": {"en": "Germany", "de": "Deutschland"}}
    writer.insert_network(
        IPSet(["81.2.69.0/24"]),
        {"city": {"names": {"en": "Munich", "de": "München"}}, "country": germany},
    )
    writer.insert_network(IPSet(["2a02:8100::/32"]), {"country": germany})
    # Private and loopback networks are never looked up, even where a database has them.
    writer.insert_network(IPSet(["127.0.0.0/8", "10.0.0.0/8"]), {"country": germany})
    writer.to_db_file(str(path))
    return path


def test_the_place_of_a_public_address_from_a_geoip_database(
    idp_factory: Any, tmp_path: Path
) -> None:
    from idp.clientinfo import approximate_place

    database = _geoip_database(tmp_path / "GeoLite2-City.mmdb")
    idp = idp_factory(geoip_database=str(database))
    user, device = enrolled(idp)
    approval_id = _approval_from(idp, user, mfa_client(idp), CHROME_LINUX)
    # The test's browser comes from 127.0.0.1: loopback, so no place, although
    # the database holds one for it.
    shown = _shown(device, approval_id, "en")
    assert shown["ip"] == "127.0.0.1" and shown["location"] is None
    # Notices carry the place of their address the same way.
    SoftDevice(idp.url).enrol(user.access_number, PASSWORD, idp.app.instance_path)
    [added] = device.call("GET", "/notices").json()["notices"]
    assert added["type"] == "device_added" and added["ip"] == "127.0.0.1"
    assert "location" in added and added["location"] is None

    # Public addresses, in the request's language (the same function the API calls).
    for language, city in (("en", "Munich, Germany"), ("de", "München, Deutschland")):
        with idp.app.test_request_context(headers={"Accept-Language": language}):
            assert approximate_place("81.2.69.160") == city
            assert approximate_place("2a02:8100::1") in ("Germany", "Deutschland")
            assert approximate_place("8.8.8.8") is None  # not in the database
            assert approximate_place("10.1.2.3") is None  # private
            assert approximate_place("not an address") is None
            assert approximate_place(None) is None
