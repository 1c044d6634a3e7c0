"""User subs and client ids share one namespace.

A resource server that reads ``sub`` from introspection or from a token
cannot tell a client from a user if a client's id equals a user's ``sub``
(RFC 9068 §6 and §5: a ``client_credentials`` token's ``sub`` names the
client; RFC 7662 §2.2 ``sub`` / ``client_id``): it would grant the client
what belongs to the user. So no client id may equal a user's ``sub``, and no
``sub`` a client id, whoever chooses it.

Both are created in one place each (``accounts.service.create_user``,
``oidc.clients.create_client``), which asks ``in_use`` inside the creating
transaction, just before the new row is written. Subs are never chosen by
anyone (128 random bits); client ids may be (the ``idp`` command, the admin
pages and API, the demo seed) or are random (dynamic registration).
"""

from __future__ import annotations

import secrets

from sqlalchemy import or_, select

from .accounts.models import User
from .extensions import db
from .oidc.models import Client

# Random identifiers (subs, client ids not chosen by an administrator): 128
# bits, base64url, 22 characters.
RANDOM_BYTES = 16


def in_use(identifier: str) -> bool:
    """Whether ``identifier`` is a user's ``sub`` or a client's id (exact,
    as compared in tokens), as the caller's transaction sees the database."""
    user = select(User.id).where(User.sub == identifier)
    client = select(Client.id).where(Client.client_id == identifier)
    return bool(db.session.scalar(select(or_(user.exists(), client.exists()))))


def new_identifier() -> str:
    """A random identifier that is neither a user's ``sub`` nor a client's id."""
    while True:
        identifier = secrets.token_urlsafe(RANDOM_BYTES)
        if not in_use(identifier):
            return identifier
