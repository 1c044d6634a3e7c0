"""Application state: what create_app() built, for the code below it.

The bottom floor of the house (DESIGN §7): every feature reaches the
settings, stores, key rings and senders through ``idp()``, and the Authlib
server and resource protector through ``authorization_server()`` and
``resource_protector()``, without importing the package root (which knows
every feature) or each other. Only type names are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from flask import current_app

if TYPE_CHECKING:
    from authlib.integrations.flask_oauth2 import ResourceProtector

    from .accounts.passwords import PasswordService
    from .config import Settings
    from .notify import EmailSender, SmsSender
    from .oidc.client_cache import ClientCache
    from .oidc.keys import KeyRing
    from .oidc.server import IdpAuthorizationServer
    from .push import PushService
    from .store import Store
    from .tokens import TokenDigester

# The keys of app.extensions (STYLE rule 1: no module globals).
IDP = "idp"
AUTHORIZATION_SERVER = "authlib.oauth2.server"
RESOURCE_PROTECTOR = "authlib.oauth2.resource_protector"


@dataclass
class Idp:
    """Everything create_app() built, reachable as ``app.extensions["idp"]``."""

    settings: Settings
    store: Store
    digester: TokenDigester
    passwords: PasswordService
    key_encryption_key: bytes
    keyring: KeyRing
    push: PushService
    mailer: EmailSender
    sms: SmsSender
    clients: ClientCache


def idp() -> Idp:
    """The Idp of the current app."""
    return cast("Idp", current_app.extensions[IDP])


def authorization_server() -> IdpAuthorizationServer:
    """The app's Authlib authorization server (idp.oidc builds it)."""
    return cast("IdpAuthorizationServer", current_app.extensions[AUTHORIZATION_SERVER])


def resource_protector() -> ResourceProtector:
    """The app's Authlib resource protector for bearer access tokens."""
    return cast("ResourceProtector", current_app.extensions[RESOURCE_PROTECTOR])
