"""Passkeys: signing in with a passkey, and a passkey as the second factor
after a password. Adding and removing them is ``idp.passkeys.registration``.

Every ceremony's challenge lives in Redis with a TTL, bound to what asked for
it, and is consumed with GETDEL before anything is verified, so a response
verifies at most once (STYLE rule 7):

  passkey-challenge:register:<sid>          registration, bound to the login
                                            session (one at a time)
  passkey-challenge:login:tx:<tx>:<c>       sign-in within a login transaction
  passkey-challenge:login:browser:<b>:<c>   sign-in straight to the account page,
                                            bound to a random value in this
                                            browser's signed session cookie
  passkey-challenge:mfa:<tx>:<c>            second factor of one login transaction

``<c>`` is the challenge (hex): a sign-in may have several outstanding (the
autofill request a page makes on load, the button, another tab), and the
response's clientDataJSON names the one it answers; an unknown or used one is
refused before verification.

Only credentials of the passkeys table sign anyone in: a device's credential
(same RP ID, so a browser may offer it) is not a passkey.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update

from .. import audit
from ..accounts.models import User
from ..auth.first_factor import AccountLocked, TooManyAttempts, ip_limit, reserve_attempt
from ..extensions import db
from ..state import idp
from ..store.kinds import Kind
from ..store.ratelimit import retry_after
from ..webauthn import (
    CredentialJSON,
    WebAuthnError,
    authentication_options,
    challenge_of,
    credential_id_of,
    verify_assertion,
)
from .errors import (
    InvalidPasskeyRequest,
    NoPasskey,
    PasskeyError,
    PasskeyOfAnotherAccount,
    PasskeyRequestExpired,
    UnknownPasskey,
    client_error,
)
from .models import Passkey

log = logging.getLogger(__name__)

# A ceremony's options are good for this long (the browser's own timeout is
# 120 s, idp.webauthn.DEFAULT_TIMEOUT_MS).
CHALLENGE_TTL = 300
# A ceremony's challenge until the browser answers it (single use), named
# "purpose:binding:challenge" (sign-in, second factor) or "register:sid".
CHALLENGES = Kind("passkey-challenge", dict, ttl=lambda s: CHALLENGE_TTL)

Purpose = Literal["login", "mfa"]


@dataclass(frozen=True)
class VerifiedPasskey:
    passkey_id: str
    user: User
    # The login method for idp.auth.amr ("passkey_hwk" / "passkey_swk").
    method: str
    sign_count_regressed: bool


# --- reading ---------------------------------------------------------------------------


def user_handle(user: User) -> bytes:
    """The WebAuthn user handle (user.id, §5.4.3): the random ``sub``, the same
    one device credentials are registered with. No personal data."""
    return user.sub.encode()


def passkeys_of(user_id: int) -> list[Passkey]:
    return list(
        db.session.scalars(
            select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at)
        )
    )


def has_passkeys(user_id: int) -> bool:
    return (
        db.session.scalar(select(Passkey.id).where(Passkey.user_id == user_id).limit(1)) is not None
    )


def describe(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": passkey.id,
        "name": passkey.name,
        "created_at": _iso(passkey.created_at),
        "last_used_at": _iso(passkey.last_used_at),
        "synced": passkey.backed_up,
    }


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


# --- signing in -----------------------------------------------------------------------


def begin_authentication(*, purpose: Purpose, binding: str, user: User | None) -> str:
    """Options for ``navigator.credentials.get()`` (JSON), user verification
    required; the challenge is kept for ``binding``, once.

    ``login``: no allowCredentials, the user picks a discoverable passkey.
    ``mfa``: the passkeys of ``user``, who has signed in with a password.
    """
    allowed: list[bytes] = []
    if purpose == "mfa":
        assert user is not None
        allowed = [p.credential_id for p in passkeys_of(user.id)]
        if not allowed:
            raise NoPasskey()
    options = authentication_options(rp_id=idp().settings.rp_id, allow_credential_ids=allowed)
    CHALLENGES.put(
        f"{purpose}:{binding}:{options.challenge.hex()}", {"user_id": user.id if user else None}
    )
    return options.json


def check_not_throttled(ip: str) -> None:
    """TooManyAttempts while the IP address's failed sign-ins are at the
    limit (a look before the ceremony; the attempt itself is counted when
    the response arrives)."""
    wait = retry_after(idp().store, ip_limit(), ip)
    if wait is not None:
        raise TooManyAttempts(retry_after=wait)


def finish_authentication(
    *,
    purpose: Purpose,
    binding: str,
    response: CredentialJSON | None,
    ip: str,
    now: datetime,
    client_id: str | None = None,
) -> VerifiedPasskey:
    """Verify a passkey's assertion for the challenge kept for ``binding``.

    Rules, each with its own error and a ``passkey_refused`` audit event
    (every refusal counts toward the per-IP limit of failed sign-ins):
    - the challenge the response names was issued for ``binding`` and is
      taken now, before anything else (GETDEL): a second use of the same
      response, or a response for another browser's challenge, finds none;
    - the credential is a registered passkey (not a device, not unknown);
    - for ``mfa``, it belongs to the user who signed in with the password;
    - the assertion verifies (idp.webauthn): our origin and RP ID, user
      verification, the owner's user handle (required for a discoverable
      login), the registered BE flag, the signature;
    - the signature counter moved forward, or, with
      ``webauthn_refuse_sign_count_regression = false``, the regression is
      logged and audited and the stored counter kept;
    - the account is active;
    - the counter is stored with a conditional UPDATE, so two concurrent uses
      of one counter cannot both succeed.
    """
    # Counted before anything is checked: however many responses arrive at
    # once, no more than the limit are verified; a success gives it back.
    attempt = reserve_attempt((ip_limit(), ip))
    with attempt.given_back_on_error(PasskeyError):
        verified = _verify_passkey_login(
            purpose=purpose, binding=binding, response=response, now=now, client_id=client_id
        )
    attempt.give_back()
    return verified


def _verify_passkey_login(
    *,
    purpose: Purpose,
    binding: str,
    response: CredentialJSON | None,
    now: datetime,
    client_id: str | None,
) -> VerifiedPasskey:
    settings = idp().settings
    try:
        challenge: bytes | None = challenge_of(response) if response is not None else None
    except WebAuthnError:
        challenge = None
    state = CHALLENGES.consume(f"{purpose}:{binding}:{challenge.hex()}") if challenge else None
    expected_user_id = state.get("user_id") if state else None

    def refuse(
        error: PasskeyError, reason: str, *, user_id: int | None = None, **detail: Any
    ) -> PasskeyError:
        audit.record(
            "passkey_refused", user_id=user_id or expected_user_id, client_id=client_id,
            step=purpose, reason=reason, **detail,
        )  # fmt: skip
        return error

    if response is None or challenge is None:
        raise refuse(InvalidPasskeyRequest(), "malformed")
    if state is None:
        raise refuse(PasskeyRequestExpired(), "no_challenge")
    try:
        credential_id = credential_id_of(response)
    except WebAuthnError as exc:
        raise refuse(InvalidPasskeyRequest(), exc.reason) from None
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))
    if passkey is None:
        raise refuse(UnknownPasskey(), "unknown_credential")
    if purpose == "mfa" and passkey.user_id != expected_user_id:
        raise refuse(
            PasskeyOfAnotherAccount(), "wrong_user", passkey=passkey.id, owner=passkey.user_id
        )
    owner = passkey.user
    old_count = passkey.sign_count
    try:
        verified = verify_assertion(
            response=response,
            expected_challenge=challenge,
            expected_origin=settings.issuer,
            rp_id=settings.rp_id,
            credential_public_key=passkey.public_key,
            current_sign_count=old_count,
            refuse_sign_count_regression=settings.webauthn_refuse_sign_count_regression,
            expected_credential_id=passkey.credential_id,
            # WebAuthn §7.2 step 6: the credential's owner is the user signing in.
            expected_user_handle=user_handle(owner),
            require_user_handle=purpose == "login",
            expected_backup_eligible=passkey.backup_eligible,
        )
    except WebAuthnError as exc:
        if exc.reason == "sign_count_regressed":
            _sign_count_regressed(passkey, accepted=False, client_id=client_id)
        raise refuse(client_error(exc), exc.reason, user_id=owner.id, passkey=passkey.id) from None
    if verified.sign_count_regressed:
        _sign_count_regressed(passkey, accepted=True, client_id=client_id)
    if not owner.is_active:
        audit.record("login_refused_locked", user_id=owner.id, channel="passkey")
        raise AccountLocked()
    method = passkey.method
    # Never lower the stored counter; BS (backed up) may change at any use.
    new_count = old_count if verified.sign_count_regressed else verified.new_sign_count
    result = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == old_count)
        .values(sign_count=new_count, backed_up=verified.backed_up, last_used_at=now)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise refuse(PasskeyRequestExpired(), "concurrent_use", user_id=owner.id)
    return VerifiedPasskey(
        passkey_id=passkey.id,
        user=owner,
        method=method,
        sign_count_regressed=verified.sign_count_regressed,
    )


def _sign_count_regressed(passkey: Passkey, *, accepted: bool, client_id: str | None) -> None:
    # WebAuthn §6.1.1: the authenticator may have been cloned.
    log.warning(
        "passkey %s of user %s: signature counter did not increase (stored %d); "
        "the authenticator may be cloned (%s)",
        passkey.id, passkey.user_id, passkey.sign_count, "accepted" if accepted else "refused",
    )  # fmt: skip
    audit.record(
        "passkey_sign_count_regressed", user_id=passkey.user_id, client_id=client_id,
        passkey=passkey.id, stored=passkey.sign_count, accepted=accepted,
    )  # fmt: skip
