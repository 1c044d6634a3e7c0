"""The login decision: one table of named checks, and the step it leads to.

Each check looks at the authorization request, the browser's login session and
the client, and says which interaction it needs (``login``, ``mfa`` or
``consent``). ``evaluate`` runs the table, reports every check that fired (so
the decision can be explained and tested), and decides the one next step:
sign in (``login``), confirm on a device (``device``), confirm with a passkey
(``passkey``), refuse because the client requires a second factor the user
cannot give (``refuse``), ask for consent (``consent``), or nothing more
(``None``: the code can be issued). The authorize endpoint only dispatches
it. Later factors add rows here. (Shape after panva/node-oidc-provider's
interaction policy.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from ..accounts.models import User
from .amr import ACR_MFA, acr_satisfies
from .factors import SecondFactors
from .models import LoginSession

LOGIN = "login"
MFA = "mfa"
CONSENT = "consent"
# The steps an MFA need becomes (idp.auth.factors says which the user has).
DEVICE = "device"
PASSKEY = "passkey"
REFUSE = "refuse"


@dataclass(frozen=True)
class PolicyContext:
    session: LoginSession | None
    user: User | None
    client_first_party: bool
    client_requires_mfa: bool
    # Without a second factor: "refuse", or "password" (the password alone
    # does, and the ID token's acr says so).
    client_mfa_fallback: str
    # The second factors the user can use now (none without a user).
    factors: SecondFactors
    prompt: frozenset[str]
    max_age: int | None
    acr_values: tuple[str, ...]
    requested_scopes: frozenset[str]
    consented_scopes: frozenset[str]
    # Interactions already completed within this login transaction.
    done: frozenset[str]
    now: datetime


@dataclass(frozen=True)
class Check:
    name: str
    needs: str
    fires: Callable[[PolicyContext], bool]


def _session_age(ctx: PolicyContext) -> float:
    assert ctx.session is not None
    return (ctx.now - ctx.session.auth_time).total_seconds()


CHECKS: tuple[Check, ...] = (
    Check("no_session", LOGIN, lambda c: c.session is None),
    Check("account_locked", LOGIN, lambda c: c.user is not None and not c.user.is_active),
    # OIDC Core §3.1.2.1 prompt=login: re-authenticate even with a session.
    Check("prompt_login", LOGIN, lambda c: "login" in c.prompt and LOGIN not in c.done),
    # OIDC Core §3.1.2.1 max_age: the last authentication must be recent
    # enough; max_age=0 acts like prompt=login.
    Check(
        "max_age",
        LOGIN,
        lambda c: (
            c.session is not None
            and c.max_age is not None
            and LOGIN not in c.done
            and (c.max_age == 0 or _session_age(c) > c.max_age)
        ),
    ),
    Check(
        "client_policy",
        MFA,
        lambda c: (
            c.session is not None
            and c.client_requires_mfa
            and not acr_satisfies(c.session.acr, ACR_MFA)
        ),
    ),
    # OIDC Core §3.1.2.1 acr_values: voluntary; asks for a second factor
    # where one is possible.
    Check(
        "acr_values",
        MFA,
        lambda c: (
            c.session is not None
            and bool(c.acr_values)
            and not any(acr_satisfies(c.session.acr, v) for v in c.acr_values)
        ),
    ),
    Check("prompt_consent", CONSENT, lambda c: "consent" in c.prompt and CONSENT not in c.done),
    Check(
        "consent_missing",
        CONSENT,
        lambda c: (
            not c.client_first_party
            and CONSENT not in c.done
            and not c.requested_scopes <= c.consented_scopes
        ),
    ),
)


@dataclass(frozen=True)
class Decision:
    fired: tuple[str, ...] = field(default=())
    needs: tuple[str, ...] = field(default=())
    # LOGIN, DEVICE, PASSKEY, REFUSE, CONSENT, or None: nothing more to do.
    step: str | None = None

    @property
    def next(self) -> str | None:
        """The first interaction needed; login before mfa before consent."""
        for need in (LOGIN, MFA, CONSENT):
            if need in self.needs:
                return need
        return None


def evaluate(ctx: PolicyContext, checks: tuple[Check, ...] = CHECKS) -> Decision:
    fired = [check for check in checks if check.fires(ctx)]
    needs: list[str] = []
    for check in fired:
        if check.needs not in needs:
            needs.append(check.needs)
    names = tuple(c.name for c in fired)
    decision = Decision(fired=names, needs=tuple(needs))
    return replace(decision, step=_step(ctx, decision))


def _step(ctx: PolicyContext, decision: Decision) -> str | None:
    need = decision.next
    if need != MFA:
        return need
    # A push to a device that can answer it; else the passkey.
    if ctx.factors.app:
        return DEVICE
    if ctx.factors.passkey:
        return PASSKEY
    if "client_policy" in decision.fired and ctx.client_mfa_fallback == "refuse":
        # The client requires a second factor this user cannot give: a page
        # that explains how to set one up.
        return REFUSE
    # No second factor: the client allows the password alone, or only
    # acr_values asked (voluntary, OIDC Core §3.1.2.1); the ID token's acr
    # tells the client what was achieved.
    return CONSENT if CONSENT in decision.needs else None
