"""No client id equals a user's sub, and no sub a client id (idp.subjects).

RFC 9068 §6: a resource server reading ``sub`` (introspection, a
client_credentials token) would take such a client for the user. Client ids
are chosen with the ``idp`` command, on the admin pages, in the admin API and
by the demo seed, or drawn at random (dynamic registration); subs are always
random. Each way is tried: a chosen id that is a user's sub is refused as
taken, and a random draw that hits an existing identifier is drawn again (the
draw is steered with ``secrets.token_urlsafe``, the standard library's, so
the first 128-bit value is one already in use).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import PASSWORD
from .helpers import CALLBACK
from .test_admin_api import automation
from .test_admin_pages import admin_session, admin_with_device, by_id, client_form, get, send
from .test_cli import run
from .test_client_registration import METADATA, initial_token, register


@pytest.fixture
def first_draw(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], list[str]]:
    """The next 16-byte ``secrets.token_urlsafe`` returns ``value``; the list
    it returns is emptied when that happened."""

    def steer(value: str) -> list[str]:
        pending = [value]
        real = secrets.token_urlsafe

        def token_urlsafe(nbytes: int | None = None) -> str:
            if nbytes == 16 and pending:
                return pending.pop()
            return real(nbytes)

        monkeypatch.setattr(secrets, "token_urlsafe", token_urlsafe)
        return pending

    return steer


def client_ids(idp: Any) -> list[str]:
    return [c["client_id"] for c in json.loads(run(idp, "clients", "list", "--json").stdout)]


def test_cli_refuses_a_users_sub_as_client_id(idp: Any) -> None:
    user = idp.add_user()
    refused = run(
        idp, "clients", "add", "--name", "Mimic", "--client-id", user.sub,
        "--redirect-uri", CALLBACK,
    )  # fmt: skip
    assert refused.exit_code != 0 and "client_id: " in refused.output
    assert "is taken" in refused.output, refused.output
    assert client_ids(idp) == []


def test_admin_pages_refuse_a_users_sub_as_client_id(idp: Any) -> None:
    user, device = admin_with_device(idp)
    browser, _home = admin_session(idp, user, device)
    victim = idp.add_user()
    form = get(browser, "/admin/clients/new")
    for sub in (victim.sub, user.sub):
        refused = send(browser, form, "/admin/clients/new", **client_form(client_id=sub))
        assert refused.status_code == 400
        assert "is taken" in by_id(refused, "error-client_id")
    assert client_ids(idp) == []


def test_admin_api_refuses_a_users_sub_as_client_id(idp: Any) -> None:
    api = automation(idp)
    user = idp.add_user()
    body = {"client_name": "Mimic", "client_id": user.sub, "redirect_uris": [CALLBACK]}
    refused = api.call("POST", "/clients", json=body)
    assert refused.status_code == 400, refused.text
    assert "is taken" in refused.json()["fields"]["client_id"]
    assert client_ids(idp) == [api.client_id]


def test_demo_seed_refuses_a_users_sub_as_client_id(idp: Any) -> None:
    from idp.accounts.models import User
    from idp.demo import DEMO_CLIENT_ID, seed
    from idp.extensions import db
    from idp.oidc.clients import ClientError

    user = idp.add_user()
    with idp.app.app_context():
        # As if a user had got the demo client's id as sub before (subs are
        # random; nothing else can make one).
        db.session.get(User, user.id).sub = DEMO_CLIENT_ID
        db.session.commit()
        with pytest.raises(ClientError, match="is taken"):
            seed(rp_base="http://localhost:5001")
        db.session.rollback()
    assert client_ids(idp) == []


def test_dynamic_registration_draws_again_when_the_id_is_a_sub(
    idp: Any, first_draw: Callable[[str], list[str]]
) -> None:
    user = idp.add_user()
    token = initial_token(idp)
    pending = first_draw(user.sub)
    registered = register(idp, METADATA, token)
    assert registered.status_code == 201, registered.text
    assert pending == []  # the registration drew the user's sub first
    assert registered.json()["client_id"] != user.sub
    assert client_ids(idp) == [registered.json()["client_id"]]


def test_a_new_users_sub_is_drawn_again_when_it_is_a_client_id(
    idp: Any, first_draw: Callable[[str], list[str]]
) -> None:
    # A client id of the shape of a sub, chosen by an administrator.
    chosen = secrets.token_urlsafe(16)
    idp.add_client(client_id=chosen)

    pending = first_draw(chosen)
    created = run(idp, "users", "add", "--password-stdin", "--json", input=PASSWORD + "\n")
    assert created.exit_code == 0, created.output
    assert pending == []
    assert json.loads(created.stdout)["sub"] != chosen

    pending = first_draw(chosen)
    user = idp.add_user()  # create_user, as the demo seed calls it
    assert pending == [] and user.sub != chosen
