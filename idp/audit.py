"""The security event log: a row per event in SQL, and a line in the app log.

Never pass secrets here: detail values are stored and logged as given.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import has_request_context, request
from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import UTCDateTime, db, utcnow

log = logging.getLogger("idp.security")


class AuditEvent(db.Model):  # type: ignore[name-defined]
    __tablename__ = "audit_events"
    # The admin log's filters: by type over a time range.
    __table_args__ = (Index("ix_audit_events_type_at", "type", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str | None] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(index=True)
    client_id: Mapped[str | None] = mapped_column(String(128), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(
    event_type: str,
    *,
    user_id: int | None = None,
    client_id: str | None = None,
    actor: str | None = None,
    **detail: Any,
) -> AuditEvent:
    ip = request.remote_addr if has_request_context() else None
    event = AuditEvent(
        type=event_type,
        actor=actor,
        user_id=user_id,
        client_id=client_id,
        ip=ip,
        detail=detail,
    )
    # Part of the unit of work: committed with what it records (or not at all).
    db.session.add(event)
    log.info("%s user=%s client=%s ip=%s %s", event_type, user_id, client_id, ip, detail or "")
    return event
