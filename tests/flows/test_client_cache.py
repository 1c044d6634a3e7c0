"""Each process keeps the client registrations it has read
(idp.oidc.client_cache); a change made in any process applies in every
other at once, published through Redis when it commits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests

from .conftest import LiveIdp


def client_credentials(idp: LiveIdp, client_id: str, secret: str) -> requests.Response:
    return requests.post(
        f"{idp.url}/token",
        data={"grant_type": "client_credentials", "scope": "profile"},
        auth=(client_id, secret),
        timeout=10,
    )


@contextmanager
def admin_change(idp: LiveIdp, client_id: str) -> Iterator[Any]:
    """The registration as the admin pages change it, committed at the end."""
    from idp.admin.service import get_client
    from idp.extensions import commit

    with idp.app.app_context():
        yield get_client(client_id)
        commit()


def test_a_change_in_one_process_applies_in_another_at_once(
    idp_factory: Callable[..., LiveIdp],
) -> None:
    from idp.admin.service import Actor, rotate_client_secret, set_client_disabled

    first = idp_factory()
    second = idp_factory()  # another instance on the same database and Redis
    client_id, secret = first.add_client(
        grant_types=["client_credentials"], allowed_scopes=["profile"], redirect_uris=[]
    )
    assert secret is not None
    # Read (and kept) by the second instance.
    for _ in range(2):
        assert client_credentials(second, client_id, secret).status_code == 200

    actor = Actor(label="test")
    with admin_change(first, client_id) as client:
        new_secret = rotate_client_secret(actor, client).secret
    assert client_credentials(second, client_id, secret).status_code == 401
    assert client_credentials(second, client_id, new_secret).status_code == 200

    with admin_change(first, client_id) as client:
        set_client_disabled(actor, client, disabled=True)
    assert client_credentials(second, client_id, new_secret).status_code == 401
    assert client_credentials(first, client_id, new_secret).status_code == 401


def test_a_change_rolled_back_is_not_published(idp: LiveIdp) -> None:
    from idp.extensions import db

    client_id, secret = idp.add_client(
        grant_types=["client_credentials"], allowed_scopes=["profile"], redirect_uris=[]
    )
    assert secret is not None
    assert client_credentials(idp, client_id, secret).status_code == 200
    cache = idp.app.extensions["idp"].clients
    with idp.app.app_context():
        from idp.admin.service import get_client

        get_client(client_id).disabled = True
        db.session.flush()
        generation = cache._generation
        db.session.rollback()
    assert cache._generation == generation  # nothing was forgotten for nothing
    assert client_credentials(idp, client_id, secret).status_code == 200
