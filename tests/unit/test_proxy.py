"""Which address is the client's behind reverse proxies (idp.proxy), request
by request through a real Flask app with the middleware create_app installs."""

from __future__ import annotations

import pytest
from flask import Flask, jsonify, request

from idp import proxy
from idp.config import parse_trusted_proxies

NETWORKS = ["10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.2"]


def app_with(trusted: object) -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def echo() -> object:
        return jsonify(addr=request.remote_addr, scheme=request.scheme, host=request.host)

    proxy.install(app, parse_trusted_proxies(trusted))
    return app


def seen(app: Flask, peer: str, **headers: str) -> dict[str, str]:
    response = app.test_client().get(
        "/",
        environ_base={"REMOTE_ADDR": peer},
        headers={name.replace("_", "-"): value for name, value in headers.items()},
    )
    assert response.status_code == 200
    return dict(response.get_json())


FORGED = {
    "X_Forwarded_For": "203.0.113.9",
    "X_Forwarded_Proto": "https",
    "X_Forwarded_Host": "evil.example",
    "X_Real_IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9;proto=https;host=evil.example",
}


@pytest.mark.parametrize("trusted", [0, [], ""])
def test_without_the_setting_every_forwarding_header_is_ignored(trusted: object) -> None:
    app = app_with(trusted)
    assert seen(app, "10.0.0.1", **FORGED) == {
        "addr": "10.0.0.1",
        "scheme": "http",
        "host": "localhost",
    }


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        # The nearest proxy appended the client; what the client sent is left of it.
        ("10.0.0.1", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", "198.51.100.66, 203.0.113.9", "203.0.113.9"),
        # Trusted hops are skipped, from the right.
        ("10.0.0.1", "198.51.100.66, 203.0.113.9, 10.1.1.1, 10.2.2.2", "203.0.113.9"),
        ("127.0.0.2", "203.0.113.9", "203.0.113.9"),
        # IPv6: proxies and clients, in normal form; IPv4-mapped is IPv4.
        ("2001:db8:ffff::1", "2001:DB8:0::7", "2001:db8::7"),
        ("10.0.0.1", "2001:db8::7, 2001:db8:ffff:1::2", "2001:db8::7"),
        ("10.0.0.1", "::ffff:203.0.113.9", "203.0.113.9"),
        ("::ffff:10.0.0.1", "203.0.113.9", "203.0.113.9"),
        # Every hop trusted: the leftmost is the client.
        ("10.0.0.1", "10.9.9.9, 10.1.1.1", "10.9.9.9"),
        # No header from a trusted proxy: the proxy itself is the client.
        ("10.0.0.1", "", "10.0.0.1"),
        # Malformed entries end the walk: the last trusted hop is the client.
        ("10.0.0.1", "unknown", "10.0.0.1"),
        ("10.0.0.1", "203.0.113.9, not-an-address, 10.1.1.1", "10.1.1.1"),
        ("10.0.0.1", "203.0.113.9:4711", "10.0.0.1"),
        ("10.0.0.1", "[2001:db8::7]", "10.0.0.1"),
        ("10.0.0.1", "fe80::1%" + "x" * 200, "10.0.0.1"),
        ("10.0.0.1", ",,,", "10.0.0.1"),
        ("10.0.0.1", '"203.0.113.9', "10.0.0.1"),
        # An untrusted peer's header is ignored, however plausible.
        ("198.51.100.1", "203.0.113.9", "198.51.100.1"),
        ("127.0.0.3", "10.1.1.1", "127.0.0.3"),
        ("2001:db8::1", "203.0.113.9", "2001:db8::1"),
    ],
)
def test_addresses_walk_x_forwarded_for_from_the_right(
    peer: str, forwarded_for: str, client: str
) -> None:
    app = app_with(NETWORKS)
    assert seen(app, peer, X_Forwarded_For=forwarded_for)["addr"] == client


def test_addresses_take_the_scheme_of_the_proxy_the_client_reached() -> None:
    app = app_with(NETWORKS)
    one_hop = {"X_Forwarded_For": "203.0.113.9"}
    assert seen(app, "10.0.0.1", **one_hop, X_Forwarded_Proto="https")["scheme"] == "https"
    assert seen(app, "10.0.0.1", **one_hop, X_Forwarded_Proto="gopher")["scheme"] == "http"
    # Two proxies, each appending: the outer one (the client's) said https.
    two_hops = {"X_Forwarded_For": "203.0.113.9, 10.1.1.1"}
    assert seen(app, "10.0.0.1", **two_hops, X_Forwarded_Proto="https, http")["scheme"] == "https"
    # Not from a trusted proxy, or no client found: the connection's scheme.
    assert seen(app, "198.51.100.1", **one_hop, X_Forwarded_Proto="https")["scheme"] == "http"
    assert seen(app, "10.0.0.1", X_Forwarded_Proto="https")["scheme"] == "http"
    # Host, port, prefix and Forwarded are never read.
    forged = seen(app, "10.0.0.1", **FORGED, X_Forwarded_Port="8443", X_Forwarded_Prefix="/x")
    assert forged["host"] == "localhost" and forged["addr"] == "203.0.113.9"


def test_a_hop_count_trusts_that_many_proxies_whoever_connects() -> None:
    app = app_with(1)
    one = seen(app, "127.0.0.1", **FORGED)
    assert one == {"addr": "203.0.113.9", "scheme": "https", "host": "localhost"}
    chain = "198.51.100.66, 203.0.113.9, 192.0.2.1"
    assert seen(app, "127.0.0.1", X_Forwarded_For=chain)["addr"] == "192.0.2.1"
    assert seen(app_with(2), "127.0.0.1", X_Forwarded_For=chain)["addr"] == "203.0.113.9"
    assert seen(app_with("2"), "127.0.0.1", X_Forwarded_For=chain)["addr"] == "203.0.113.9"
    # Fewer values than hops: the connection's peer.
    assert seen(app_with(2), "127.0.0.1", X_Forwarded_For="203.0.113.9")["addr"] == "127.0.0.1"
    # Normal form, and no strings that are not addresses or schemes.
    assert seen(app, "127.0.0.1", X_Forwarded_For="2001:DB8::7")["addr"] == "2001:db8::7"
    for garbage in ("unknown", "203.0.113.9:4711", "x" * 300):
        assert seen(app, "127.0.0.1", X_Forwarded_For=garbage)["addr"] == "127.0.0.1"
    assert seen(app, "127.0.0.1", X_Forwarded_Proto="javascript")["scheme"] == "http"
