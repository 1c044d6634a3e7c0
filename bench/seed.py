"""Prepare a benchmark server's storage with the server's settings, before
`idp serve --no-migrate` starts.

Migrates the database, makes the signing and VAPID keys (as `idp serve`
does before its workers start), and adds the benchmark's users and clients
(passwords hashed at the configured cost: the bench never lowers it).
"""

from __future__ import annotations

import logging
from typing import Any

from alembic import command
from alembic.config import Config

from idp.accounts.service import create_user
from idp.app import create_app
from idp.extensions import MIGRATIONS, db
from idp.oidc.clients import create_client
from idp.state import IDP, idp

PASSWORD = "Bench-Password-2026"
CALLBACK = "http://localhost:9/callback"


def seed(settings: dict[str, Any], users: int) -> dict[str, Any]:
    """What it made: the users' identifiers and password, the clients and their secrets.

    ``users`` users for the flows, one per driver thread: a sign-in is counted
    against its account's failure limit while it is checked, so more than
    ``login_failures_per_account`` at once for one account are refused (429).
    """
    app = create_app(settings)
    try:
        with app.app_context():
            migrations = Config(str(MIGRATIONS / "alembic.ini"))
            migrations.set_main_option("script_location", str(MIGRATIONS))
            # No migration log lines in the bench's output.
            migrations.attributes["configure_logger"] = False
            logging.getLogger("alembic").setLevel(logging.WARNING)
            command.upgrade(migrations, "head")
            idp().keyring.ensure_keys()
            idp().push.public_key()
            passwords = idp().passwords
            flows = [
                create_user(passwords, password=PASSWORD, username=f"bench-{n}")
                for n in range(users)
            ]
            approver = create_user(
                passwords, password=PASSWORD, username="approver", phone_number="+49 151 1000000"
            )
            app_client, app_secret = create_client(
                client_id="bench-app",
                name="Bench App",
                redirect_uris=[CALLBACK],
                grant_types=["authorization_code", "refresh_token"],
            )
            service, service_secret = create_client(
                client_id="bench-service",
                name="Bench Service",
                redirect_uris=[],
                grant_types=["client_credentials"],
                allowed_scopes=["profile"],
            )
            mfa, mfa_secret = create_client(
                client_id="bench-mfa",
                name="Bench MFA",
                redirect_uris=[CALLBACK],
                first_party=True,
                require_mfa=True,
            )
            db.session.commit()
            made = {
                "password": PASSWORD,
                "callback": CALLBACK,
                "flows_users": [user.username for user in flows],
                "approver": approver.access_number,
                "app": [app_client.client_id, app_secret],
                "service": [service.client_id, service_secret],
                "mfa": [mfa.client_id, mfa_secret],
            }
    finally:
        with app.app_context():
            db.engine.dispose()
        app.extensions[IDP].store.close()
    return made
