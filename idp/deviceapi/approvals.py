"""Approvals ("Freigabe"): the pending ones, one approval, the answer, and
the event stream; docs/device-api.md "Approvals"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

from flask import Response, stream_with_context

from .. import clientinfo
from ..approvals import service as approvals
from ..approvals.model import Approval
from ..extensions import db, utcnow
from ..state import idp
from . import schemas
from .base import api, current_device

EVENT_STREAM_SECONDS = 300


def _shown(approval: Approval, now: datetime) -> schemas.Approval:
    """The approval with its context in words, so that every device (the app,
    ``idp-device``) shows the same: "Chrome on Linux", "Berlin, Germany"."""
    return schemas.Approval.model_validate(
        {
            **approval.public(now),
            "browser": clientinfo.describe_user_agent(approval.user_agent),
            "location": clientinfo.approximate_place(approval.ip),
        }
    )


@api.operation("GET", "/approvals", tag="approvals", response=schemas.Approvals)
def list_approvals() -> schemas.Approvals:
    """The pending approvals aimed at this device, newest first."""
    device = current_device()
    now = utcnow()
    pending = approvals.pending_for(device.user_id, now, device=device)
    return schemas.Approvals(approvals=[_shown(a, now) for a in pending])


@api.operation("GET", "/approvals/{approval_id}", tag="approvals", response=schemas.Approval)
def get_approval(approval_id: str) -> schemas.Approval:
    """One approval aimed at this device (its context, to show and to sign)."""
    now = utcnow()
    return _shown(approvals.for_device(approval_id, current_device(), now), now)


@api.operation(
    "POST",
    "/approvals/{approval_id}",
    tag="approvals",
    body=schemas.ApprovalAnswer,
    response=schemas.Answered,
    errors=(409, 410, 429),
    description="The assertion's challenge is SHA-256 of canonical_json({v, approval, "
    "decision, code, context: HEX_SHA256(canonical_json(CONTEXT))}) (docs/device-api.md).",
)
def answer_approval(approval_id: str, body: schemas.ApprovalAnswer) -> schemas.Answered:
    """Approve or deny, signed with this device's key."""
    answered = approvals.answer(
        approval_id=approval_id,
        device=current_device(),
        decision=body.decision,
        code=body.code,
        fraud=body.fraud,
        assertion=body.assertion,
        now=utcnow(),
    )
    return schemas.Answered.model_validate({"status": answered.approval.status})


@api.operation(
    "GET",
    "/events",
    tag="approvals",
    media_type="text/event-stream",
    description='Server-Sent Events: `event: approval` with `data: {"id": ...}` for each '
    "pending approval at connection time and each new one after; a comment every 15 s.",
)
def events() -> Response:
    """New approvals for this device's user, as Server-Sent Events."""
    device = current_device()
    channel = approvals.user_channel(device.user_id)
    user_id = device.user_id
    db.session.close()  # the stream needs Redis only; free the pooled connection

    def stream() -> Iterator[str]:
        yield "retry: 3000\n\n"
        with idp().store.fanout.listen(channel) as waiter:
            # Pending ones first (a device that just connected), then new ones.
            seen: set[str] = set()
            for approval in reversed(approvals.pending_for(user_id, utcnow(), device=device)):
                seen.add(approval.id)
                yield f"event: approval\ndata: {json.dumps({'id': approval.id})}\n\n"
            deadline = time.monotonic() + EVENT_STREAM_SECONDS
            while (remaining := deadline - time.monotonic()) > 0 and not waiter.closed:
                if not waiter.wait(min(15.0, remaining)):
                    yield ": keep-alive\n\n"
                    continue
                for approval in approvals.pending_for(user_id, utcnow(), device=device):
                    if approval.id not in seen:
                        seen.add(approval.id)
                        yield f"event: approval\ndata: {json.dumps({'id': approval.id})}\n\n"

    response = Response(stream_with_context(stream()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response
