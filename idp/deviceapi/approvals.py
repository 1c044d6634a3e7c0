"""Approvals ("Freigabe"): the pending ones, one approval, the answer, and
the event stream; docs/device-api.md "Approvals"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Response, jsonify, stream_with_context
from flask.typing import ResponseReturnValue

from ..approvals import service as approvals
from ..extensions import db, utcnow
from ..state import idp
from .base import body, bp, current_device

EVENT_STREAM_SECONDS = 300


@bp.get("/approvals")
def list_approvals() -> ResponseReturnValue:
    device = current_device()
    now = utcnow()
    pending = approvals.pending_for(device.user_id, now, device=device)
    return jsonify(approvals=[a.public(now) for a in pending])


@bp.get("/approvals/<approval_id>")
def get_approval(approval_id: str) -> ResponseReturnValue:
    device = current_device()
    return jsonify(approvals.for_device(approval_id, device, utcnow()).public(utcnow()))


@bp.post("/approvals/<approval_id>")
def answer_approval(approval_id: str) -> ResponseReturnValue:
    device = current_device()
    data = body()
    answered = approvals.answer(
        approval_id=approval_id,
        device=device,
        decision=data.get("decision"),
        code=data.get("code", ""),
        fraud=data.get("fraud", False),
        assertion=data.get("assertion"),
        now=utcnow(),
    )
    return jsonify(status=answered.approval.status)


@bp.get("/events")
def events() -> ResponseReturnValue:
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
            while (remaining := deadline - time.monotonic()) > 0:
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
