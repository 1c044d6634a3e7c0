"""What the ``idp`` command groups share: one unit of work per command, the
actor "cli", the output helpers and the user look-up."""

from __future__ import annotations

import contextlib
import functools
import io
import json
from collections.abc import Callable
from typing import Any

import click
import redis
from flask.cli import AppGroup

from ..admin import service
from ..admin.paging import MAX_PAGE
from ..admin.service import Actor, AdminError
from ..extensions import commit, rollback

# User subs, client ids and device ids are base64url and may begin with "-":
# taken as the argument, not as an unknown option. Such a command has no short
# options: click splits "-aXvQ" into its letters and would take a known one out
# of the id (tests/unit/test_cli_ids.py).
ID_ARGUMENT = {"ignore_unknown_options": True}


class Commands(AppGroup):
    """A group whose every command is one unit of work (DESIGN §7): what it
    changed is committed when it has run, and rolled back when it failed
    (Redis out of reach: an error message, not a traceback); what it prints
    comes out once it has committed."""

    # (Only the decorator-factory form, @group.command("name"), is used here.)
    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], click.Command]:
        register = super().command

        def decorator(function: Callable[..., Any]) -> click.Command:
            @functools.wraps(function)
            def run(*call_args: Any, **call_kwargs: Any) -> Any:
                # What the command prints is printed once it has committed:
                # no "updated" or new secret for a change that was not made.
                printed = io.StringIO()
                try:
                    with contextlib.redirect_stdout(printed):
                        result = function(*call_args, **call_kwargs)
                    commit()
                except redis.RedisError as exc:
                    # Before the commit, or in it (a changed client's stamp
                    # is set before it commits): nothing is changed.
                    rollback()
                    raise click.ClickException(
                        f"Redis cannot be reached ({exc}); nothing was changed."
                    ) from None
                except BaseException:
                    rollback()
                    raise
                click.echo(printed.getvalue(), nl=False)
                return result

            return register(*args, **kwargs)(run)

        return decorator


# Every change made here is recorded in the audit log with the actor "cli".
CLI = Actor.cli()


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def say(message: str) -> None:
    click.echo(message, err=True)


# --- users -------------------------------------------------------------------------


def find_user(identifier: str) -> Any:
    try:
        return service.find_user(identifier)
    except service.NotFound:
        raise click.ClickException(f"no user {identifier}") from None
    except AdminError as exc:
        raise click.ClickException(str(exc.message)) from None


def page_options(command: Any) -> Any:
    command = click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=MAX_PAGE)(command)
    return click.option("--offset", type=click.IntRange(0), default=0)(command)


def text(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value) or "-"
    return "-" if value in (None, "") else str(value)


def device_line(device: dict[str, Any]) -> str:
    return (
        f"{device['id']}  {device['kind']:<8} {device['name']}  "
        f"enrolled {device['created_at']} ({device['enrolled_via']}), "
        f"last used {device['last_used_at'] or 'never'}"
    )


def event_line(event: dict[str, Any]) -> str:
    parts = [event["at"], event["type"]]
    for key in ("actor", "user", "client_id", "device_id", "ip"):
        if event[key]:
            parts.append(f"{key}={event[key]}")
    return "  ".join(parts)
