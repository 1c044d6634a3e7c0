"""The user's login sessions, from a device: the list, ending one, ending
all; docs/device-api.md "Sessions". The bearer token suffices, as for
renaming: ending a session only takes access away (and a person whose
browser is stolen may have only the phone to act from)."""

from __future__ import annotations

from ..sessions import service
from . import schemas
from .base import api, current_device


def _actor() -> tuple[int, str]:
    device = current_device()
    return device.user_id, f"device:{device.id}"


@api.operation("GET", "/sessions", tag="sessions", response=schemas.Sessions)
def sessions() -> schemas.Sessions:
    """The user's login sessions, the most recently active first."""
    user_id, _ = _actor()
    return schemas.Sessions(
        sessions=[
            schemas.Session.model_validate(service.describe(s))
            for s in service.sessions_of(user_id)
        ]
    )


@api.operation(
    "POST",
    "/sessions/{sid}/end",
    tag="sessions",
    response=schemas.EndedSessions,
    description="Its refresh tokens are revoked and the apps it signed in to get back-channel "
    "logout. An unknown sid, another user's, or one that has ended: 404 session_not_found.",
)
def end_session(sid: str) -> schemas.EndedSessions:
    """End one of the user's login sessions."""
    user_id, actor = _actor()
    service.end_session(user_id, sid, actor=actor)
    return schemas.EndedSessions(ended=1)


@api.operation(
    "POST",
    "/sessions/end-all",
    tag="sessions",
    response=schemas.EndedSessions,
    description="Every browser is signed out; the devices stay.",
)
def end_all_sessions() -> schemas.EndedSessions:
    """End every login session of the user."""
    user_id, actor = _actor()
    return schemas.EndedSessions(ended=service.end_all_sessions(user_id, actor=actor))
