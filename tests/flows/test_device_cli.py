"""The CLI device ``idp-device`` against a live IdP.

Single commands run in this process (click's runner; the live IdP serves from
this process's threads), which spares a Python start and the imports per
command; ``watch`` and the interactive enrolment run as real processes, reading
stdin and the event stream as they arrive.

It plays the phone app: "register key" with access number and password, the
confirmation code from the SMS outbox, "complete key registration"; then the
"Freigabe" tab (``approvals``), ``approve`` / ``deny`` with a WebAuthn assertion
over the signed decision, and ``watch`` on the event stream. The browser is
the protocol-level Browser; ID tokens are checked against the JWKS.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import click
import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select

from clients.device.api import parse_events
from clients.device.cli import main
from clients.device.keystore import KeyStore

from ..support.waiting import wait_until
from .conftest import PASSWORD
from .helpers import Browser, RelyingParty, form_fields, query

ROOT = Path(__file__).resolve().parents[2]
PIN = "4711-pin"
CHEAP_KDF = "cheapest"
ACR_MFA = "urn:freigabe:acr:mfa"
TIMEOUT = 120


# --- running the CLI -----------------------------------------------------------------


@dataclass
class Cli:
    """``idp-device`` with its own key store and PIN: ``run`` in this process,
    ``start`` as a real process (``python -m clients.device``)."""

    store: Path
    pin: str = PIN
    # The key store's Argon2id parameters (``idp-device --kdf``): the cheapest,
    # unless a test checks the default (each save and unlock costs 0.3 s of CPU).
    kdf: str | None = CHEAP_KDF

    def _ours(self) -> dict[str, str]:
        ours = {"IDP_DEVICE_STORE": str(self.store), "IDP_DEVICE_PIN": self.pin}
        if self.kdf is not None:
            ours["IDP_DEVICE_KDF"] = self.kdf
        return ours

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({**self._ours(), **extra})
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "clients.device", *args]

    def run(self, *args: str, input: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        """One command, in this process; its outcome as a finished process's."""
        environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("IDP_")}
        environment.update(self._ours())
        environment.update(env)
        result = CliRunner().invoke(main, list(args), input=input, env=environment)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a crash, not the clear error the CLI promises
        return subprocess.CompletedProcess(
            ["idp-device", *args], result.exit_code, result.stdout, result.stderr
        )

    def ok(self, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        done = self.run(*args, input=input)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)

    def start(self, *args: str) -> Process:
        popen = subprocess.Popen(
            self.argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=ROOT,
        )
        return Process(popen)


@dataclass
class Process:
    """A running CLI whose stderr is collected as it comes."""

    popen: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, args=(self.popen.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                self.stderr.append(line)
                self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: text in "".join(self.stderr), timeout)
        assert found, (text, "".join(self.stderr))

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def finish(self) -> tuple[int, str, str]:
        """Close stdin, wait for the exit; (status, stdout, stderr)."""
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.close()
        out = self.popen.stdout.read()
        code = self.popen.wait(timeout=TIMEOUT)
        self.kill()
        return code, out, "".join(self.stderr)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        for stream in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(store=tmp_path / "device" / "device.json")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.kill()


# --- the IdP side ----------------------------------------------------------------------


def sms_codes(idp: Any) -> list[str]:
    """Confirmation codes in the SMS outbox (one JSON line per message)."""
    log = Path(idp.app.instance_path) / "outbox" / "sms.log"
    if not log.exists():
        return []
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return [m.group(1) for line in lines if (m := re.search(r"\b(\d{6})\b", line["text"]))]


def wait_for_sms(idp: Any, count: int, timeout: float = 60) -> str:
    codes = wait_until(
        lambda: (found := sms_codes(idp)) and len(found) >= count and found,
        timeout=timeout,
        what="a confirmation code",
    )
    return codes[-1]


def audit_count(idp: Any) -> int:
    from idp.audit import AuditEvent
    from idp.extensions import db

    with idp.app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


def count_device_requests(idp: Any) -> list[str]:
    """Record every device API request the IdP receives from now on."""
    seen: list[str] = []
    inner: Callable[..., Iterable[bytes]] = idp.app.wsgi_app

    def counting(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/device/"):
            seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return inner(environ, start_response)

    idp.app.wsgi_app = counting
    return seen


def mfa_client(idp: Any) -> RelyingParty:
    client_id, secret = idp.add_client(require_mfa=True, first_party=True, name="FinanceCloud")
    return RelyingParty(idp.url, client_id, secret)


def new_user(idp: Any, **fields: Any) -> Any:
    fields.setdefault("phone_number", "+49 151 1234567")
    fields.setdefault("email", "erika@example.org")
    return idp.add_user(**fields)


def enrol(idp: Any, cli: Cli, user: Any, *, name: str = "Erika's laptop") -> str:
    """Path A in two steps, as a script does it; the enrolment id."""
    sent = len(sms_codes(idp))
    started = cli.ok(
        "enrol",
        "--server",
        idp.url,
        "--identifier",
        user.access_number,
        "--name",
        name,
        "--no-wait",
        input=PASSWORD + "\n",
    )
    enrolment_id = started.stdout.strip()
    assert enrolment_id and "\n" not in enrolment_id
    assert "sent by SMS to +49" in started.stderr
    code = wait_for_sms(idp, sent + 1)
    cli.ok("enrol-complete", "--code", code)
    return enrolment_id


def to_waiting_page(
    idp: Any, rp: RelyingParty, user: Any, *, user_agent: str | None = None
) -> tuple[Browser, requests.Response, dict[str, str]]:
    browser = Browser(idp.url)
    if user_agent:
        browser.session.headers["User-Agent"] = user_agent
    url, req = rp.authorize_url()
    page = browser.sign_in(browser.go(url), user.access_number, PASSWORD)
    assert page.status_code == 200, (page.status_code, page.text[:500])
    assert browser.last is not None and "/login/approval?tx=" in browser.last.url
    return browser, page, req


def match_code(page: requests.Response) -> str:
    found = re.search(r'id="match-code"[^>]*>(\d+)<', page.text)
    assert found, page.text
    return found.group(1)


def proceed(browser: Browser, page: requests.Response) -> requests.Response:
    """The waiting page's "continue" form (what its script submits)."""
    action = re.search(r'<form method="post" action="([^"]+)" id="continue-form"', page.text)
    assert action, page.text
    return browser.go(
        browser.issuer + action.group(1).replace("&amp;", "&"), "POST", data=form_fields(page.text)
    )


def signed_in(
    browser: Browser, page: requests.Response, rp: RelyingParty, req: dict[str, str]
) -> dict[str, Any]:
    """Continue after the approval, redeem the code, validate the ID token."""
    done = proceed(browser, page)
    assert done.status_code == 302, done.text[:500]
    assert done.headers["Location"].startswith(rp.redirect_uri + "?")
    params = query(done.headers["Location"])
    tokens = rp.redeem(params["code"], req["verifier"])
    assert tokens.status_code == 200, tokens.text
    return rp.validate_id_token(tokens.json()["id_token"], req["nonce"])


# --- journeys ------------------------------------------------------------------------


def test_enrol_with_password_and_code_then_approve_a_sign_in(idp: Any, cli: Cli) -> None:
    cli = replace(cli, kdf=None)  # the default parameters, as a user gets them
    user = new_user(idp)
    enrolment_id = enrol(idp, cli, user)
    # Everything about the device is encrypted under the PIN, the file owner's only,
    # with a key from RFC 9106's second recommended Argon2id parameters.
    assert cli.store.stat().st_mode & 0o777 == 0o600
    stored = cli.store.read_text()
    kdf = json.loads(stored)["kdf"]
    assert (kdf["name"], kdf["time_cost"], kdf["memory_cost"], kdf["parallelism"]) == (
        "argon2id",
        3,
        65536,
        4,
    )
    assert idp.url not in stored and user.access_number not in stored
    assert KeyStore.unlock(cli.store, PIN)["server"] == idp.url
    assert not Path(f"{cli.store}.pending").exists()
    assert idp.events("device_enrolled")
    assert enrolment_id not in stored

    rp = mfa_client(idp)
    browser, page, req = to_waiting_page(idp, rp, user)
    code = match_code(page)

    pending = cli.json("approvals")["approvals"]
    assert len(pending) == 1
    approval = pending[0]
    assert approval["status"] == "pending"
    assert approval["client_name"] == "FinanceCloud" and approval["ip"] == "127.0.0.1"
    assert approval["context"]["approval"] == approval["id"]
    listed = cli.ok("approvals").stdout
    assert approval["id"] in listed and "FinanceCloud" in listed and "127.0.0.1" in listed

    sign_count = KeyStore.unlock(cli.store, PIN)["credential"]["sign_count"]
    approved = cli.ok("approve", approval["id"], "--code", code)
    assert "confirmed" in approved.stderr
    # The counter moved and was saved with the key.
    assert KeyStore.unlock(cli.store, PIN)["credential"]["sign_count"] == sign_count + 1
    assert cli.json("approvals") == {"approvals": []}

    claims = signed_in(browser, page, rp, req)
    assert "mfa" in claims["amr"] and "swk" in claims["amr"] and "pwd" in claims["amr"]
    assert claims["acr"] == ACR_MFA
    assert idp.events("approval_approved") and idp.events("login_mfa")


def test_a_six_digit_number_is_typed_as_shown(idp_factory: Any, cli: Cli) -> None:
    idp = idp_factory(approval_code_digits=6)
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)
    browser, page, req = to_waiting_page(idp, rp, user)
    code = match_code(page)
    assert len(code) == 6
    (approval,) = cli.json("approvals")["approvals"]

    wrong = cli.run("approve", approval["id"], "--code", f"{(int(code) + 1) % 10**6:06d}")
    assert wrong.returncode != 0 and "does not match" in wrong.stderr
    assert len(idp.events("approval_wrong_code")) == 1
    assert "confirmed" in cli.ok("approve", approval["id"], "--code", code).stderr
    assert "mfa" in signed_in(browser, page, rp, req)["amr"]


def test_enrol_in_one_go_with_the_code_typed_on_stdin(
    idp: Any, cli: Cli, processes: list[Process]
) -> None:
    user = new_user(idp, phone_number="+49 170 9876543")
    process = cli.start("enrol", "--server", idp.url, "--identifier", user.email)
    processes.append(process)
    process.send(PASSWORD)
    process.wait_for("sent by SMS to +49 ••• 43")
    process.send(wait_for_sms(idp, 1))
    code, _out, err = process.finish()
    assert code == 0, err
    assert "Key registered" in err

    status = cli.json("status")
    assert status["server"] == idp.url
    assert status["user"]["access_number"] == user.access_number
    assert status["device"]["kind"] == "cli" and status["device"]["this_device"] is True
    assert status["device"]["enrolled_via"] == "password_sms"


def test_a_wrong_confirmation_code_is_refused_and_may_be_retried(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    cli.ok("enrol", "--server", idp.url, "--identifier", user.access_number, "--no-wait",
           input=PASSWORD + "\n")  # fmt: skip
    code = wait_for_sms(idp, 1)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    refused = cli.run("enrol-complete", "--code", wrong)
    assert refused.returncode == 1
    assert "confirmation code is not correct" in refused.stderr
    assert not cli.store.exists()
    cli.ok("enrol-complete", "--code", code)
    assert cli.store.exists()


def test_deny_and_report_fraud_pauses_further_sign_ins(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)
    browser, _page, _req = to_waiting_page(idp, rp, user)
    [approval] = cli.json("approvals")["approvals"]

    denied = cli.ok("deny", approval["id"], "--fraud")
    assert "reported as not made by you" in denied.stderr
    assert browser.last is not None
    assert 'id="denied"' in browser.go(browser.last.url).text
    assert idp.events("approval_denied") and idp.events("approval_fraud_reported")

    # The next attempt gets no push: "paused".
    other = Browser(idp.url)
    blocked = other.sign_in(other.go(rp.authorize_url()[0]), user.access_number, PASSWORD)
    assert blocked.status_code == 429
    assert 'id="approval-error"' in blocked.text and "paused" in blocked.text
    assert cli.json("approvals") == {"approvals": []}


def test_a_wrong_pin_fails_locally_and_never_reaches_the_server(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)
    _browser, page, _req = to_waiting_page(idp, rp, user)
    [approval] = cli.json("approvals")["approvals"]
    before = audit_count(idp)
    stored = cli.store.read_bytes()
    requests_seen = count_device_requests(idp)

    wrong = Cli(store=cli.store, pin="0000-not-it")
    for args in (
        ("approve", approval["id"], "--code", match_code(page)),
        ("deny", approval["id"], "--fraud"),
        ("approvals", "--json"),
        ("status",),
    ):
        done = wrong.run(*args)
        assert done.returncode == 1, (args, done.stderr)
        assert "Wrong PIN" in done.stderr and "nothing was sent" in done.stderr
        assert done.stdout == ""

    # Also when the PIN comes on stdin.
    piped = Cli(store=cli.store, pin="")
    done = piped.run("--pin-stdin", "status", input="0000-not-it\n")
    assert done.returncode == 1 and "Wrong PIN" in done.stderr

    assert requests_seen == []
    assert audit_count(idp) == before
    assert cli.store.read_bytes() == stored  # untouched, still opens with the PIN
    assert cli.json("approvals")["approvals"][0]["status"] == "pending"


def test_watch_once_answers_with_the_number_typed_on_stdin(
    idp: Any, cli: Cli, processes: list[Process]
) -> None:
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)

    watcher = cli.start("watch", "--once")
    processes.append(watcher)
    watcher.wait_for("Waiting for sign-in requests")
    browser, page, req = to_waiting_page(idp, rp, user)
    # Told by the event stream, the watcher shows the request and asks.
    watcher.wait_for("Sign-in to FinanceCloud from 127.0.0.1")
    watcher.wait_for("Number shown in the browser (empty: refuse):")
    watcher.send(match_code(page))
    code, _out, err = watcher.finish()
    assert code == 0, err
    assert "confirmed" in err

    claims = signed_in(browser, page, rp, req)
    assert claims["acr"] == ACR_MFA and "swk" in claims["amr"]


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_watch_stops_asking_when_another_device_answered(
    idp: Any, cli: Cli, processes: list[Process]
) -> None:
    """Issue 14, 6b: a request confirmed on another device is no longer asked about."""
    from .devices import SoftDevice

    user = new_user(idp)
    enrol(idp, cli, user)
    phone = SoftDevice(idp.url)
    phone.enrol(user.access_number, PASSWORD, idp.app.instance_path)
    rp = mfa_client(idp)

    watcher = cli.start("watch", "--once")
    processes.append(watcher)
    watcher.wait_for("Waiting for sign-in requests")
    browser, page, req = to_waiting_page(idp, rp, user)
    watcher.wait_for("Number shown in the browser (empty: refuse):")
    # The phone confirms it while the watcher waits for the number.
    [approval] = phone.approvals()
    assert phone.answer(approval["id"], "approve", match_code(page)).status_code == 200
    watcher.wait_for("confirmed on another device; no number needed", timeout=30)
    signed_in(browser, page, rp, req)

    # The watch goes on: the next request is asked about and answered here.
    _browser, second, _req = to_waiting_page(idp, rp, user)
    wait_until(lambda: "".join(watcher.stderr).count("Number shown in the browser") == 2)
    watcher.send(match_code(second))
    code, _out, err = watcher.finish()
    assert code == 0, err
    assert "Sign-in to FinanceCloud confirmed" in err
    assert len(idp.events("approval_approved")) == 2


CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_the_cli_shows_the_browser_in_words_and_the_raw_string_on_demand(
    idp: Any, cli: Cli
) -> None:
    """Issue 14, 5: the server's words ("Chrome on Linux"), the raw string with
    --verbose or --json."""
    user = new_user(idp)
    enrol(idp, cli, user)
    _browser, page, _req = to_waiting_page(idp, mfa_client(idp), user, user_agent=CHROME_LINUX)
    [approval] = cli.json("approvals")["approvals"]
    assert approval["browser"] == "Chrome on Linux"
    assert approval["user_agent"] == CHROME_LINUX and approval["location"] is None
    listed = cli.ok("approvals").stdout
    assert "BROWSER" in listed and "Chrome on Linux" in listed and "Mozilla" not in listed

    quiet = cli.run("deny", approval["id"], input="")
    assert "browser: Chrome on Linux" in quiet.stderr and "Mozilla" not in quiet.stderr
    assert "refused" in quiet.stderr
    # --verbose: the string as the browser sent it (shown before the answer is sent).
    _browser, page, _req = to_waiting_page(idp, mfa_client(idp), user, user_agent=CHROME_LINUX)
    [second] = cli.json("approvals")["approvals"]
    loud = cli.run("approve", second["id"], "--verbose", "--code", match_code(page))
    assert loud.returncode == 0, loud.stderr
    assert "browser: Chrome on Linux" in loud.stderr
    assert f"user agent: {CHROME_LINUX}" in loud.stderr


def test_watch_finds_a_waiting_request_and_an_empty_number_refuses_it(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)
    browser, _page, _req = to_waiting_page(idp, rp, user)

    # The request exists before the watcher starts: it is found on connecting.
    done = cli.run("--pin-stdin", "watch", "--once", input=f"{PIN}\n\n", IDP_DEVICE_PIN="")
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stderr
    assert browser.last is not None
    assert 'id="denied"' in browser.go(browser.last.url).text
    assert idp.events("approval_denied") and not idp.events("approval_fraud_reported")


def test_a_wrong_number_is_refused_with_a_clear_message(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    enrol(idp, cli, user)
    rp = mfa_client(idp)
    _browser, page, _req = to_waiting_page(idp, rp, user)
    [approval] = cli.json("approvals")["approvals"]
    wrong = f"{(int(match_code(page)) + 1) % 100:02d}"

    done = cli.run("approve", approval["id"], "--code", wrong)
    assert done.returncode == 1
    assert "does not match the one shown in the browser" in done.stderr
    assert cli.json("approvals")["approvals"][0]["id"] == approval["id"]

    unknown = cli.run("approve", "no-such-approval", "--code", "42")
    assert unknown.returncode == 1 and "no such sign-in request" in unknown.stderr


def test_devices_and_status_as_json_with_a_second_device_from_a_binding_code(
    idp: Any, cli: Cli, tmp_path: Path
) -> None:
    from idp.accounts.models import User
    from idp.devices.enrolment import new_binding_code
    from idp.extensions import db

    user = new_user(idp)
    enrol(idp, cli, user, name="Erika's laptop")
    with idp.app.app_context():
        account = db.session.get(User, user.id)
        assert account is not None
        binding_code = new_binding_code(account)
    tablet = Cli(store=tmp_path / "tablet" / "device.json", pin="2580-tablet")
    link = f"freigabe://enrol?server={idp.url}&code={binding_code}"
    tablet.ok("enrol", "--link", link, "--name", "Erika's tablet", "--kind", "ipad")

    status = cli.json("status")
    assert set(status) == {"server", "store", "device", "user"}
    assert status["store"] == str(cli.store)
    assert status["device"]["name"] == "Erika's laptop"
    assert status["user"] == {
        "sub": user.sub,
        "access_number": user.access_number,
        "email": "erika@example.org",
    }

    listed = cli.json("devices")["devices"]
    assert [(d["name"], d["kind"], d["enrolled_via"], d["this_device"]) for d in listed] == [
        ("Erika's laptop", "cli", "password_sms", True),
        ("Erika's tablet", "ipad", "binding_code", False),
    ]
    for device in listed:
        assert set(device) >= {"id", "name", "kind", "created_at", "last_used_at"}
    assert [d["this_device"] for d in tablet.json("devices")["devices"]] == [False, True]
    table = cli.ok("devices").stdout
    assert "* Erika's laptop" in table and "Erika's tablet" in table
    # The table has the words the app shows, not the API's codes.
    assert "Command line" in table and "iPad" in table
    assert "password and text message" in table and "a code from the account page" in table
    assert "password_sms" not in table and "binding_code" not in table

    # A binding code is single use.
    again = Cli(store=tmp_path / "again" / "device.json")
    refused = again.run("enrol", "--server", idp.url, "--binding-code", binding_code)
    assert refused.returncode == 1 and "binding code is not valid" in refused.stderr
    assert not again.store.exists()


# What the CLI does with the link; binding codes on both backends: test_approvals.py.
def test_enrol_with_the_link_of_the_add_a_device_page(idp: Any, cli: Cli, tmp_path: Path) -> None:
    user = new_user(idp)
    enrol(idp, cli, user, name="Erika's laptop")
    # A sign-in confirmed on the first device opens "Add a device".
    rp = mfa_client(idp)
    browser, page, _ = to_waiting_page(idp, rp, user)
    (approval,) = cli.json("approvals")["approvals"]
    cli.ok("approve", approval["id"], "--code", match_code(page))
    proceed(browser, page)
    account = browser.go(f"{idp.url}/account")
    shown = browser.submit(account, "/account/devices/binding-code")
    found = re.search(r'<a href="([^"]+)" id="binding-link">', shown.text)
    assert found, shown.text
    link = html.unescape(found.group(1))
    assert link.startswith(f"{idp.url}/app/#code=")

    # The link the QR code holds (the browser device app's) enrols the CLI too.
    tablet = Cli(store=tmp_path / "tablet" / "device.json", pin="2580-tablet")
    tablet.ok("enrol", "--link", link, "--name", "Erika's tablet", "--kind", "ipad")
    assert KeyStore.unlock(tablet.store, "2580-tablet")["server"] == idp.url
    listed = tablet.json("devices")["devices"]
    assert [(d["name"], d["enrolled_via"], d["this_device"]) for d in listed] == [
        ("Erika's laptop", "password_sms", False),
        ("Erika's tablet", "binding_code", True),
    ]


def test_the_enrolment_link_forms() -> None:
    from clients.device.cli.enrol import parse_link

    code = "K7QH-2MZD-X9TA"
    # The account page's link: the browser device app below the issuer (which
    # may have a path), the code in the fragment or the query.
    assert parse_link(f"https://id.example.com/app/#code={code}") == (
        "https://id.example.com",
        code,
    )
    assert parse_link(f" https://example.com/idp/app/?code={code}\n") == (
        "https://example.com/idp",
        code,
    )
    # The earlier custom scheme still works.
    old = f"freigabe://enrol?server=https%3A%2F%2Fid.example.com&code={code}"
    assert parse_link(old) == ("https://id.example.com", code)
    for wrong in (
        "https://id.example.com/app/",
        f"https://id.example.com/other/#code={code}",
        f"ftp://id.example.com/app/#code={code}",
        f"freigabe://other?server=https://id.example.com&code={code}",
        f"/app/#code={code}",
    ):
        with pytest.raises(click.BadParameter):
            parse_link(wrong)


def test_a_removed_device_wipes_its_key_store(idp: Any, cli: Cli) -> None:
    from idp.devices.models import Device
    from idp.extensions import db, utcnow

    user = new_user(idp)
    enrol(idp, cli, user)
    device_id = KeyStore.unlock(cli.store, PIN)["device"]["id"]
    with idp.app.app_context():
        device = db.session.get(Device, device_id)
        assert device is not None
        device.revoked_at = utcnow()
        db.session.commit()

    done = cli.run("status")
    assert done.returncode == 1
    assert "removed from your account" in done.stderr and "wiped" in done.stderr
    assert not cli.store.exists()
    again = cli.run("status")
    assert again.returncode == 1 and "enrol this device first" in again.stderr


def test_enrolment_errors_are_named_and_leave_no_key_store(idp: Any, cli: Cli) -> None:
    user = new_user(idp)
    wrong = cli.run("enrol", "--server", idp.url, "--identifier", user.access_number,
                    input="not-the-password\n")  # fmt: skip
    assert wrong.returncode == 1
    assert "or the password is not correct" in wrong.stderr
    assert not cli.store.exists() and sms_codes(idp) == []

    idp.add_user(email="shared@example.org")
    idp.add_user(email="shared@example.org")
    ambiguous = cli.run("enrol", "--server", idp.url, "--identifier", "shared@example.org",
                        input=PASSWORD + "\n")  # fmt: skip
    assert ambiguous.returncode == 1 and "access number" in ambiguous.stderr

    no_pin = cli.run("enrol", "--server", idp.url, IDP_DEVICE_PIN="")
    assert no_pin.returncode == 1 and "no PIN" in no_pin.stderr

    insecure = cli.run("enrol", "--server", "http://login.example.org", input="x\n")
    assert insecure.returncode == 2 and "https" in insecure.stderr

    enrol(idp, cli, user)
    twice = cli.run("enrol", "--server", idp.url, "--identifier", user.access_number)
    assert twice.returncode == 1 and "enrolled already" in twice.stderr


def test_an_unreachable_server_is_a_network_error(cli: Cli, tmp_path: Path) -> None:
    from ..support.ports import free_port

    done = cli.run("enrol", "--server", f"http://localhost:{free_port()}",
                   "--identifier", "1000000001", input=PASSWORD + "\n")  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach" in done.stderr and "Traceback" not in done.stderr


# --- the event stream parser -----------------------------------------------------------


def test_server_sent_events_are_parsed_across_chunks_and_line_endings() -> None:
    body = [
        b"retry: 3000\r",
        b'\n\r\n: keep-alive\n\nevent: approval\ndata: {"id"',
        b': "a1"}\n\nevent: approval\r\ndata: {"id": "a2"}\r\n\r\n',
        b"data: incomplete",
    ]
    events = list(parse_events(iter(body), opened=True))
    assert [(e.event, e.data) for e in events] == [
        ("open", ""),
        ("approval", '{"id": "a1"}'),
        ("approval", '{"id": "a2"}'),
    ]
    assert events[1].json() == {"id": "a1"}
