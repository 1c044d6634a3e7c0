"""Prepare a benchmark server's storage with the server's settings, before
`idp serve --no-migrate` starts.

Migrates the database, makes the signing and VAPID keys (as `idp serve`
does before its workers start), and adds the benchmark's users and clients
(passwords hashed at the configured cost: the bench never lowers it).
"""

from __future__ import annotations

from typing import Any

from flask_migrate import upgrade

from idp.accounts.service import create_user
from idp.app import create_app
from idp.extensions import db
from idp.oidc.clients import create_client
from idp.state import IDP, idp

PASSWORD = "Bench-Password-2026"
CALLBACK = "http://localhost:9/callback"


def seed(settings: dict[str, Any]) -> dict[str, Any]:
    """What it made: the users' identifiers and password, the clients and their secrets."""
    app = create_app(settings)
    try:
        with app.app_context():
            upgrade()
            idp().keyring.ensure_keys()
            idp().push.public_key()
            passwords = idp().passwords
            flows = create_user(passwords, password=PASSWORD, username="bench")
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
                "flows_user": flows.username,
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
