"""Return paths: where a browser may be sent back to, read as the browser reads it.

A return path comes from the request (``next`` of the login, the language
switch, a step-up) and ends up in a ``Location`` header or in a script's
``location.assign``. The browser does not read it as a string: it runs the
WHATWG URL Standard's basic URL parser (https://url.spec.whatwg.org/#concept-basic-url-parser)
against the page's URL, which first strips leading and trailing C0 controls
and spaces and removes every tab and newline, and in http(s) URLs reads ``\\``
as ``/``. So ``/\\t/evil.example`` and ``/\\evil.example`` are the
scheme-relative ``//evil.example``, another site (an open redirect, RFC 9700
§4.11.1), and a raw newline would even end the header.

``local_path`` is the one function that decides. It parses the value with ada
(``ada_url``, a WHATWG-conformant parser; the only importer of it) against
this provider's origin and accepts it only if

- it is a path-absolute reference: after the parser's own clean-up it starts
  with one ``/`` (or ``\\``), not two (no scheme, no scheme-relative URL);
- it resolves to this origin, with a path that does not itself begin with
  ``//`` (``/..//evil`` normalises to that, and as a relative ``Location`` it
  would be scheme-relative again);
- its percent-decoded form passes the same checks and holds no control
  characters (in case something decodes it once more on the way).

It hands back ada's serialisation of path, query and fragment: percent-encoded
where the standard says so, dot segments resolved, never a raw control
character or space, so it is safe in a header as it is.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import ada_url

# Longer values are refused: a return path is a page of ours.
MAX_LENGTH = 2000

# WHATWG URL §4.4, basic URL parser, first steps: leading and trailing "C0
# control or space" are stripped, every "ASCII tab or newline" is removed.
_C0_CONTROL_OR_SPACE = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = str.maketrans("", "", "\t\n\r")


def local_path(value: object, *, issuer: str) -> str | None:
    """``value`` as a path on the issuer's origin (path, query, fragment,
    normalised and percent-encoded by the URL parser), or None when a browser
    could read it as anything else: the caller then uses a page of its own."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return None
    origin = _origin(issuer)
    path = _resolve(value, origin)
    if path is None:
        return None
    # Defence in depth: a second decoding (a proxy, a framework, a script)
    # must not turn it into something else either.
    decoded = unquote(path)
    if any(unicodedata.category(c) == "Cc" for c in decoded) or _resolve(decoded, origin) is None:
        return None
    return path


def _origin(issuer: str) -> str:
    return ada_url.URL(issuer).origin


def _resolve(value: str, origin: str) -> str | None:
    """Path, query and fragment of ``value`` read against ``origin`` as a
    browser reads a relative URL on one of our pages, or None if it is not a
    path-absolute reference to that origin."""
    cleaned = value.strip(_C0_CONTROL_OR_SPACE).translate(_TAB_OR_NEWLINE)
    # WHATWG URL §4.4 "relative slash state": in a special scheme (http,
    # https) "\" is read as "/", and two of them start an authority.
    head = cleaned[:2].replace("\\", "/")
    if not head.startswith("/") or head == "//":
        return None
    try:
        url = ada_url.URL(cleaned, origin + "/")
    except ValueError:  # also a UnicodeEncodeError (lone surrogates)
        return None
    pathname, search, fragment = url.pathname, url.search, url.hash
    if url.origin != origin or url.username or url.password or pathname.startswith("//"):
        return None
    return f"{pathname}{search}{fragment}"


def image_url(value: object, *, issuer: str) -> str | None:
    """``value`` as an image URL a page of ours may show (a client's
    ``logo_uri``), or None: an https URL without credentials, or one on the
    issuer's own origin. Never plain http elsewhere (mixed content on an https
    page, and a request anyone on the way can read and change), never
    ``data:``, ``javascript:`` or another scheme."""
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return None
    try:
        url = ada_url.URL(value)
    except ValueError:
        return None
    if url.username or url.password:
        return None
    if url.protocol != "https:" and url.origin != _origin(issuer):
        return None
    return str(url.href)


def origin_of(url: str) -> str:
    """The origin of a URL ``image_url`` returned ("https://cdn.example")."""
    return str(ada_url.URL(url).origin)
