"""Client URIs with user information are refused on every way in.

``https://rp.example@evil.example/cb`` looks like rp.example and goes to
evil.example (RFC 3986 §7.6, RFC 9700 §4.1.1); ``https://user:pw@...`` puts
credentials into a URI that is shown and logged. A backslash is refused too:
a browser reads it as "/", Python's urlsplit does not, so they would see
different hosts (``http://evil.example\\@localhost/cb`` passed as loopback).
The check lives in idp.oidc.clients; here each way a registration comes in is
tried with each URI field: the ``idp clients`` command, the admin pages, the
admin JSON API, and dynamic client registration (RFC 7591 / RFC 7592), for a
new client and for a change.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .helpers import CALLBACK
from .test_admin_api import automation
from .test_admin_pages import (
    admin_session,
    admin_with_device,
    by_id,
    client_form,
    clients_named,
    get,
    send,
)
from .test_cli import run
from .test_client_registration import (
    METADATA,
    assert_error,
    configuration,
    initial_token,
    register,
)

# (URI, what the message says)
REFUSED = [
    ("https://rp.example@evil.example/cb", "must not contain user information"),
    ("https://user:pw@rp.example/cb", "must not contain user information"),
    ("https://@rp.example/cb", "must not contain user information"),
    ("http://localhost@evil.example/cb", "must not contain user information"),
    ("http://evil.example\\@localhost/cb", "is not a valid URI"),
]
# The client's URI fields: the CLI option, the field in forms and JSON.
FIELDS = [
    ("--redirect-uri", "redirect_uris"),
    ("--post-logout-redirect-uri", "post_logout_redirect_uris"),
    ("--backchannel-logout-uri", "backchannel_logout_uri"),
]


def json_value(field: str, uri: str) -> Any:
    return uri if field == "backchannel_logout_uri" else [uri]


def registration_error(field: str) -> str:
    # RFC 7591 §3.2.2: invalid_redirect_uri for redirect_uris, else
    # invalid_client_metadata.
    return "invalid_redirect_uri" if field == "redirect_uris" else "invalid_client_metadata"


def test_service_refuses_them_in_every_uri_field(idp: Any) -> None:
    from idp.oidc.clients import ClientError

    for uri, message in REFUSED:
        for field in ("redirect_uris", "post_logout_redirect_uris"):
            with pytest.raises(ClientError) as refused:
                idp.add_client(**{field: [uri]})
            assert (refused.value.field, message in refused.value.message) == (field, True)
        for field in ("backchannel_logout_uri", "jwks_uri", "logo_uri"):
            with pytest.raises(ClientError) as refused:
                idp.add_client(**{field: uri})
            assert (refused.value.field, message in refused.value.message) == (field, True)
    # An "@" after the host is a path, not user information.
    idp.add_client(redirect_uris=["https://rp.example/cb/@team"])


def test_cli(idp: Any) -> None:
    added = run(idp, "clients", "add", "--name", "Kept", "--redirect-uri", CALLBACK, "--json")
    assert added.exit_code == 0, added.output
    client_id = json.loads(added.stdout)["client_id"]
    for uri, message in REFUSED:
        for option, field in FIELDS:
            extra = [] if option == "--redirect-uri" else ["--redirect-uri", CALLBACK]
            result = run(idp, "clients", "add", "--name", "Bad", *extra, option, uri)
            assert result.exit_code != 0 and f"{field}: " in result.output, result.output
            assert message in result.output, result.output
            result = run(idp, "clients", "update", client_id, option, uri)
            assert result.exit_code != 0 and message in result.output, result.output
    listed = json.loads(run(idp, "clients", "list", "--json").stdout)
    assert [c["client_id"] for c in listed] == [client_id]
    shown = json.loads(run(idp, "clients", "show", client_id, "--json").stdout)
    assert shown["redirect_uris"] == [CALLBACK] and shown["backchannel_logout_uri"] is None


def test_admin_pages(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)
    form = get(browser, "/admin/clients/new")
    for uri, message in REFUSED:
        for _option, field in FIELDS:
            bad = send(browser, form, "/admin/clients/new", **client_form(**{field: uri}))
            assert bad.status_code == 400, bad.text[:500]
            assert message in by_id(bad, f"error-{field}"), field
    assert clients_named(idp, "Ledger") == []

    client_id, _secret = idp.add_client(name="Kept")
    edit = get(browser, f"/admin/clients/{client_id}/edit")
    assert edit.status_code == 200
    for uri, message in REFUSED:
        for _option, field in FIELDS:
            values = client_form(name="Kept", client_id=client_id, **{field: uri})
            bad = send(browser, edit, f"/admin/clients/{client_id}/edit", **values)
            assert bad.status_code == 400 and message in by_id(bad, f"error-{field}"), field
    [kept] = clients_named(idp, "Kept")
    assert kept.redirect_uris == ["http://localhost:9/callback"]


def test_admin_api(idp: Any) -> None:
    api = automation(idp)
    base = {"client_name": "Payroll", "redirect_uris": ["https://payroll.example/cb"]}
    api.ok("POST", "/clients", 201, json={**base, "client_id": "payroll"})
    for uri, message in REFUSED:
        for _option, field in FIELDS:
            body = {**base, field: json_value(field, uri)}
            refused = api.call("POST", "/clients", json=body)
            assert refused.status_code == 400, refused.text
            assert message in refused.json()["fields"][field], refused.text
            changed = api.call("PATCH", "/clients/payroll", json={field: json_value(field, uri)})
            assert changed.status_code == 400, changed.text
            assert message in changed.json()["fields"][field], changed.text
    assert api.ok("GET", "/clients/payroll")["redirect_uris"] == ["https://payroll.example/cb"]
    assert len(clients_named(idp, "Payroll")) == 1


def test_dynamic_client_registration(idp: Any) -> None:
    token = initial_token(idp, uses=1)
    for uri, message in REFUSED:
        for _option, field in FIELDS:
            refused = register(idp, {**METADATA, field: json_value(field, uri)}, token)
            body = assert_error(refused, 400, registration_error(field))
            assert message in body["error_description"], body
    # None of them took a use of the token; RFC 7592 updates are checked the same way.
    registered = register(idp, METADATA, token)
    assert registered.status_code == 201, registered.text
    client = registered.json()
    for uri, message in REFUSED:
        for _option, field in FIELDS:
            body = {
                **METADATA,
                "client_id": client["client_id"],
                field: json_value(field, uri),
            }
            refused = configuration(
                idp, "PUT", client["client_id"], client["registration_access_token"], body
            )
            body = assert_error(refused, 400, registration_error(field))
            assert message in body["error_description"], body
