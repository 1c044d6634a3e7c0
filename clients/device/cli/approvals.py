"""Sign-in requests (the app's "Approvals" tab): ``approvals``, ``approve``, ``deny``, ``watch``."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click

from ..api import ApiError, NetworkError
from ..keystore import KeyStore
from .common import (
    ID_ARGUMENT,
    Device,
    LineFeed,
    State,
    emit_json,
    fail,
    local_time,
    pass_state,
    say,
    table,
)
from .keys import sign
from .messages import APPROVAL_MESSAGES, describe_error
from .restoration import offer_backup

# Reconnecting to the event stream after a failure: from 1 s up to a minute.
RECONNECT_DELAYS = (1, 2, 5, 10, 30, 60)
# While ``watch`` asks for the number: how often it looks whether the request
# is still waiting (another device may have answered it).
STILL_WAITING_EVERY = 2.0
GONE = {
    "approved": "This sign-in request was confirmed on another device; no number needed.",
    "denied": "This sign-in request was refused on another device; no number needed.",
    "expired": "This sign-in request has expired; no number needed.",
    "cancelled": "This sign-in request was cancelled; no number needed.",
}


def _shown(approval: Mapping[str, Any]) -> Mapping[str, Any]:
    """What to show of an approval: its signed context, where the server put
    the same facts (client name, IP, time) the signature will cover."""
    context = approval.get("context")
    return context if isinstance(context, Mapping) else approval


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@pass_state
def approvals(state: State, as_json: bool) -> None:
    """List the pending sign-in requests (the app's "Approvals" tab)."""
    device, _pin = state.unlock()
    found = device.api.approvals()
    if as_json:
        emit_json({"approvals": found})
        return
    if not found:
        say("No sign-in requests are waiting.")
        return
    table(
        [
            [
                str(a.get("id")),
                str(_shown(a).get("client_name")),
                str(_shown(a).get("ip") or "-"),
                str(a.get("browser") or _shown(a).get("user_agent") or "-"),
                local_time(_shown(a).get("created_at")),
                local_time(a.get("expires_at")),
            ]
            for a in found
        ],
        ["ID", "APPLICATION", "IP", "BROWSER", "TIME", "EXPIRES"],
    )


VERBOSE_HELP = "Also show the browser's user-agent string as sent."
# approve and deny take an id (ID_ARGUMENT): no -v there.
VERBOSE = click.option("--verbose", is_flag=True, help=VERBOSE_HELP)


def show_approval(approval: Mapping[str, Any], *, verbose: bool = False) -> None:
    """The request in words: the server describes the browser ("Chrome on Linux")
    and, with a GeoIP database, the place, as the browser app shows them."""
    shown = _shown(approval)
    place = f" ({approval['location']})" if approval.get("location") else ""
    say(
        f"Sign-in to {shown.get('client_name')} from {shown.get('ip') or 'an unknown address'}"
        f"{place} at {local_time(shown.get('created_at'))}"
    )
    raw = shown.get("user_agent")
    browser = approval.get("browser") or raw
    if browser:
        say(f"  browser: {browser}")
    if verbose and raw and raw != browser:
        say(f"  user agent: {raw}")


def answer_approval(
    state: State,
    device: Device,
    pin: str,
    approval: Mapping[str, Any],
    *,
    decision: str,
    code: str,
    fraud: bool = False,
) -> str:
    """Sign the decision over the approval's context and send it; the new status."""
    from idp.webauthn import approval_challenge  # lazily, as in keys.signed_action

    approval_id = str(approval["id"])
    if decision == "deny":
        code = ""  # deny signs the empty code (docs/device-api.md)
    context = approval.get("context")
    if not isinstance(context, Mapping):
        raise ApiError(status=200, error="unexpected_response")
    challenge = approval_challenge(
        approval_id=approval_id,
        decision="approve" if decision == "approve" else "deny",
        code=code,
        context=context,
    )
    assertion = sign(state, device, pin, challenge)
    return device.api.answer(
        approval_id, decision=decision, code=code, fraud=fraud, assertion=assertion
    )


def _pending(device: Device, approval_id: str) -> dict[str, Any]:
    approval = device.api.approval(approval_id)
    if approval.get("id") != approval_id:
        raise ApiError(status=200, error="unexpected_response")
    status = approval.get("status")
    if status != "pending":
        fail(f"This sign-in request is no longer waiting (it is {status}).")
    return approval


def _report(status: str, approval: Mapping[str, Any], *, fraud: bool = False) -> None:
    name = _shown(approval).get("client_name")
    if status == "approved":
        say(f"Sign-in to {name} confirmed. The browser continues by itself.")
    elif fraud:
        say(f"Sign-in to {name} refused and reported as not made by you.")
    else:
        say(f"Sign-in to {name} refused.")


@click.command(context_settings=ID_ARGUMENT)
@click.argument("approval_id")
@click.option("--code", help="The number shown in the browser.")
@VERBOSE
@pass_state
def approve(state: State, approval_id: str, code: str | None, verbose: bool) -> None:
    """Confirm the sign-in request APPROVAL_ID with the number shown in the browser."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()
    approval = _pending(device, approval_id)
    show_approval(approval, verbose=verbose)
    code = code if code is not None else state.ask("Number shown in the browser")
    status = answer_approval(state, device, pin, approval, decision="approve", code=code.strip())
    _report(status, approval)
    if status == "approved":
        offer_backup(state, device, pin)


@click.command(context_settings=ID_ARGUMENT)
@click.argument("approval_id")
@click.option("--fraud", is_flag=True, help="Report the sign-in as not made by you.")
@VERBOSE
@pass_state
def deny(state: State, approval_id: str, fraud: bool, verbose: bool) -> None:
    """Refuse the sign-in request APPROVAL_ID (with --fraud: and report it)."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()
    approval = _pending(device, approval_id)
    show_approval(approval, verbose=verbose)
    status = answer_approval(state, device, pin, approval, decision="deny", code="", fraud=fraud)
    _report(status, approval, fraud=fraud)


@contextmanager
def _not_fatal() -> Iterator[None]:
    """Inside ``watch``: a refused answer is reported, the watch goes on; a
    revoked or unknown device ends it."""
    try:
        yield
    except ApiError as exc:
        if exc.error in ("device_revoked", "invalid_token"):
            raise
        say(describe_error(exc, APPROVAL_MESSAGES))


def _gone(device: Device, approval_id: str) -> str | None:
    """Why the request no longer needs an answer here, or None while it waits."""
    try:
        status = device.api.approval(approval_id).get("status")
    except ApiError as exc:
        if exc.error in ("device_revoked", "invalid_token"):
            raise  # this device is gone: the watch ends (the key store is wiped)
        return GONE["cancelled"] if exc.error == "approval_not_found" else None
    except NetworkError:
        return None  # asked again shortly; the answer will tell
    return None if status == "pending" else GONE.get(str(status), GONE["cancelled"])


@click.command()
@click.option("--once", is_flag=True, help="Exit after one sign-in request was answered.")
@click.option("--verbose", "-v", is_flag=True, help=VERBOSE_HELP)
@pass_state
def watch(state: State, once: bool, verbose: bool) -> None:
    """Wait for sign-in requests and answer each one (empty number = refuse).
    A request answered on another device meanwhile is no longer asked about."""
    state.messages = APPROVAL_MESSAGES
    device, pin = state.unlock()  # once, as a phone app stays unlocked while open
    state.feed = LineFeed()  # questions from now on can be given up while they wait
    api = device.api
    seen: set[str] = set()

    def handle(approval_id: str) -> bool:
        """Ask about one approval; True once it was answered."""
        if approval_id in seen:
            return False
        seen.add(approval_id)
        approval = api.approval(approval_id)
        if approval.get("status") != "pending" or approval.get("id") != approval_id:
            return False
        click.echo("", err=True)
        show_approval(approval, verbose=verbose)
        while True:
            code = state.ask_unless(
                "Number shown in the browser (empty: refuse)",
                gone=lambda: _gone(device, approval_id),
                every=STILL_WAITING_EVERY,
            )
            if code is None:
                return False  # answered elsewhere, expired or cancelled: said so
            decision = "approve" if code else "deny"
            try:
                # Re-read: another command may have moved the counter meanwhile.
                current = Device(KeyStore.unlock(state.store, pin))
                status = answer_approval(
                    state, current, pin, approval, decision=decision, code=code
                )
            except ApiError as exc:
                if exc.error != "wrong_code":
                    raise
                say(describe_error(exc, APPROVAL_MESSAGES))
                continue
            _report(status, approval)
            if status == "approved":
                offer_backup(state, current, pin)
            return True

    failures = 0
    say(f"Waiting for sign-in requests from {device.server} (Ctrl-C to stop) …")
    while True:
        try:
            for event in api.events():
                failures = 0
                if event.event == "open":
                    # Connected: whatever was already waiting, oldest first. Ids
                    # the stream announces again are skipped (``seen``).
                    for approval in reversed(api.approvals()):
                        with _not_fatal():
                            if handle(str(approval.get("id"))) and once:
                                return
                elif event.event == "approval":
                    try:
                        approval_id = str(event.json()["id"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    with _not_fatal():
                        if handle(approval_id) and once:
                            return
        except NetworkError as exc:
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            say(f"{exc}; reconnecting in {delay} s …")
            time.sleep(delay)
        except ApiError as exc:
            if exc.error in ("device_revoked", "invalid_token") or exc.status < 500:
                raise
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            say(f"{describe_error(exc, APPROVAL_MESSAGES)} Reconnecting in {delay} s …")
            time.sleep(delay)
