"""How a user got in: RFC 8176 ``amr`` values and our ``acr`` levels.

One table, so the ID token, the login policy and later second factors agree.
"""

from __future__ import annotations

# acr values (OIDC Core §2). Clients ask for them with acr_values.
ACR_PASSWORD = "urn:freigabe:acr:pwd"
ACR_MFA = "urn:freigabe:acr:mfa"

# Strength order for comparing an achieved acr with a requested one.
ACR_LEVELS = {ACR_PASSWORD: 1, ACR_MFA: 2}
ACR_SUPPORTED = tuple(ACR_LEVELS)

# method -> RFC 8176 §2 amr values it contributes
AMR_BY_METHOD = {
    "password": ("pwd",),
    # Approval on a device: user verification on a key held in hardware
    # (phones, platform authenticators) or in software (the CLI device).
    "device_hwk": ("user", "hwk"),
    "device_swk": ("user", "swk"),
    # A passkey used with user verification: "hwk" only for a device-bound key
    # whose attestation showed where it lives, "swk" otherwise (synced
    # passkeys, and keys that only vouch for themselves).
    "passkey_hwk": ("hwk", "user"),
    "passkey_swk": ("swk", "user"),
}

# Methods that are two factors on their own: a passkey assertion with user
# verification proves possession of the key and a biometric or PIN check on
# the authenticator (RFC 8176 §2 "mfa"; NIST SP 800-63B multi-factor
# cryptographic authenticator). A device approval is never used alone.
MULTI_FACTOR_METHODS = frozenset({"passkey_hwk", "passkey_swk"})


def amr_for(methods: list[str]) -> list[str]:
    """The amr values of the methods used, in order, and "mfa" when they add
    up to more than one factor (RFC 8176 §2)."""
    values: list[str] = []
    for method in methods:
        for value in AMR_BY_METHOD[method]:
            if value not in values:
                values.append(value)
    multi_factor = len(set(methods)) > 1 or any(m in MULTI_FACTOR_METHODS for m in methods)
    if multi_factor and "mfa" not in values:
        values.append("mfa")
    return values


def acr_for(amr: list[str]) -> str:
    return ACR_MFA if "mfa" in amr else ACR_PASSWORD


def acr_satisfies(achieved: str | None, requested: str) -> bool:
    return ACR_LEVELS.get(achieved or "", 0) >= ACR_LEVELS.get(requested, 99)
