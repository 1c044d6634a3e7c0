"""Challenges that bind a device's assertion to what the user decided.

A device action is never "sign this random nonce": the WebAuthn challenge is
the SHA-256 of a canonical JSON statement of the decision, so a signature for
one approval, decision, typed code or context cannot be used for another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal

from ..encoding import canonical_json

# Bumped if the statement's shape ever changes; part of every signed statement.
CHALLENGE_VERSION = 1

Decision = Literal["approve", "deny"]
DECISIONS: tuple[Decision, ...] = ("approve", "deny")


def context_digest(context: Mapping[str, Any]) -> str:
    """Lowercase hex SHA-256 of the canonical JSON of an approval's context."""
    return hashlib.sha256(canonical_json(context)).hexdigest()


def approval_challenge(
    *, approval_id: str, decision: Decision, code: str, context: Mapping[str, Any]
) -> bytes:
    """The challenge a device signs to answer an approval (DESIGN §3 step 6).

    SHA-256 of the canonical JSON (see ``canonical_json``) of::

        {"v": 1, "approval": approval_id, "decision": "approve" | "deny",
         "code": code as typed, "context": context_digest(context)}

    Deny is signed the same way as approve. ``code`` is what the user typed,
    unchanged: the server compares it with the match code after verifying.
    """
    if not approval_id:
        raise ValueError("approval_id must not be empty")
    if decision not in DECISIONS:
        raise ValueError("decision must be 'approve' or 'deny'")
    if not isinstance(code, str):
        raise TypeError("code must be the string the user typed")
    statement = {
        "v": CHALLENGE_VERSION,
        "approval": approval_id,
        "decision": decision,
        "code": code,
        "context": context_digest(context),
    }
    return hashlib.sha256(canonical_json(statement)).digest()


def action_challenge(*, purpose: str, payload: Mapping[str, Any]) -> bytes:
    """The challenge a device signs for another action (delete a device,
    activate restoration ...).

    SHA-256 of the canonical JSON of ``{"v": 1, "purpose": purpose, "payload": payload}``.
    Its members differ from an approval statement's, so the two never collide;
    ``purpose`` keeps one action's signature from serving as another's.
    """
    if not purpose:
        raise ValueError("purpose must not be empty")
    statement = {"v": CHALLENGE_VERSION, "purpose": purpose, "payload": payload}
    return hashlib.sha256(canonical_json(statement)).digest()
