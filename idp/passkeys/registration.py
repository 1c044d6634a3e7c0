"""Adding and removing passkeys on the account page.

A registration's challenge lives in Redis with a TTL, bound to the login
session (one at a time: ``passkey-challenge:register:<sid>``), and is consumed
with GETDEL before the response is verified.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import audit
from ..auth.amr import ACR_MFA, acr_satisfies
from ..auth.factors import second_factors
from ..auth.models import LoginSession
from ..auth.sessions import end_sessions
from ..devices.models import Device
from ..extensions import db
from ..state import idp
from ..tokens import new_token
from ..webauthn import CredentialJSON, WebAuthnError, registration_options, verify_registration
from .errors import (
    InvalidPasskeyRequest,
    MfaRequired,
    PasskeyAlreadyRegistered,
    PasskeyError,
    PasskeyNameTaken,
    PasskeyNotFound,
    PasskeyRequestExpired,
    ReauthenticationRequired,
    client_error,
)
from .models import Passkey, name_key
from .service import CHALLENGES, user_handle

# Adding or removing a passkey needs an authentication this recent: a session
# cookie lives for hours, and a passkey added from a stolen one would outlive
# it. NIST SP 800-63B (rev. 3) §6.1.2.1: binding another authenticator needs
# authentication at the level the new one will give (see may_manage).
RECENT_AUTHENTICATION = 600
MAX_NAME = 100


def may_manage(login: LoginSession, *, now: datetime) -> PasskeyError | None:
    """Why this session may not add or remove passkeys, or None if it may.

    - A session with MFA may. A password session only while the user has no
      second factor at all (no device, no passkey): otherwise a stolen
      password would add a passkey and never meet the push approval again.
    - And only shortly after signing in (RECENT_AUTHENTICATION): an old
      session, or a cookie copied from it, must sign in again first. Signing
      in again with a passkey gives MFA at once; the page links to the login.
    """
    if not acr_satisfies(login.acr, ACR_MFA) and second_factors(login.user_id, now).enrolled:
        return MfaRequired()
    if (now - login.auth_time).total_seconds() > RECENT_AUTHENTICATION:
        return ReauthenticationRequired()
    return None


def _require_manage(login: LoginSession, *, now: datetime) -> None:
    refusal = may_manage(login, now=now)
    if refusal is not None:
        audit.record("passkey_change_refused", user_id=login.user_id, reason=refusal.error)
        raise refusal


def check_name(value: str | None) -> str:
    """A passkey's name as given (at most ``MAX_NAME`` characters), white space
    collapsed; empty: the default name."""
    if value is None:
        return ""
    if len(value) > MAX_NAME:
        raise InvalidPasskeyRequest(fields={"name": f"at most {MAX_NAME} characters"})
    return " ".join(value.split())


def _names_in_use(user_id: int) -> set[str]:
    """The user's passkey names, compared without regard to case (``name_key``)."""
    return set(db.session.scalars(select(Passkey.name_key).where(Passkey.user_id == user_id)))


def _check_name_free(user_id: int, name: str) -> None:
    """Two passkeys of one user never share a name: the list could not tell them
    apart, nor could the user tell which one to delete. (The database holds
    it too: a unique index on the user and ``name_key``.)"""
    if name and name_key(name) in _names_in_use(user_id):
        audit.record("passkey_change_refused", user_id=user_id, reason="name_taken")
        raise PasskeyNameTaken(fields={"name": "already used by another passkey"})


def _free_default_name(user_id: int, default_name: str) -> str:
    """The default name, numbered where it is taken: "Passkey", "Passkey 2", ..."""
    taken = _names_in_use(user_id)
    name, number = default_name, 1
    while name_key(name) in taken:
        number += 1
        name = f"{default_name} {number}"
    return name


def _credential_ids_in_use(user_id: int) -> list[bytes]:
    """The user's passkeys and device credentials: the same RP ID, so a new
    passkey must not land on an authenticator that already holds one
    (excludeCredentials, WebAuthn §5.4)."""
    passkeys = db.session.scalars(select(Passkey.credential_id).where(Passkey.user_id == user_id))
    devices = db.session.scalars(
        select(Device.credential_id).where(Device.user_id == user_id, Device.revoked_at.is_(None))
    )
    return [*passkeys, *devices]


def begin_registration(login: LoginSession, *, name: str, now: datetime) -> str:
    """Options for ``navigator.credentials.create()`` (JSON); the challenge is
    kept for this login session, once."""
    _require_manage(login, now=now)
    # Refused before the browser asks the user to make the key.
    _check_name_free(login.user_id, name)
    settings = idp().settings
    user = login.user
    options = registration_options(
        rp_id=settings.rp_id,
        rp_name="Freigabe",
        user_handle=user_handle(user),
        user_name=user.username or user.access_number,
        user_display_name=user.name or user.email or user.access_number,
        exclude_credential_ids=_credential_ids_in_use(user.id),
        attestation=settings.passkey_attestation,
        resident_key="preferred",
    )
    CHALLENGES.put(
        f"register:{login.id}",
        {"challenge": options.challenge.hex(), "user_id": user.id, "name": name},
    )
    return options.json


def finish_registration(
    login: LoginSession, *, credential: CredentialJSON | None, default_name: str, now: datetime
) -> Passkey:
    """Verify the new credential and store it as a passkey of the session's user."""
    _require_manage(login, now=now)
    settings = idp().settings
    state = CHALLENGES.consume(f"register:{login.id}")
    if state is None or state.get("user_id") != login.user_id:
        raise PasskeyRequestExpired()
    if credential is None:
        raise InvalidPasskeyRequest(fields={"credential": "a JSON object"})
    try:
        verified = verify_registration(
            response=credential,
            expected_challenge=bytes.fromhex(state["challenge"]),
            expected_origin=settings.issuer,
            rp_id=settings.rp_id,
        )
    except WebAuthnError as exc:
        audit.record("passkey_refused", user_id=login.user_id, step="register", reason=exc.reason)
        raise client_error(exc) from None
    # WebAuthn §7.1 step 22: a credential ID registered already (for anyone,
    # as a passkey or a device) is refused.
    taken = db.session.scalar(
        select(Passkey.id).where(Passkey.credential_id == verified.credential_id)
    ) or db.session.scalar(select(Device.id).where(Device.credential_id == verified.credential_id))
    if taken is not None:
        audit.record(
            "passkey_refused", user_id=login.user_id, step="register", reason="already_registered"
        )
        raise PasskeyAlreadyRegistered()
    # Checked again: another tab may have taken the name meanwhile.
    name = state.get("name") or _free_default_name(login.user_id, default_name)
    _check_name_free(login.user_id, name)
    passkey = Passkey(
        id=new_token(12),
        user_id=login.user_id,
        name=name,
        credential_id=verified.credential_id,
        public_key=verified.public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        attestation_fmt=verified.fmt,
        backup_eligible=verified.backup_eligible,
        backed_up=verified.backed_up,
        transports=list(verified.transports),
        created_at=now,
    )
    db.session.add(passkey)
    audit.record(
        "passkey_registered", user_id=login.user_id, passkey=passkey.id,
        aaguid=passkey.aaguid, fmt=passkey.attestation_fmt,
        backup_eligible=passkey.backup_eligible,
    )  # fmt: skip
    try:
        db.session.flush()
    except IntegrityError:
        # Another request stored the same name or the same credential between
        # the checks above and this insert.
        db.session.rollback()
        _check_name_free(login.user_id, name)
        raise PasskeyAlreadyRegistered() from None
    return passkey


def delete(login: LoginSession, passkey_id: str, *, now: datetime, sign_out: bool = False) -> None:
    """Delete one of the user's passkeys; with ``sign_out``, also end every
    login session it signed in (or confirmed), in the same transaction
    (``idp.auth.sessions.end_sessions``: refresh tokens revoked, clients
    told). The browser asking may be one of them: it is signed out too."""
    _require_manage(login, now=now)
    passkey = db.session.scalar(
        select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == login.user_id)
    )
    if passkey is None:
        raise PasskeyNotFound()
    actor = f"user:{login.user_id}"
    audit.record(
        "passkey_deleted", user_id=login.user_id, passkey=passkey_id, actor=actor, sign_out=sign_out
    )
    if sign_out:
        # Before the row goes: the sessions name it until then.
        end_sessions(login.user_id, passkey_id=passkey.id, actor=actor, reason="passkey_deleted")
    db.session.delete(passkey)
