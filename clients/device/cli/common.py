"""What the device commands share: the key store and its PIN, input from a
terminal or from stdin, and the output helpers."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import click

from ..api import DeviceApi, normalise_server_url
from ..keystore import DEFAULT_KDF, MIN_PIN_LENGTH, KeyStore
from .messages import MESSAGES

STORE_VERSION = 1
KINDS = ("iphone", "ipad", "android", "browser", "cli")
PIN_ENV = "IDP_DEVICE_PIN"
STORE_ENV = "IDP_DEVICE_STORE"
KDF_ENV = "IDP_DEVICE_KDF"
SERVER_ENV = "IDP_DEVICE_SERVER"  # restore: the server, when --server is not given
# Ids are base64url and may begin with "-": taken as the argument, not as an option.
# Such a command has no short options: click splits "-aXvQ" into its letters
# and would take a "v" out of the id as -v (tests/unit/test_cli_ids.py).
ID_ARGUMENT = {"ignore_unknown_options": True}


def default_store() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "freigabe-device" / "device.json"


def pending_path(store: Path) -> Path:
    """Where ``enrol --no-wait`` keeps the enrolment until ``enrol-complete``."""
    return store.with_name(store.name + ".pending")


@dataclass
class Device:
    """What the key store holds."""

    data: dict[str, Any]

    @property
    def server(self) -> str:
        return str(self.data["server"])

    @cached_property
    def api(self) -> DeviceApi:
        return DeviceApi(self.server, token=str(self.data["device_token"]))


class LineFeed:
    """The lines of stdin, read by a thread of their own, so that a question can
    be given up while it waits (``watch``: a request answered on another device).
    Once started, every question of the command reads from it (never stdin
    directly, which the thread holds)."""

    def __init__(self) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in iter(sys.stdin.readline, ""):
                self._lines.put(line.rstrip("\r\n"))
        except (OSError, ValueError):
            pass  # stdin closed under it (the command has ended): no more lines
        self._lines.put(None)

    def get(self, timeout: float | None = None) -> str | None:
        """The next line (``queue.Empty`` after ``timeout``); None once stdin ended."""
        line = self._lines.get(timeout=timeout)
        if line is None:
            self._lines.put(None)  # ended for every later question too
        return line

    def drop_waiting(self) -> None:
        """Forget lines typed before the question was shown."""
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._lines.put(None)
                return


@dataclass
class State:
    store: Path
    pin_stdin: bool
    # The name of the Argon2id parameters the key store is saved with (keystore.KDF_PROFILES).
    kdf: str = DEFAULT_KDF
    _stdin_pin: str | None = None
    messages: Mapping[str, str] = field(default_factory=lambda: MESSAGES)
    feed: LineFeed | None = None

    @property
    def interactive(self) -> bool:
        return sys.stdin.isatty()

    def read_line(self, label: str) -> str:
        """One line of stdin (not a terminal): the answer to ``label``."""
        click.echo(f"{label}:", err=True)
        line = sys.stdin.readline() if self.feed is None else self.feed.get()
        if line is None or (self.feed is None and not line):
            raise click.ClickException(f"stdin ended before {label.lower()} was given")
        return line.rstrip("\r\n")

    def ask_unless(self, label: str, *, gone: Callable[[], str | None], every: float) -> str | None:
        """Like ``ask`` with an empty answer allowed, but while it waits,
        ``gone()`` is asked every ``every`` seconds; once it gives a reason
        the question is given up (None) and the reason said."""
        if self.feed is None:
            return self.ask(label, allow_empty=True)
        if self.interactive:
            self.feed.drop_waiting()
        click.echo(f"{label}:", err=True)
        while True:
            try:
                line = self.feed.get(timeout=every)
            except queue.Empty:
                reason = gone()
                if reason is not None:
                    say(reason)
                    return None
                continue
            if line is None:
                raise click.ClickException(f"stdin ended before {label.lower()} was given")
            return line.strip()

    def ask(self, label: str, *, hidden: bool = False, allow_empty: bool = False) -> str:
        if not self.interactive or self.feed is not None:
            value = self.read_line(label)
        elif allow_empty:
            value = click.prompt(label, default="", show_default=False, hide_input=hidden, err=True)
        else:
            value = click.prompt(label, hide_input=hidden, err=True)
        value = value.strip()
        if not value and not allow_empty:
            raise click.ClickException(f"{label} is empty")
        return str(value)

    def ask_if_possible(self, label: str) -> str | None:
        """Like ``ask``, but ``None`` instead of an error when stdin is not a
        terminal and has no further line: a question a script need not answer."""
        if self.feed is not None:
            click.echo(f"{label}:", err=True)
            line = self.feed.get()
            return None if line is None else line.strip()
        if self.interactive:
            return str(click.prompt(label, default="", show_default=False, err=True)).strip()
        line = sys.stdin.readline()
        if not line:
            return None
        click.echo(f"{label}:", err=True)
        return line.strip()

    def take_stdin_pin(self) -> None:
        """``--pin-stdin``: the PIN is the first line of stdin, read before anything else."""
        if self.pin_stdin:
            line = sys.stdin.readline()
            if not line.rstrip("\r\n"):
                raise click.UsageError("--pin-stdin: the first line of stdin is empty")
            self._stdin_pin = line.rstrip("\r\n")

    def _given_pin(self) -> str | None:
        return self._stdin_pin if self._stdin_pin is not None else os.environ.get(PIN_ENV) or None

    def pin(self) -> str:
        """The PIN that unlocks the key store."""
        pin = self._given_pin()
        if pin is not None:
            return pin
        if not self.interactive:
            raise click.ClickException(
                f"no PIN: stdin is not a terminal; use --pin-stdin or {PIN_ENV}"
            )
        return str(click.prompt("PIN", hide_input=True, err=True))

    def check_new_pin(self) -> None:
        """Fail now if ``new_pin`` could not get a PIN (before anything is sent)."""
        if self._given_pin() is None and not self.interactive:
            raise click.ClickException(
                f"no PIN: stdin is not a terminal; use --pin-stdin or {PIN_ENV}"
            )

    def new_pin(self) -> str:
        """A new PIN (asked twice on a terminal)."""
        self.check_new_pin()
        pin = self._given_pin()
        while True:
            if pin is None:
                pin = str(
                    click.prompt(
                        "Choose a PIN for this device's key",
                        hide_input=True,
                        confirmation_prompt="Repeat the PIN",
                        err=True,
                    )
                )
            if len(pin) >= MIN_PIN_LENGTH:
                return pin
            if not self.interactive or self._given_pin() is not None:
                raise click.ClickException(f"the PIN needs at least {MIN_PIN_LENGTH} characters")
            click.echo(f"The PIN needs at least {MIN_PIN_LENGTH} characters.", err=True)
            pin = None

    def unlock(self) -> tuple[Device, str]:
        """The key store's contents and the PIN that opened them. A wrong PIN
        fails here, before anything is sent."""
        if not KeyStore.exists(self.store):
            raise click.ClickException(
                f"no key store at {self.store}: enrol this device first ('idp-device enrol')"
            )
        pin = self.pin()
        data = KeyStore.unlock(self.store, pin)
        if data.get("version") != STORE_VERSION or "device_token" not in data:
            raise click.ClickException(f"{self.store} is not an idp-device key store")
        return Device(data), pin


pass_state = click.make_pass_decorator(State)


def say(message: str) -> None:
    click.echo(message, err=True)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def local_time(value: Any) -> str:
    """An API timestamp (``2026-11-23T10:00:00Z``) in local time."""
    if not isinstance(value, str):
        return "-"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def normalise_url(url: str) -> str:
    try:
        return normalise_server_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--server") from None


def pending_devices(device: Device) -> list[Mapping[str, Any]]:
    """Restored devices still in their veto window (``GET /restoration``)."""
    found = device.api.restoration().get("pending_devices")
    return [d for d in found if isinstance(d, Mapping)] if isinstance(found, list) else []
