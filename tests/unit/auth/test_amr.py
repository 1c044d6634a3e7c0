"""The amr table: which RFC 8176 values and which acr each way of signing in gives."""

from __future__ import annotations

import pytest

from idp.auth.amr import ACR_MFA, ACR_PASSWORD, acr_for, amr_for
from idp.passkeys.models import Passkey


def test_password_alone_is_one_factor() -> None:
    assert amr_for(["password"]) == ["pwd"]
    assert acr_for(amr_for(["password"])) == ACR_PASSWORD


def test_password_and_device_approval_are_two_factors() -> None:
    # Unchanged by passkeys: what the approval tests assert end to end.
    assert amr_for(["password", "device_swk"]) == ["pwd", "user", "swk", "mfa"]
    assert amr_for(["password", "device_hwk"]) == ["pwd", "user", "hwk", "mfa"]


@pytest.mark.parametrize(("method", "key"), [("passkey_swk", "swk"), ("passkey_hwk", "hwk")])
def test_a_passkey_alone_is_multi_factor(method: str, key: str) -> None:
    # Possession of the key and user verification on the authenticator: RFC 8176 "mfa".
    amr = amr_for([method])
    assert amr == [key, "user", "mfa"]
    assert acr_for(amr) == ACR_MFA


def test_password_and_passkey() -> None:
    amr = amr_for(["password", "passkey_swk"])
    assert amr == ["pwd", "swk", "user", "mfa"]
    assert acr_for(amr) == ACR_MFA


def test_unknown_methods_are_an_error() -> None:
    with pytest.raises(KeyError):
        amr_for(["sms"])


@pytest.mark.parametrize(
    ("fmt", "backup_eligible", "method"),
    [
        ("none", False, "passkey_swk"),  # no attestation: the flags are the key's own word
        ("none", True, "passkey_swk"),
        ("packed", True, "passkey_swk"),  # synced: leaves the authenticator
        ("packed", False, "passkey_hwk"),  # attested and bound to its authenticator
    ],
)
def test_passkey_method_from_attestation_and_backup_eligibility(
    fmt: str, backup_eligible: bool, method: str
) -> None:
    assert Passkey(attestation_fmt=fmt, backup_eligible=backup_eligible).method == method
