"""Restoration and device management with the CLI device ``idp-device``.

The CLI runs in this process (``click.testing.CliRunner``) against a live IdP
whose server runs in this process's threads; each CLI device has its own key
store and PIN. E-mail goes to a real SMTP server (aiosmtpd): a test reads the
codes from the mail it received, at the moment the CLI asks for them (``Lines``).
The journey: a phone enrolled with ``enrol`` activates restoration, a tablet
restores the ID with ``restore``, confirms a sign-in to FinanceCloud, the demo
relying party, and deletes the phone, which is then locked out, while the
sign-in it made before keeps working.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from click.testing import CliRunner, Result

from clients.device.cli import main
from clients.device.keystore import KeyStore

from .conftest import PASSWORD, LiveIdp, LiveRp
from .helpers import form_fields
from .test_demo_rp import pre
from .test_demo_rp import sign_in as sign_in_at_rp
from .test_device_cli import (
    CHEAP_KDF,
    match_code,
    mfa_client,
    new_user,
    sms_codes,
    to_waiting_page,
)
from .test_device_cli import wait_for_sms as sms_code
from .test_device_delete import binding_device, delete
from .test_restoration import (
    CODE1,
    CODE2_MAIL,
    CONFIRMATION_MAIL,
    EMAIL,
    mail_code,
    smtp_idp,
    verify_email,
)

PIN = "4711-phone"
RESTORE_FAILED = "The identity could not be restored"


class Lines(io.RawIOBase):
    """The CLI's stdin, one line per read. A callable is called when its line
    is read: a code that only exists once the CLI has asked the server for it."""

    def __init__(self, *lines: str | Callable[[], str]) -> None:
        self._lines = list(lines)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not len(buffer):
            return 0  # read(0): a probe, not a read
        if not self._pending:
            if not self._lines:
                return 0
            line = self._lines.pop(0)
            self._pending = ((line() if callable(line) else line) + "\n").encode()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


@dataclass
class CliDevice:
    """``idp-device`` with its own key store and PIN, run in this process."""

    store: Path
    pin: str = PIN
    _id: str | None = None

    def run(self, *args: str, input: Lines | str | None = None, **env: str | None) -> Result:
        environment: dict[str, str | None] = {
            "IDP_DEVICE_STORE": str(self.store),
            "IDP_DEVICE_PIN": self.pin,
            "IDP_DEVICE_SERVER": None,
            # Each save and unlock of a key store costs 0.3 s of CPU under the
            # default Argon2id parameters (checked in test_device_cli).
            "IDP_DEVICE_KDF": CHEAP_KDF,
            **env,
        }
        return CliRunner().invoke(main, list(args), input=input, env=environment)

    def ok(self, *args: str, input: Lines | str | None = None, **env: str | None) -> Result:
        done = self.run(*args, input=input, **env)
        assert done.exit_code == 0, (args, done.output, done.exception)
        return done

    def fails(self, *args: str, input: Lines | str | None = None, **env: str | None) -> Result:
        done = self.run(*args, input=input, **env)
        assert done.exit_code == 1, (args, done.output, done.exception)
        assert "Traceback" not in done.output and done.stdout == ""
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    @property
    def data(self) -> dict[str, Any]:
        return KeyStore.unlock(self.store, self.pin)

    @property
    def device_id(self) -> str:
        if self._id is None:  # the key store's PIN costs time (Argon2): once is enough
            self._id = str(self.data["device"]["id"])
        return self._id


@pytest.fixture
def idp(idp_factory: Callable[..., LiveIdp], smtp_server: Any) -> LiveIdp:
    """The IdP of this module sends e-mail to the test's SMTP server (the demo
    relying party's ``rp_factory`` uses it too)."""
    return smtp_idp(idp_factory, smtp_server)


@pytest.fixture
def phone(tmp_path: Path) -> CliDevice:
    return CliDevice(tmp_path / "phone" / "device.json")


@pytest.fixture
def tablet(tmp_path: Path) -> CliDevice:
    return CliDevice(tmp_path / "tablet" / "device.json", pin="2580-tablet")


def enrol(idp: LiveIdp, device: CliDevice, user: Any, name: str = "Erika's phone") -> None:
    """``idp-device enrol`` with password and the code from the SMS outbox."""
    sent = len(sms_codes(idp))
    device.ok(
        "enrol", "--server", idp.url, "--identifier", user.access_number, "--name", name,
        input=Lines(PASSWORD, lambda: sms_code(idp, sent + 1)),
    )  # fmt: skip


def mailed(smtp_server: Any, digits: int, *, wrong: bool = False) -> Callable[[], str]:
    """The next mail's code (or, ``wrong``, another one), read when the CLI asks for it."""

    def code() -> str:
        kind = CODE2_MAIL if digits == 8 else CONFIRMATION_MAIL
        found = int(mail_code(smtp_server.wait_for(EMAIL, subject=kind), digits))
        return f"{(found + 1 if wrong else found) % 10**digits:0{digits}d}"

    return code


def activate(device: CliDevice, smtp_server: Any, *, confirm: bool = True) -> str:
    """``restoration activate``; code 1 (the only thing on stdout)."""
    done = device.ok(
        "restoration", "activate", input=Lines(mailed(smtp_server, 6)) if confirm else ""
    )
    code1 = done.stdout.strip()
    assert CODE1.match(code1), done.output
    assert "shown only this once" in done.stderr and "Write it down" in done.stderr
    return code1


def restore(
    idp: LiveIdp, device: CliDevice, user: Any, code1: str, smtp_server: Any, *args: str
) -> Result:
    return device.run(
        "restore", "--server", idp.url, "--login-id", user.access_number, "--code1", code1,
        *args, input=Lines(mailed(smtp_server, 8)),
    )  # fmt: skip


def seed_confirmed_logins(idp: LiveIdp, user: Any, count: int) -> None:
    """``count`` logins confirmed on a device, as the audit log counts them."""
    from idp import audit
    from idp.extensions import commit

    with idp.app.app_context():
        for _ in range(count):
            audit.record("approval_approved", user_id=user.id)
        commit()


def approve_a_sign_in(idp: LiveIdp, device: CliDevice, user: Any, *answers: str) -> Result:
    """A sign-in that waits for the device, confirmed with ``approve``;
    ``answers`` are the further lines of stdin."""
    _browser, page, _req = to_waiting_page(idp, mfa_client(idp), user)
    (approval,) = device.json("approvals")["approvals"]
    return device.run("approve", approval["id"], "--code", match_code(page), input=Lines(*answers))


# --- the journey -------------------------------------------------------------------


def test_restore_on_a_second_cli_device_which_signs_in_and_removes_the_first(
    idp: LiveIdp,
    smtp_server: Any,
    rp_factory: Callable[..., LiveRp],
    phone: CliDevice,
    tablet: CliDevice,
) -> None:
    user = new_user(idp)  # an e-mail address, not confirmed yet
    enrol(idp, phone, user)

    # Restoration on the phone: the address is confirmed with a mailed code,
    # then code 1 is shown once.
    assert "not active" in phone.ok("restoration", "status").stdout
    code1 = activate(phone, smtp_server)
    status = phone.json("restoration", "status")
    assert status["active"] is True and status["email_confirmed"] is True
    assert code1 not in str(status)

    # The tablet restores the ID: login ID, code 1, code 2 from the mail, a new PIN.
    done = restore(idp, tablet, user, code1, smtp_server, "--name", "Erika's tablet")
    assert done.exit_code == 0, done.output
    assert "Restoration code 2 was sent by e-mail to e•••@example.org" in done.stderr
    assert "Identity restored" in done.stderr and "no longer valid" in done.stderr
    new_code1 = done.stdout.strip()
    assert CODE1.match(new_code1) and new_code1 != code1
    # The key store is the one enrol writes: every other command works on it.
    stored = tablet.data
    assert set(stored) == set(phone.data)
    assert stored["server"] == idp.url and stored["device"]["name"] == "Erika's tablet"
    assert stored["device"]["enrolled_via"] == "restoration"
    assert [d["this_device"] for d in tablet.json("devices")["devices"]] == [False, True]

    # The phone is told, with what to do if it was not the user.
    notices = phone.ok("notices").stdout
    assert f'A new device "Erika\'s tablet" (cli, {tablet.device_id}) was added' in notices
    assert f"idp-device delete {tablet.device_id}" in notices
    assert "Someone started restoring your ID" in notices

    # A sign-in to FinanceCloud, confirmed on the tablet.
    rp = rp_factory(require_mfa=True, first_party=True)
    browser = requests.Session()
    page = sign_in_at_rp(browser, rp, user)
    assert "/login/approval" in page.url, page.text[:500]
    (approval,) = tablet.json("approvals")["approvals"]
    approved = tablet.ok("approve", approval["id"], "--code", match_code(page), input="")
    assert "confirmed" in approved.stderr
    action = re.search(r'<form method="post" action="([^"]+)" id="continue-form"', page.text)
    assert action, page.text
    me = browser.post(
        urljoin(page.url, html.unescape(action.group(1))), data=form_fields(page.text), timeout=30
    )
    assert me.url == rp.url + "/me", me.text[:500]
    assert '"sub": "' + user.sub in pre(me, "userinfo")
    assert "mfa" in json.loads(pre(me, "id-token-claims"))["amr"]

    # The tablet deletes the phone ("lost it").
    phone_store, phone_id = phone.store.read_bytes(), phone.device_id
    deleted = tablet.ok("delete", phone_id, "--yes")
    assert "Erika's phone" in deleted.stderr and "was deleted" in deleted.stderr
    # The phone learns it at its next command and wipes its key store ...
    revoked = phone.fails("status")
    assert "removed from your account" in revoked.stderr and "wiped" in revoked.stderr
    assert not phone.store.exists()
    assert "enrol this device first" in phone.fails("approvals").stderr
    # ... and even with its old key store back it can no longer confirm a sign-in.
    phone.store.write_bytes(phone_store)
    _other, waiting, _req = to_waiting_page(idp, mfa_client(idp), user)
    (pending,) = tablet.json("approvals")["approvals"]
    refused = phone.fails("approve", pending["id"], "--code", match_code(waiting))
    assert "removed from your account" in refused.stderr and not phone.store.exists()

    # The sign-in confirmed before keeps working: the RP's page, with a fresh
    # userinfo call with its access token.
    again = browser.get(rp.url + "/me", timeout=30)
    assert again.status_code == 200 and '"sub": "' + user.sub in pre(again, "userinfo")
    held = rp.tokens(browser)
    assert held is not None
    userinfo = requests.get(
        f"{idp.url}/userinfo",
        headers={"Authorization": f"Bearer {held.access_token}"},
        timeout=30,
    )
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == user.sub
    (event,) = idp.events("device_deleted")
    assert event.detail["device"] == phone_id and event.actor == f"device:{tablet.device_id}"


# --- restore: errors, and where the server comes from --------------------------------


def test_restore_failures_are_one_message_and_leave_no_key_store(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, phone: CliDevice, tablet: CliDevice
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_failures_per_login=2)
    user = new_user(idp)
    enrol(idp, phone, user)
    verify_email(idp, user)
    code1 = activate(phone, smtp_server, confirm=False)  # confirmed: no mailed code

    wrong_code1 = tablet.fails(
        "restore", "--server", idp.url, "--login-id", user.access_number,
        "--code1", "AAAA-BBBB-CCCC-DDDD",
    )  # fmt: skip
    unknown_id = tablet.fails(
        "restore", "--server", idp.url, "--login-id", "9999999999", "--code1", code1
    )
    # A wrong code 2: the same message.
    wrong_code2 = tablet.fails(
        "restore", "--server", idp.url, "--login-id", user.access_number, "--code1", code1,
        input=Lines(mailed(smtp_server, 8, wrong=True)),
    )  # fmt: skip
    messages = {r.stderr.splitlines()[-1] for r in (wrong_code1, unknown_id, wrong_code2)}
    assert len(messages) == 1 and RESTORE_FAILED in messages.pop()
    assert not tablet.store.exists()

    # The server URL: --server, else IDP_DEVICE_SERVER, else asked (stdin).
    dead = "http://localhost:9"
    from_env = tablet.fails("restore", "--login-id", "x", "--code1", "y", IDP_DEVICE_SERVER=dead)
    assert "cannot reach http://localhost:9" in from_env.stderr
    asked = tablet.fails("restore", "--login-id", "x", "--code1", "y", input=dead + "\n")
    assert "Server URL:" in asked.stderr and "cannot reach http://localhost:9" in asked.stderr

    # Two failures for this ID (a wrong code 1, a wrong code 2): locked out for a
    # while, and told how long. (--server comes before IDP_DEVICE_SERVER.)
    locked = tablet.fails(
        "restore", "--server", idp.url, "--login-id", user.access_number, "--code1", code1,
        IDP_DEVICE_SERVER=dead,
    )  # fmt: skip
    assert "Too many failed restoration attempts" in locked.stderr
    assert re.search(r"Try again in \d+ seconds\.", locked.stderr), locked.stderr
    assert not tablet.store.exists()


def test_restore_with_a_replaced_code1_fails_and_the_old_one_stays_void(
    idp: LiveIdp, smtp_server: Any, phone: CliDevice, tablet: CliDevice, tmp_path: Path
) -> None:
    user = new_user(idp, username="erika")
    enrol(idp, phone, user)
    verify_email(idp, user)
    old = activate(phone, smtp_server, confirm=False)
    regenerated = phone.ok("restoration", "regenerate")
    new = regenerated.stdout.strip()
    assert CODE1.match(new) and new != old and "no longer valid" in regenerated.stderr
    assert "already active" in phone.fails("restoration", "activate").stderr

    refused = tablet.fails(
        "restore", "--server", idp.url, "--login-id", "erika", "--code1", old
    )  # fmt: skip
    assert RESTORE_FAILED in refused.stderr
    # The user name works as login ID, and code 1 as typed from paper.
    done = restore(idp, tablet, user, new.lower().replace("-", " "), smtp_server)
    assert done.exit_code == 0, done.output
    assert tablet.ok("status").stdout
    # Restoring rotated code 1: the one used is void now too.
    laptop = CliDevice(tmp_path / "laptop" / "device.json")
    assert (
        RESTORE_FAILED
        in laptop.fails(
            "restore", "--server", idp.url, "--login-id", "erika", "--code1", new
        ).stderr
    )
    assert not laptop.store.exists()


# --- restoration settings on an enrolled device -------------------------------------


def test_activation_asks_for_an_address_when_the_account_has_none(
    idp: LiveIdp, smtp_server: Any, phone: CliDevice
) -> None:
    user = new_user(idp, email=None)
    enrol(idp, phone, user)
    shown = phone.ok("restoration", "status").stdout
    assert re.search(r"restoration:\s+not active", shown) and re.search(r"e-mail:\s+none", shown)

    # Asked for the address, then for the code mailed to it; a wrong code ends
    # a scripted run (exit 1) ...
    wrong = phone.fails(
        "restoration", "activate",
        input=Lines(EMAIL, mailed(smtp_server, 6, wrong=True)),
    )  # fmt: skip
    assert "no e-mail address" in wrong.stderr and "E-mail address:" in wrong.stderr
    assert "A confirmation code was sent by e-mail to e•••@example.org" in wrong.stderr
    assert "confirmation code is not correct" in wrong.stderr
    assert phone.json("restoration", "status")["active"] is False
    # ... and a new run with --email and the right code activates it.
    done = phone.ok(
        "restoration", "activate", "--email", EMAIL, input=Lines(mailed(smtp_server, 6))
    )
    assert CODE1.match(done.stdout.strip()) and "E-mail address:" not in done.stderr
    status = phone.json("restoration", "status")
    assert status["active"] and status["email_masked"] == "e•••@example.org"
    shown = phone.ok("restoration", "status").stdout
    assert "active since" in shown and "e•••@example.org (confirmed)" in shown
    assert idp.events("restoration_email_confirmed")


# --- "Back up your identity" at the sixth login --------------------------------------


def test_back_up_your_identity_show_activates_restoration(
    idp: LiveIdp, smtp_server: Any, phone: CliDevice
) -> None:
    user = new_user(idp)
    enrol(idp, phone, user)
    verify_email(idp, user)
    seed_confirmed_logins(idp, user, 4)
    # The fifth login: not asked yet.
    fifth = approve_a_sign_in(idp, phone, user)
    assert fifth.exit_code == 0 and "Back up" not in fifth.output, (fifth.output, fifth.exception)

    # The sixth, from a script that has no answer: not asked, nothing dismissed.
    sixth = approve_a_sign_in(idp, phone, user)
    assert sixth.exit_code == 0, sixth.output
    assert "idp-device restoration activate" in sixth.stderr and sixth.stdout == ""
    assert phone.json("restoration", "status")["prompt_backup"] is True

    # SHOW: restoration is activated and code 1 shown once.
    shown = approve_a_sign_in(idp, phone, user, "show")
    assert shown.exit_code == 0, shown.output
    assert "Back up your identity now? [show/not now]:" in shown.stderr
    assert CODE1.match(shown.stdout.strip()) and "Write it down" in shown.stderr
    status = phone.json("restoration", "status")
    assert status["active"] is True and status["prompt_backup"] is False
    assert not idp.events("restoration_prompt_dismissed")


def test_back_up_your_identity_not_now_is_never_asked_again(idp: LiveIdp, phone: CliDevice) -> None:
    user = new_user(idp)
    enrol(idp, phone, user)
    seed_confirmed_logins(idp, user, 5)
    # The sixth login, confirmed with watch: the number, then NOT NOW.
    _browser, page, _req = to_waiting_page(idp, mfa_client(idp), user)
    watched = phone.run("watch", "--once", input=Lines(match_code(page), "not now"))
    assert watched.exit_code == 0, watched.output
    assert "confirmed" in watched.stderr and "you will not be asked again" in watched.stderr
    assert len(idp.events("restoration_prompt_dismissed")) == 1
    status = phone.json("restoration", "status")
    assert status["prompt_backup"] is False and status["active"] is False

    later = approve_a_sign_in(idp, phone, user, "show")
    assert later.exit_code == 0 and "Back up" not in later.output


# --- the veto window, notices, refuse, rename ----------------------------------------


def test_a_pending_restored_device_is_shown_and_refused(
    idp_factory: Callable[..., LiveIdp], smtp_server: Any, phone: CliDevice, tablet: CliDevice
) -> None:
    idp = smtp_idp(idp_factory, smtp_server, restore_veto_window=600)
    user = new_user(idp)
    enrol(idp, phone, user)
    verify_email(idp, user)
    code1 = activate(phone, smtp_server, confirm=False)

    done = restore(idp, tablet, user, code1, smtp_server, "--name", "Not mine")
    assert done.exit_code == 0, done.output
    assert "This device can be used from" in done.stderr and "may refuse it" in done.stderr
    assert CODE1.match(done.stdout.strip())
    tablet_id = tablet.device_id
    # Pending: the tablet can do nothing yet, and keeps its key store.
    waiting = tablet.fails("approvals")
    assert "waiting period" in waiting.stderr
    assert re.search(r"Try again in \d+ seconds\.", waiting.stderr)
    assert tablet.store.exists()

    # The phone sees it as pending: in its devices, its notices, the restoration status.
    listed = {d["id"]: d for d in phone.json("devices")["devices"]}
    assert listed[tablet_id]["pending_until"] and listed[phone.device_id]["pending_until"] is None
    table = phone.ok("devices").stdout
    assert re.search(r"Not mine .* pending until ", table) and "active" in table
    notices = phone.ok("notices").stdout
    assert f"idp-device refuse {tablet_id}" in notices and "pending until" in notices
    assert f"idp-device refuse {tablet_id}" in phone.ok("restoration", "status").stdout
    # The phone itself is not pending: it cannot be refused.
    not_pending = phone.fails("refuse", phone.device_id, "--yes")
    assert "can no longer be refused" in not_pending.stderr

    # Anything but yes keeps it; yes refuses it.
    kept = phone.fails("refuse", tablet_id, input="no\n")
    assert "Nothing was refused" in kept.stderr
    refused = phone.ok("refuse", tablet_id, input="yes\n")
    assert "'Not mine' was refused" in refused.stderr
    assert "code 1 it was shown is void" in refused.stderr
    assert phone.json("restoration", "status")["active"] is False
    assert [e.detail["device"] for e in idp.events("restore_vetoed")] == [tablet_id]
    # The refused device learns it at its next command.
    gone = tablet.fails("status")
    assert "removed from your account" in gone.stderr and not tablet.store.exists()
    assert "no such device" in phone.fails("refuse", tablet_id, "--yes").stderr
    assert "It is no longer on your account" in phone.ok("notices").stdout


def test_notices_of_devices_added_and_removed(idp: LiveIdp, phone: CliDevice) -> None:
    user = new_user(idp)
    enrol(idp, phone, user)
    tablet = binding_device(idp, user, kind="ipad", device_name="Tablet")
    laptop = binding_device(idp, user, kind="browser", device_name="Laptop")
    phone.ok("delete", laptop.device_id or "", "--yes")

    notices = phone.ok("notices").stdout
    assert (
        f"A new device 'Tablet' (ipad, {tablet.device_id}) was added with a binding code from "
        "the account page from 127.0.0.1." in notices
    )
    assert f"Not you? Remove it: 'idp-device delete {tablet.device_id}'." in notices
    assert (
        "The device 'Laptop' (browser) was removed from your account by this device, from "
        "127.0.0.1." in notices
    )
    assert "Not you? Then someone else can manage your devices" in notices

    # The tablet un-enrols itself: the phone reads that, and that the tablet is gone.
    assert delete(tablet, tablet.device_id or "").status_code == 200
    notices = phone.ok("notices").stdout
    assert (
        "The device 'Tablet' (ipad) was removed from your account by the device itself" in notices
    )
    assert notices.count("It is no longer on your account.") == 2
    assert [n["type"] for n in phone.json("notices")["notices"]] == [
        "device_removed",
        "device_removed",
        "device_added",
        "device_added",
    ]


def test_rename_this_and_another_device(
    idp: LiveIdp, smtp_server: Any, phone: CliDevice, tablet: CliDevice
) -> None:
    user = new_user(idp)
    enrol(idp, phone, user)
    verify_email(idp, user)
    done = restore(idp, tablet, user, activate(phone, smtp_server, confirm=False), smtp_server)
    assert done.exit_code == 0, done.output

    renamed = phone.ok("rename", phone.device_id, "  Work   phone ")
    assert "is now called 'Work phone'" in renamed.stderr
    assert phone.data["device"]["name"] == "Work phone"  # the key store follows
    phone.ok("rename", tablet.device_id, "Kitchen tablet")
    names = {d["id"]: d["name"] for d in tablet.json("devices")["devices"]}
    assert names == {phone.device_id: "Work phone", tablet.device_id: "Kitchen tablet"}

    too_long = phone.fails("rename", tablet.device_id, "x" * 101)
    assert "1 to 100 characters" in too_long.stderr
    assert "no such device" in phone.fails("rename", "no-such-device", "Name").stderr
    assert len(idp.events("device_renamed")) == 2
