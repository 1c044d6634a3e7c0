"""Ids (base64url) may begin with "-": the commands that take one keep it whole.

click takes an unknown "-..." as the argument only under ignore_unknown_options,
and splits it into letters first: a letter that is one of the command's short
options is taken out of the id as that option ("-aXvQ" became "-aXQ" and
--verbose under ``idp-device approve``, one approval id in about 230).
"""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from clients.device.cli import main as device_cli
from idp.cli import register


def commands(group: click.Group, path: str) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def idp_cli() -> click.Group:
    from flask import Flask

    app = Flask(__name__)
    register(app)
    return app.cli


def all_commands() -> list[tuple[str, click.Command]]:
    return [*commands(device_cli, "idp-device"), *commands(idp_cli(), "idp")]


def test_the_commands_that_take_an_id_have_no_short_options() -> None:
    taking_ids = [
        (p, c) for p, c in all_commands() if c.context_settings.get("ignore_unknown_options")
    ]
    assert len(taking_ids) >= 10, [p for p, _ in taking_ids]
    for path, command in taking_ids:
        short = [
            opt
            for param in command.params
            for opt in (*param.opts, *param.secondary_opts)
            if opt.startswith("-") and not opt.startswith("--")
        ]
        assert not short, (path, short)


@pytest.mark.parametrize("approval_id", ["-aXvQ_z0123456789ab", "-v1", "--vq"])
def test_an_id_beginning_with_a_dash_reaches_the_command_whole(approval_id: str) -> None:
    approve = device_cli.commands["approve"]
    context = approve.make_context("approve", [approval_id, "--code", "12"])
    assert context.params["approval_id"] == approval_id
    assert context.params["verbose"] is False and context.params["code"] == "12"
    # And --verbose still works beside it.
    context = approve.make_context("approve", ["--verbose", approval_id])
    assert context.params["approval_id"] == approval_id and context.params["verbose"] is True


def test_watch_keeps_its_short_verbose_option() -> None:
    result = CliRunner().invoke(device_cli, ["watch", "--help"])
    assert "-v, --verbose" in result.output
