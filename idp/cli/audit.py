"""``idp audit``: read and export the audit log."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from ..admin import audit_log
from ..admin.paging import MAX_PAGE
from .common import Commands, emit_json, event_line, find_user, say

group = Commands("audit", help="Read and export the audit log.")

# Times on the command line are UTC.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S"]


def _audit_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option("--user", help="Access number, user name, e-mail or sub."),
            click.option("--client", "client_id", help="A client ID."),
            click.option("--type", "types", multiple=True, help="Event type; repeat for several."),
            click.option("--since", type=click.DateTime(TIME_FORMATS), help="From then on (UTC)."),
            click.option("--until", type=click.DateTime(TIME_FORMATS), help="Before then (UTC)."),
        ]
    ):
        command = option(command)
    return command


def _audit_query(
    user: str | None,
    client_id: str | None,
    types: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
) -> audit_log.AuditQuery:
    return audit_log.AuditQuery(
        user_id=find_user(user).id if user else None,
        client_id=client_id,
        types=types,
        since=since.replace(tzinfo=UTC) if since else None,
        until=until.replace(tzinfo=UTC) if until else None,
    )


@group.command("list")
@_audit_options
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0)
@click.option("--json", "as_json", is_flag=True)
def audit_list(offset: int, limit: int, as_json: bool, **filters: Any) -> None:
    """Security events, newest first."""
    page = audit_log.audit_events(_audit_query(**filters), offset=offset, limit=limit)
    rows = audit_log.describe_events(page.items)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        click.echo(event_line(row))
    if page.next_offset is not None:
        say(f"{page.total} events in all; the next page: --offset {page.next_offset}")


@group.command("export")
@_audit_options
def audit_export(**filters: Any) -> None:
    """Every matching event as JSON lines on stdout, oldest first."""
    for event in audit_log.export_audit(_audit_query(**filters)):
        click.echo(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
