"""The client's address behind trusted reverse proxies (``trusted_proxies``).

Behind a reverse proxy every connection comes from the proxy, and the
client's address is in ``X-Forwarded-For``, which anyone can send. This WSGI
middleware, installed by ``create_app``, puts the client's address into
``REMOTE_ADDR`` only for requests that came through the configured proxies,
so everything that reads ``request.remote_addr`` (per-IP limits, audit
events, the approval context a device shows, restoration and registration
limits, the device API) gets the client without knowing about proxies.
Nothing else may read ``X-Forwarded-*`` or the socket address.

- No setting (the default): nothing is installed; ``X-Forwarded-For``,
  ``X-Forwarded-Proto``, ``Forwarded`` and the rest are ignored.
- A hop count N: Werkzeug's ``ProxyFix`` takes the N-th value from the right
  of ``X-Forwarded-For`` and ``X-Forwarded-Proto``.
- Addresses and networks: only when the connection's peer is one of them,
  ``X-Forwarded-For`` is read from the right, skipping trusted addresses; the
  first other address is the client. An entry that is not an IP address ends
  the walk, and the last trusted hop counts as the client.

``X-Forwarded-Host``, ``-Port`` and ``-Prefix`` are never read: the public URL
of the provider is the ``issuer`` setting (discovery, redirects, WebAuthn
origins and token audiences come from it, never from the request), so they
could only let the proxy chain's clients change ``request.host`` for nothing.
``Forwarded`` (RFC 7239) is not read either; the proxies we document send
``X-Forwarded-For``.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING

from werkzeug.http import parse_list_header
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
SCHEMES = ("http", "https")


def install(app: Flask, trusted: int | tuple[str, ...]) -> None:
    """Wrap ``app.wsgi_app`` for the ``trusted_proxies`` setting (if any)."""
    if not trusted:
        return
    wrapped: WSGIApplication
    if isinstance(trusted, int):
        # x_for and x_proto only; x_host, x_port and x_prefix stay 0 (see the
        # module's docstring: the issuer is the public URL).
        wrapped = ProxyFix(
            _ForwardedValuesChecked(app.wsgi_app),
            x_for=trusted,
            x_proto=trusted,
            x_host=0,
            x_port=0,
            x_prefix=0,
        )
    else:
        wrapped = TrustedProxies(app.wsgi_app, [ip_network(network) for network in trusted])
    app.wsgi_app = wrapped  # type: ignore[method-assign]


def parse_address(text: str) -> Address | None:
    """An IP address in normal form, or None for anything else.

    IPv4-mapped IPv6 addresses become IPv4 (one client, one rate-limit key);
    scope ids (``fe80::1%eth0``) are refused: they are not a client's
    address, and their length is unbounded.
    """
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


class _ForwardedValuesChecked:
    """Behind ``ProxyFix`` (hop count): keep what it took from the headers
    only when it is an IP address (in normal form) and http or https;
    otherwise the values of the connection stay. ``ProxyFix`` takes any
    string, and with a hop count larger than the real chain of proxies that
    string comes from the client."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        original = environ.get("werkzeug.proxy_fix.orig", {})
        taken = environ.get("REMOTE_ADDR")
        if taken != original.get("REMOTE_ADDR"):  # from X-Forwarded-For
            address = parse_address(taken or "")
            if address is not None:
                environ["REMOTE_ADDR"] = str(address)
            elif original.get("REMOTE_ADDR") is not None:
                environ["REMOTE_ADDR"] = original["REMOTE_ADDR"]
            else:
                del environ["REMOTE_ADDR"]
        if environ.get("wsgi.url_scheme") not in SCHEMES:
            environ["wsgi.url_scheme"] = original.get("wsgi.url_scheme", "http")
        return self.app(environ, start_response)


class TrustedProxies:
    """``X-Forwarded-For`` and ``X-Forwarded-Proto`` from the given proxies."""

    def __init__(self, app: WSGIApplication, networks: list[Network]) -> None:
        self.app = app
        self.networks = networks

    def trusted(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, forwarded_for: str, peer: Address) -> tuple[Address, int]:
        """The client and how many proxies passed its request on: walk the
        addresses from the right (the one the nearest proxy appended) while
        they are trusted proxies."""
        client, hops = peer, 0
        for entry in reversed(parse_list_header(forwarded_for)):
            address = parse_address(entry)
            if address is None:
                break  # not an address: the last trusted hop is the client
            client, hops = address, hops + 1
            if not self.trusted(address):
                break
        return client, hops

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        peer = parse_address(environ.get("REMOTE_ADDR") or "")
        if peer is not None and self.trusted(peer):
            client, hops = self.client(environ.get("HTTP_X_FORWARDED_FOR", ""), peer)
            environ["REMOTE_ADDR"] = str(client)
            # The scheme the client used: recorded by the proxy it reached,
            # counted from the right as with ProxyFix's x_proto.
            schemes = parse_list_header(environ.get("HTTP_X_FORWARDED_PROTO", ""))
            if hops and len(schemes) >= hops and schemes[-hops].strip() in SCHEMES:
                environ["wsgi.url_scheme"] = schemes[-hops].strip()
        return self.app(environ, start_response)
