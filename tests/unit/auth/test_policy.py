"""The login policy table: which checks fire for which situation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from idp.auth.amr import ACR_MFA, ACR_PASSWORD, acr_for, acr_satisfies, amr_for
from idp.auth.factors import NONE, SecondFactors
from idp.auth.policy import (
    CONSENT,
    DEVICE,
    LOGIN,
    MFA,
    PASSKEY,
    REFUSE,
    PolicyContext,
    evaluate,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def session(auth_age: int = 60, acr: str = ACR_PASSWORD) -> Any:
    return SimpleNamespace(auth_time=NOW - timedelta(seconds=auth_age), acr=acr)


def ctx(**changes: Any) -> PolicyContext:
    base = PolicyContext(
        session=session(),
        user=SimpleNamespace(is_active=True),  # type: ignore[arg-type]
        client_first_party=False,
        client_requires_mfa=False,
        client_mfa_fallback="refuse",
        factors=NONE,
        prompt=frozenset(),
        max_age=None,
        acr_values=(),
        requested_scopes=frozenset({"openid", "email"}),
        consented_scopes=frozenset({"openid", "email"}),
        done=frozenset(),
        now=NOW,
    )
    return replace(base, **changes)


def test_signed_in_with_consent_needs_nothing() -> None:
    decision = evaluate(ctx())
    assert decision.fired == ()
    assert decision.next is None


def test_no_session_needs_login_first() -> None:
    decision = evaluate(ctx(session=None, user=None, consented_scopes=frozenset()))
    assert "no_session" in decision.fired
    assert decision.next == LOGIN


def test_locked_account_needs_login() -> None:
    decision = evaluate(ctx(user=SimpleNamespace(is_active=False)))
    assert decision.fired == ("account_locked",)


def test_prompt_login_fires_until_login_done_in_this_transaction() -> None:
    # OIDC Core §3.1.2.1 prompt=login
    assert evaluate(ctx(prompt=frozenset({"login"}))).fired == ("prompt_login",)
    assert evaluate(ctx(prompt=frozenset({"login"}), done=frozenset({LOGIN}))).fired == ()


def test_max_age_exceeded_forces_login() -> None:
    # OIDC Core §3.1.2.1 max_age
    assert evaluate(ctx(session=session(auth_age=301), max_age=300)).fired == ("max_age",)
    assert evaluate(ctx(session=session(auth_age=299), max_age=300)).fired == ()


def test_max_age_zero_acts_like_prompt_login() -> None:
    assert evaluate(ctx(session=session(auth_age=0), max_age=0)).fired == ("max_age",)
    assert evaluate(ctx(max_age=0, done=frozenset({LOGIN}))).fired == ()


def test_client_requiring_mfa_fires_for_password_session_only() -> None:
    assert evaluate(ctx(client_requires_mfa=True)).fired == ("client_policy",)
    assert evaluate(ctx(client_requires_mfa=True)).next == MFA
    assert evaluate(ctx(client_requires_mfa=True, session=session(acr=ACR_MFA))).fired == ()


def test_acr_values_compare_strength() -> None:
    assert evaluate(ctx(acr_values=(ACR_MFA,))).fired == ("acr_values",)
    assert evaluate(ctx(acr_values=(ACR_PASSWORD,))).fired == ()
    assert evaluate(ctx(acr_values=(ACR_PASSWORD, ACR_MFA))).fired == ()
    assert evaluate(ctx(acr_values=("urn:unknown",))).fired == ("acr_values",)


def test_consent_missing_for_new_scope_but_not_for_first_party() -> None:
    more = frozenset({"openid", "email", "phone"})
    assert evaluate(ctx(requested_scopes=more)).fired == ("consent_missing",)
    assert evaluate(ctx(requested_scopes=more, client_first_party=True)).fired == ()


def test_prompt_consent_fires_even_when_remembered() -> None:
    decision = evaluate(ctx(prompt=frozenset({"consent"}), client_first_party=True))
    assert decision.fired == ("prompt_consent",)
    assert decision.next == CONSENT
    assert evaluate(ctx(prompt=frozenset({"consent"}), done=frozenset({CONSENT}))).fired == ()


def test_login_comes_before_consent() -> None:
    decision = evaluate(ctx(prompt=frozenset({"login", "consent"})))
    assert decision.needs == (LOGIN, CONSENT)
    assert decision.next == LOGIN


def test_amr_and_acr_table() -> None:
    # RFC 8176 §2
    assert amr_for(["password"]) == ["pwd"]
    assert acr_for(["pwd"]) == ACR_PASSWORD
    assert acr_for(["pwd", "mfa"]) == ACR_MFA
    assert acr_satisfies(ACR_MFA, ACR_PASSWORD)
    assert not acr_satisfies(ACR_PASSWORD, ACR_MFA)
    assert not acr_satisfies(None, ACR_PASSWORD)


PHONE = SecondFactors(devices=("d1",), passkey=False)
PASSKEY_ONLY = SecondFactors(devices=(), passkey=True)
BOTH = SecondFactors(devices=("d1",), passkey=True)
ONLY_PENDING = SecondFactors(devices=(), passkey=False, pending=("d2",))


def test_the_decision_carries_the_second_factor_step() -> None:
    mfa = {"client_requires_mfa": True}
    assert evaluate(ctx(**mfa, factors=PHONE)).step == DEVICE
    assert evaluate(ctx(**mfa, factors=BOTH)).step == DEVICE  # its page offers the passkey
    assert evaluate(ctx(**mfa, factors=PASSKEY_ONLY)).step == PASSKEY
    # A restored device in its veto window cannot answer: as if there were none.
    assert evaluate(ctx(**mfa, factors=ONLY_PENDING)).step == REFUSE
    assert evaluate(ctx(**mfa, factors=NONE)).step == REFUSE
    # The client lets the password alone do: the code is issued (acr says so).
    password_ok = evaluate(ctx(**mfa, client_mfa_fallback="password"))
    assert password_ok.next == MFA and password_ok.step is None


def test_voluntary_acr_values_never_refuse() -> None:
    # OIDC Core §3.1.2.1: acr_values is voluntary; without a factor, no refusal.
    asked = ctx(acr_values=(ACR_MFA,))
    assert evaluate(replace(asked, factors=PHONE)).step == DEVICE
    assert evaluate(asked).step is None
    missing = replace(asked, consented_scopes=frozenset())
    assert evaluate(missing).step == CONSENT


def test_login_and_consent_steps_are_the_needs() -> None:
    assert evaluate(ctx(session=None)).step == LOGIN
    assert evaluate(ctx(consented_scopes=frozenset())).step == CONSENT
    assert evaluate(ctx()).step is None
