"""idp.redirects.local_path: a return path as a browser reads it (WHATWG URL)."""

from __future__ import annotations

import ada_url
import pytest

from idp.redirects import local_path
from tests.support.return_paths import HOSTILE

ISSUER = "http://localhost:5000"
PAGE = ISSUER + "/admin/users/abc"


def lands(path: str, page: str = PAGE) -> str:
    """Where a browser on ``page`` goes with ``Location: path``."""
    return ada_url.URL(path, page).origin


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_value_is_refused_or_stays_on_the_origin(value: str) -> None:
    path = local_path(value, issuer=ISSUER)
    if path is None:
        return
    # What is handed back is a path of ours as a browser reads it, from any
    # page of ours, and safe as a header value.
    assert path.startswith("/") and not path.startswith("//"), path
    assert lands(path) == ISSUER
    assert lands(path, ISSUER + "/") == ISSUER
    assert path.isascii() and path.isprintable() and " " not in path, path


@pytest.mark.parametrize(
    "value",
    [
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        " //evil.example",
        "/..//evil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%0a/x",
        "/x?%00",
        "/a\x00b",
        "https://evil.example",
        "https:/evil.example",
        "http:evil.example",
        "javascript:alert(1)",
        "\uff0f\uff0fevil.example",
        # Our own origin, but not as a path: a return path is a path.
        "http://localhost:5000/account",
        "//localhost:5000/account",
        "account",
        "?x=1",
        "#top",
        "",
        "/" + "a" * 2000,
    ],
)
def test_refused(value: str) -> None:
    assert local_path(value, issuer=ISSUER) is None


@pytest.mark.parametrize("value", [None, 5, b"/account", ["/account"], {"next": "/account"}])
def test_only_strings(value: object) -> None:
    assert local_path(value, issuer=ISSUER) is None


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("/account", "/account"),
        ("/", "/"),
        # The query is kept as it was (already percent-encoded), and so is a fragment.
        ("/account?x=1&y=%2F", "/account?x=1&y=%2F"),
        ("/admin/audit?event=login&offset=50", "/admin/audit?event=login&offset=50"),
        ("/account#devices", "/account#devices"),
        ("/login?", "/login"),
        # An id with a percent-encoded slash stays one segment.
        ("/admin/clients/a%2Fb", "/admin/clients/a%2Fb"),
        # Normalised as the browser would: dot segments, spaces at the ends,
        # tabs and newlines inside, "\" for "/" after the first slash, and
        # characters outside ASCII percent-encoded.
        ("/admin/./users/../keys", "/admin/keys"),
        ("/admin/%2e%2e/account", "/account"),
        ("  /account\t", "/account"),
        ("/acc\nount", "/account"),
        ("/admin\\users", "/admin/users"),
        ("/a b", "/a%20b"),
        ("/caf\u00e9", "/caf%C3%A9"),
    ],
)
def test_accepted_and_normalised(value: str, path: str) -> None:
    assert local_path(value, issuer=ISSUER) == path


def test_the_issuers_origin_decides_not_its_path() -> None:
    issuer = "https://login.example.org:8443/idp"
    assert local_path("/account?x=1", issuer=issuer) == "/account?x=1"
    assert local_path("https://login.example.org:8443/account", issuer=issuer) is None
    assert local_path("//login.example.org:8443/account", issuer=issuer) is None
