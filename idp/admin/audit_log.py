"""The audit log as administrators read it: filters, pages, the JSON-lines
export and the event types (the pages, the admin API and ``idp audit``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from ..accounts.models import User
from ..audit import AuditEvent
from ..extensions import db
from .paging import DEFAULT_PAGE, Page, iso, page_query


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the audit log; ``None`` means any."""

    user_id: int | None = None
    client_id: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None

    def select(self) -> Select[AuditEvent]:
        query = select(AuditEvent)
        if self.user_id is not None:
            query = query.where(AuditEvent.user_id == self.user_id)
        if self.client_id:
            query = query.where(AuditEvent.client_id == self.client_id)
        if self.types:
            query = query.where(AuditEvent.type.in_(self.types))
        if self.since is not None:
            query = query.where(AuditEvent.at >= self.since)
        if self.until is not None:
            query = query.where(AuditEvent.at < self.until)
        return query


def audit_events(
    query: AuditQuery, *, offset: int = 0, limit: int = DEFAULT_PAGE
) -> Page[AuditEvent]:
    """Matching events, newest first."""
    return page_query(query.select().order_by(AuditEvent.id.desc()), offset, limit)


def export_audit(query: AuditQuery, *, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching event, oldest first, read in batches (for JSON lines)."""
    last_id = 0
    while True:
        rows = list(
            db.session.scalars(
                query.select().where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
            )
        )
        if not rows:
            return
        yield from describe_events(rows)
        last_id = rows[-1].id


def audit_event_types() -> list[str]:
    """The event types that occur in the log (for the filter's choices)."""
    return sorted(db.session.scalars(select(AuditEvent.type).distinct()))


def describe_events(events: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """Events as the API and the export show them: users by ``sub``."""
    ids = {e.user_id for e in events if e.user_id is not None}
    rows = db.session.execute(select(User.id, User.sub).where(User.id.in_(ids)))
    subs = {user_id: sub for user_id, sub in rows}
    return [
        {
            "id": event.id,
            "at": iso(event.at),
            "type": event.type,
            "actor": event.actor,
            "user": subs.get(event.user_id) if event.user_id is not None else None,
            "client_id": event.client_id,
            "device_id": (event.detail or {}).get("device"),
            "ip": event.ip,
            "detail": dict(event.detail or {}),
        }
        for event in events
    ]
