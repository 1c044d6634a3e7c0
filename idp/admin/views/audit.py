"""The admin pages of the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import (
    Response,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from .. import audit_log, service
from ..paging import Page
from ..service import AdminError
from .common import (
    MAX_SEARCH,
    bp,
    paging,
)


def _moment(raw: str) -> datetime:
    """A time from the filter form (``datetime-local``: UTC here), or ISO 8601."""
    value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _audit_filters() -> tuple[audit_log.AuditQuery | None, dict[str, str], dict[str, str]]:
    """The query from the filter form (None: nothing can match), the values
    as given, and what was wrong with them."""
    values = {
        name: request.args.get(name, "").strip()[:MAX_SEARCH]
        for name in ("user", "client", "type", "since", "until")
    }
    errors: dict[str, str] = {}
    user_id = None
    if values["user"]:
        try:
            user_id = service.find_user(values["user"]).id
        except service.NotFound:
            errors["user"] = _("There is no such user.")
        except AdminError:
            errors["user"] = _("Several accounts have this e-mail address; use the access number.")
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    for name in moments:
        if values[name]:
            try:
                moments[name] = _moment(values[name])
            except ValueError:
                errors[name] = _("Please enter a date and time, e.g. 2025-01-31T14:30.")
    if errors:
        return None, values, errors
    query = audit_log.AuditQuery(
        user_id=user_id,
        client_id=values["client"] or None,
        types=(values["type"],) if values["type"] else (),
        since=moments["since"],
        until=moments["until"],
    )
    return query, values, errors


@bp.get("/audit")
def audit() -> ResponseReturnValue:
    query, values, errors = _audit_filters()
    offset, limit = paging()
    if query is None:
        page: Page[Any] = Page([], 0, offset, limit)
    else:
        page = audit_log.audit_events(query, offset=offset, limit=limit)
    filters: dict[str, Any] = {k: v for k, v in values.items() if v}
    return render_template(
        "admin/audit.html",
        page=page,
        events=audit_log.describe_events(page.items),
        values=values,
        errors=errors,
        types=audit_log.audit_event_types(),
        args={**filters, "limit": limit},
        export_url=url_for("admin.audit_export", **filters),
    ), 400 if errors else 200


@bp.get("/audit/export")
def audit_export() -> ResponseReturnValue:
    """The filtered log as JSON lines (one event per line, oldest first)."""
    query, _values, _errors = _audit_filters()

    def lines() -> Iterator[str]:
        if query is None:
            return
        for event in audit_log.export_audit(query):
            yield json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n"

    return Response(
        stream_with_context(lines()),
        mimetype="application/x-ndjson",
        headers={
            "Content-Disposition": 'attachment; filename="audit-events.jsonl"',
            "Cache-Control": "no-store",
        },
    )
