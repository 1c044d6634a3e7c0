"""Where a request came from, in words people read: "Chrome on Linux", "Berlin, Germany".

The only module of ours that imports ``ua_parser`` (user-agent strings, with the
rules the ``ua-parser-builtins`` package bundles) and ``maxminddb`` (a MaxMind
GeoLite2/GeoIP2 City database, the optional ``geoip_database`` setting), as each
security library has one importer (STYLE rule 4). The words are in the request's
language; the raw user-agent string stays available beside them.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import maxminddb
from flask_babel import get_locale
from flask_babel import gettext as _
from ua_parser import parse

from .state import idp

log = logging.getLogger(__name__)

# ua-parser's browser families, shortened to the name people know the browser by.
BROWSER_NAMES = {
    "HeadlessChrome": "Chrome",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
SYSTEM_NAMES = {"Mac OS X": "macOS"}
# Devices named rather than their system: "Safari on iPhone".
NAMED_DEVICES = frozenset({"iPhone", "iPad", "iPod"})
UNKNOWN = "Other"


def describe_user_agent(user_agent: str | None) -> str | None:
    """ "Chrome on Linux", "Safari on iPhone", "Unknown browser"; None without a string."""
    if not user_agent:
        return None
    parsed = parse(user_agent[:512])
    browser = parsed.user_agent.family if parsed.user_agent else UNKNOWN
    browser = BROWSER_NAMES.get(browser, browser)
    device = parsed.device.family if parsed.device else UNKNOWN
    system = parsed.os.family if parsed.os else UNKNOWN
    system = SYSTEM_NAMES.get(system, system)
    if device == "Spider":
        # A crawler or script: its name only where it is a plain one ("Googlebot").
        if browser != UNKNOWN and browser.replace(" ", "").isalnum():
            return str(_("%(program)s (a program, not a browser)", program=browser))
        return str(_("A program, not a browser"))
    if device in NAMED_DEVICES:
        if browser == UNKNOWN:
            return str(_("A browser on %(device)s", device=device))
        return str(_("%(browser)s on %(device)s", browser=browser, device=device))
    if browser == UNKNOWN:
        if system == UNKNOWN:
            return str(_("Unknown browser"))
        return str(_("A browser on %(system)s", system=system))
    if system == UNKNOWN:
        return browser
    return str(_("%(browser)s on %(system)s", browser=browser, system=system))


def approximate_place(ip: str | None) -> str | None:
    """The city and country of a public address from the ``geoip_database``
    ("Berlin, Germany"); None without a database, for private, loopback or
    unknown addresses, and when the database does not know it."""
    path = idp().settings.geoip_database
    if not path or not ip:
        return None
    try:
        address = ip_address(ip)
    except ValueError:
        return None
    if not address.is_global:
        return None
    try:
        record = _reader(path, Path(path).stat().st_mtime_ns).get(address)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError):
        log.warning("the GeoIP database %s could not be read", path, exc_info=True)
        return None
    if not isinstance(record, dict):
        return None
    language = str(get_locale() or "en")
    city = _name(record.get("city"), language)
    country = _name(record.get("country"), language)
    if city and country:
        return f"{city}, {country}"
    return country or None


def _name(entry: Any, language: str) -> str | None:
    names = entry.get("names") if isinstance(entry, dict) else None
    if not isinstance(names, dict):
        return None
    name = names.get(language) or names.get("en")
    return name if isinstance(name, str) and name else None


@lru_cache(maxsize=2)
def _reader(path: str, mtime_ns: int) -> maxminddb.Reader:
    """The database, opened once per path and version (a file replaced by the
    monthly update is opened anew; memory-mapped, read-only)."""
    return maxminddb.open_database(path, maxminddb.MODE_AUTO)
