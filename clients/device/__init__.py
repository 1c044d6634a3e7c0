"""The CLI device (``idp-device``): a stand-in for the phone app.

It holds one WebAuthn credential in a PIN-encrypted key store
(``clients.device.keystore``) and answers with genuine WebAuthn messages made
by a software authenticator (``clients.device.authenticator``), with the IdP
issuer as origin and its host as RP ID, as a native app with associated
domains does.
"""

from __future__ import annotations

from .authenticator import (
    AAGUID,
    AuthenticatorError,
    CredentialKey,
    create_credential,
    get_assertion,
    get_assertion_for_options,
)
from .keystore import KeyStore, KeyStoreError, WrongPin

__all__ = [
    "AAGUID",
    "AuthenticatorError",
    "CredentialKey",
    "KeyStore",
    "KeyStoreError",
    "WrongPin",
    "create_credential",
    "get_assertion",
    "get_assertion_for_options",
]
