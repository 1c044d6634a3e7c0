"""Return paths an attacker would try (``next=...``), as the server receives
them, that is after the query string or form is decoded once: ``"/\\t/x"`` is
what ``?next=/%09/x`` arrives as, ``"/%09/x"`` what ``?next=/%2509/x`` does.

Each is sent to every endpoint that redirects to a return path
(tests/flows/test_return_paths.py) and given to idp.redirects.local_path
(tests/unit/test_redirects.py). None of them may take a browser off the IdP.
"""

from __future__ import annotations

HOSTILE: tuple[str, ...] = (
    # Scheme-relative, as typed and as a browser's URL parser reads it
    # (WHATWG URL: "\" is "/", tabs and newlines vanish, C0 and spaces at the
    # ends are stripped).
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\\\/evil.example",
    "/\\/evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "\x1f/\\evil.example",
    "//evil.example@localhost",
    "//localhost@evil.example",
    "//%65vil.example",
    # Absolute URLs and other schemes.
    "https://evil.example",
    "http://evil.example/account",
    "HTTPS://evil.example/admin",
    "https:/evil.example",
    "https:evil.example",
    "http:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    # Percent-encoded: harmless once, off-site after a second decoding.
    "/%09/evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "%2F%2Fevil.example",
    "/%0a/x",
    "/%0d%0aSet-Cookie:x=1",
    "/account%0d%0aSet-Cookie:x=1",
    "/x?%00",
    # Raw control characters (a newline in a header was an HTTP 500).
    "/\r\nSet-Cookie: x=1",
    "/account\nLocation: https://evil.example",
    "/\x7f/evil.example",
    # Dot segments that normalise to a scheme-relative path.
    "/..//evil.example",
    "/account/..//evil.example",
    "/%2e%2e//evil.example",
    "/admin/%2e%2e/%2e%2e//evil.example",
    # Look-alikes: full-width solidus and reverse solidus, a space.
    "\uff0f\uff0fevil.example",
    "/\uff3cevil.example",
    "/ /evil.example",
    # Not a path at all, or far too long.
    "",
    " ",
    "?next=//evil.example",
    "#//evil.example",
    "/" + "a" * 5000,
    "/account?" + "x" * 5000,
)
