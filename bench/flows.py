"""The Python driver for the flows wrk cannot walk: full login, SSO login,
refresh with rotation (in several processes of several threads), and the
approval round trip with many waiting browsers.

Each flow is the protocol as a relying party and a browser walk it: the
authorization request with PKCE S256, the login form (argon2id on the
server, at its configured cost), the consent screen, the code at the
redirect URI, the token request with client_secret_basic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import multiprocessing
import re
import resource
import secrets
import selectors
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from clients.device.authenticator import CredentialKey, create_credential, get_assertion
from idp.webauthn import approval_challenge

from .results import Sample, percentile

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
FORM = re.compile(r'<form method="post" action="([^"]+)"')


class FlowError(RuntimeError):
    pass


@dataclass(frozen=True)
class Setup:
    """What bench.seed made, and where the server is."""

    issuer: str
    instance_path: str
    password: str
    callback: str
    flows_users: tuple[str, ...]
    approver: str
    app: tuple[str, str]
    service: tuple[str, str]
    mfa: tuple[str, str]

    @classmethod
    def load(cls, issuer: str, instance_path: str, seeded: dict[str, Any]) -> Setup:
        return cls(
            issuer=issuer,
            instance_path=instance_path,
            password=seeded["password"],
            callback=seeded["callback"],
            flows_users=tuple(seeded["flows_users"]),
            approver=seeded["approver"],
            app=(seeded["app"][0], seeded["app"][1]),
            service=(seeded["service"][0], seeded["service"][1]),
            mfa=(seeded["mfa"][0], seeded["mfa"][1]),
        )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Browser:
    """Follows redirects inside the IdP; stops at one that leaves it."""

    setup: Setup
    user_agent: str = "freigabe-bench"
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers["User-Agent"] = self.user_agent

    def go(self, url: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        issuer = self.setup.issuer
        while True:
            response = self.session.request(
                method, url, allow_redirects=False, timeout=60, **kwargs
            )
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303) or not location:
                return response
            target = location if "://" in location else issuer + location
            if not target.startswith(issuer + "/"):
                return response
            url, method, kwargs = target, "GET", {}

    def submit(self, page: requests.Response, **values: str) -> requests.Response:
        action = FORM.search(page.text)
        if action is None:
            raise FlowError(f"no form on the page ({page.status_code})")
        data = dict(HIDDEN.findall(page.text))
        data.update(values)
        path = action.group(1).replace("&amp;", "&")
        url = path if "://" in path else self.setup.issuer + path
        return self.go(url, "POST", data=data)

    def authorize(self, client_id: str, **extra: str) -> tuple[requests.Response, str]:
        verifier, challenge = pkce_pair()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.setup.callback,
            "scope": "openid profile email offline_access",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        }
        return self.go(f"{self.setup.issuer}/authorize?{urlencode(params)}"), verifier

    def sign_in(self, page: requests.Response, identifier: str) -> requests.Response:
        if 'name="password"' not in page.text:
            raise FlowError(f"expected the login form, got {page.status_code}")
        return self.submit(page, identifier=identifier, password=self.setup.password)


def code_from(response: requests.Response, callback: str) -> str:
    location = response.headers.get("Location", "")
    if response.status_code != 302 or not location.startswith(callback):
        raise FlowError(f"expected a redirect to the client, got {response.status_code}")
    params = parse_qs(urlsplit(location).query)
    if "code" not in params:
        raise FlowError(f"no code in the redirect: {params.get('error')}")
    return params["code"][0]


def token_request(setup: Setup, client: tuple[str, str], **form: str) -> dict[str, Any]:
    response = requests.post(f"{setup.issuer}/token", data=form, auth=client, timeout=60)
    if response.status_code != 200:
        raise FlowError(f"token endpoint: {response.status_code} {response.text[:200]}")
    return dict(response.json())


def redeem(setup: Setup, code: str, verifier: str) -> dict[str, Any]:
    return token_request(
        setup, setup.app,
        grant_type="authorization_code", code=code, redirect_uri=setup.callback,
        code_verifier=verifier,
    )  # fmt: skip


def full_login(setup: Setup, user: str) -> tuple[Browser, dict[str, Any]]:
    """A new browser: authorize, password, consent (prompt=consent asks every
    time), code, token."""
    browser = Browser(setup)
    page, verifier = browser.authorize(setup.app[0], prompt="consent")
    page = browser.sign_in(page, user)
    if 'value="allow"' not in page.text:
        raise FlowError(f"expected the consent screen, got {page.status_code}")
    done = browser.submit(page, decision="allow")
    tokens = redeem(setup, code_from(done, setup.callback), verifier)
    if "id_token" not in tokens:
        raise FlowError("no ID token")
    return browser, tokens


# --- the measured loops -----------------------------------------------------------


class Flow:
    """One thread's flow: prepared once outside the measured window, then run."""

    def __init__(self, setup: Setup, user: str) -> None:
        self.setup = setup
        self.user = user

    def prepare(self) -> None:
        pass

    def run(self) -> None:
        raise NotImplementedError


class LoginFlow(Flow):
    def run(self) -> None:
        full_login(self.setup, self.user)


class SsoFlow(Flow):
    """The returning user: a browser with a session; authorize and token."""

    def prepare(self) -> None:
        self.browser, _ = full_login(self.setup, self.user)

    def run(self) -> None:
        done, verifier = self.browser.authorize(self.setup.app[0])
        redeem(self.setup, code_from(done, self.setup.callback), verifier)


class RefreshFlow(Flow):
    """Refresh with rotation: each refresh token is used once, its successor next."""

    def prepare(self) -> None:
        _, tokens = full_login(self.setup, self.user)
        self.refresh_token = str(tokens["refresh_token"])

    def run(self) -> None:
        tokens = token_request(
            self.setup, self.setup.app, grant_type="refresh_token", refresh_token=self.refresh_token
        )
        self.refresh_token = str(tokens["refresh_token"])


class ClientCredentialsFlow(Flow):
    """A service's token (wrk measures its capacity; the soak paces it here)."""

    def run(self) -> None:
        token_request(self.setup, self.setup.service, grant_type="client_credentials")


FLOWS: dict[str, type[Flow]] = {
    "login": LoginFlow,
    "sso": SsoFlow,
    "refresh": RefreshFlow,
    "client_credentials": ClientCredentialsFlow,
}


@dataclass(frozen=True)
class Part:
    """One flow of a driver run: ``threads`` threads in each driver process,
    together ``rate`` operations per second (None: each as fast as it can)."""

    name: str
    threads: int
    rate: float | None = None


@dataclass
class Timeline:
    """What one flow did: each completed operation's start (seconds after the
    run began) and latency, each error's time, and how often each kind of
    error came (the exception and its message)."""

    started: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    error_kinds: Counter[str] = field(default_factory=Counter)

    def extend(self, other: Timeline) -> None:
        self.started += other.started
        self.latencies += other.latencies
        self.errors += other.errors
        self.error_kinds += other.error_kinds

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the operations that started in [start, end)."""
        return [x for t, x in zip(self.started, self.latencies, strict=True) if start <= t < end]


def _driver_process(
    parts: list[Part],
    number: int,
    processes: int,
    setup: Setup,
    seconds: float,
    ready: Any,
    start: Any,
    out: Any,
) -> None:
    users = setup.flows_users
    per_process = sum(part.threads for part in parts)
    # (part, flow, seconds between two starts of this thread's operations)
    runs: list[tuple[Part, Flow, float | None]] = []
    for part in parts:
        interval = processes * part.threads / part.rate if part.rate else None
        for _ in range(part.threads):
            user = users[(number * per_process + len(runs)) % len(users)]
            runs.append((part, FLOWS[part.name](setup, user), interval))
    try:
        with ThreadPoolExecutor(len(runs)) as pool:
            list(pool.map(lambda run: run[1].prepare(), runs))
    except Exception as exc:  # reported to the parent, which fails the run
        ready.put(f"{type(exc).__name__}: {exc}")
        return
    ready.put("ready")
    start.wait()
    began = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    end = began + seconds
    timelines = {part.name: Timeline() for part in parts}
    lock = threading.Lock()

    def loop(index: int, part: Part, flow: Flow, interval: float | None) -> None:
        timeline = timelines[part.name]
        # Paced threads start spread over one interval, not all at once.
        due = began + (interval * index / len(runs) if interval else 0.0)
        while True:
            if interval:
                time.sleep(max(0.0, due - time.monotonic()))
                # A thread that fell behind (a slow answer, a late wake-up)
                # catches up by one operation at most, never in a burst.
                due = max(due + interval, time.monotonic() - interval)
            t0 = time.monotonic()
            if t0 >= end:
                return
            try:
                flow.run()
            except (FlowError, requests.RequestException) as exc:
                with lock:
                    timeline.errors.append(t0 - began)
                    timeline.error_kinds[f"{type(exc).__name__}: {exc}"[:200]] += 1
                continue
            latency = time.monotonic() - t0
            with lock:
                timeline.started.append(t0 - began)
                timeline.latencies.append(latency)

    workers = [threading.Thread(target=loop, args=(index, *run)) for index, run in enumerate(runs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    finished = time.monotonic()
    used = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (used.ru_utime + used.ru_stime) - (usage.ru_utime + usage.ru_stime)
    out.put({"timelines": timelines, "seconds": finished - began, "cpu": cpu})


@dataclass
class Driven:
    """A driver run: each flow's timeline, and its length and CPU."""

    timelines: dict[str, Timeline]
    seconds: float
    client_cpu: float
    server_cpu: float

    def sample(self, name: str) -> Sample:
        timeline = self.timelines[name]
        return Sample(
            operations=len(timeline.latencies),
            errors=len(timeline.errors),
            seconds=self.seconds,
            p50_ms=1000 * percentile(timeline.latencies, 0.50),
            p99_ms=1000 * percentile(timeline.latencies, 0.99),
            client_cpu=self.client_cpu,
            server_cpu=self.server_cpu,
        )


def drive_parts(
    parts: list[Part],
    setup: Setup,
    *,
    seconds: float,
    processes: int,
    server_cpu: Callable[[], float],
    marks: Callable[[float], None] | None = None,
) -> Driven:
    """Run the flows of ``parts`` together in ``processes`` processes for
    ``seconds``; ``marks`` is called in a thread of its own with the moment
    the run began (time.monotonic()), for readings along the way."""
    context = multiprocessing.get_context("fork")
    ready, out = context.Queue(), context.Queue()
    start = context.Event()
    children = [
        context.Process(
            target=_driver_process, args=(parts, n, processes, setup, seconds, ready, start, out)
        )
        for n in range(processes)
    ]
    for child in children:
        child.start()
    reported = False
    names = ", ".join(part.name for part in parts)
    try:
        for _ in children:
            status = ready.get(timeout=300)
            if status != "ready":
                raise FlowError(f"{names}: preparing failed: {status}")
        cpu_before = server_cpu()
        began = time.monotonic()
        start.set()
        marking = threading.Thread(target=marks, args=(began,), daemon=True) if marks else None
        if marking is not None:
            marking.start()
        reports = [out.get(timeout=seconds + 300) for _ in children]
        cpu_after = server_cpu()
        if marking is not None:
            marking.join()
        reported = True
    finally:
        # After a failure the others may wait for a start that never comes.
        for child in children:
            child.join(timeout=30 if reported else 0)
            if child.is_alive():
                child.kill()
                child.join()
    timelines = {part.name: Timeline() for part in parts}
    for report in reports:
        for name, timeline in report["timelines"].items():
            timelines[name].extend(timeline)
    return Driven(
        timelines=timelines,
        seconds=max(r["seconds"] for r in reports),
        client_cpu=sum(r["cpu"] for r in reports),
        server_cpu=cpu_after - cpu_before,
    )


def drive(
    name: str,
    setup: Setup,
    *,
    seconds: float,
    processes: int,
    threads: int,
    server_cpu: Callable[[], float],
) -> Sample:
    """Run a flow in ``processes`` processes of ``threads`` threads for
    ``seconds``, each thread as fast as it can."""
    driven = drive_parts(
        [Part(name, threads)], setup, seconds=seconds, processes=processes, server_cpu=server_cpu
    )
    return driven.sample(name)


# --- the approval round trip --------------------------------------------------------


@dataclass
class Device:
    """The software authenticator of the device client, speaking the device API."""

    setup: Setup
    key: CredentialKey | None = None
    token: str | None = None
    http: requests.Session = field(default_factory=requests.Session)

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.http.request(
            method, f"{self.setup.issuer}/device/v1{path}", headers=headers, timeout=60, **kwargs
        )

    def enrol(self) -> None:
        started = self.call(
            "POST", "/enrolments",
            json={"identifier": self.setup.approver, "password": self.setup.password,
                  "device_name": "Bench phone", "kind": "cli"},
        )  # fmt: skip
        if started.status_code != 201:
            raise FlowError(f"enrolment: {started.status_code} {started.text[:200]}")
        body = started.json()
        log = Path(self.setup.instance_path) / "outbox" / "sms.log"
        code = re.findall(r"code: (\d{6})", log.read_text(encoding="utf-8"))[-1]
        key, credential = create_credential(
            options_json=json.dumps(body["public_key"]),
            origin=self.setup.issuer,
            user_verified=True,
        )
        done = self.call(
            "POST", f"/enrolments/{body['enrolment_id']}/complete",
            json={"credential": credential, "confirmation_code": code},
        )  # fmt: skip
        if done.status_code != 201:
            raise FlowError(f"enrolment: {done.status_code} {done.text[:200]}")
        self.key, self.token = key, done.json()["device_token"]

    def answer_body(self, approval: dict[str, Any], code: str) -> dict[str, Any]:
        assert self.key is not None
        challenge = approval_challenge(
            approval_id=approval["id"], decision="approve", code=code, context=approval["context"]
        )
        assertion = get_assertion(
            key=self.key,
            rp_id=urlsplit(self.setup.issuer).hostname or "",
            origin=self.setup.issuer,
            challenge=challenge,
            user_verified=True,
        )
        return {"decision": "approve", "code": code, "fraud": False, "assertion": assertion}


@dataclass
class Waiting:
    """A browser on the waiting page with its event stream open."""

    user_agent: str
    code: str
    stream: socket.socket
    opened: float = 0.0
    notified: float = 0.0
    buffer: bytes = b""


def _waiting_browser(setup: Setup, number: int) -> tuple[str, str, str, str]:
    browser = Browser(setup, user_agent=f"freigabe-bench/{number}")
    page, _ = browser.authorize(setup.mfa[0])
    page = browser.sign_in(page, setup.approver)
    code = re.search(r'id="match-code"[^>]*>(\d+)<', page.text)
    events = re.search(r'data-events="([^"]+)"', page.text)
    if code is None or events is None:
        raise FlowError(f"expected the waiting page, got {page.status_code}")
    cookies = "; ".join(f"{c.name}={c.value}" for c in browser.session.cookies)
    return browser.user_agent, code.group(1), events.group(1).replace("&amp;", "&"), cookies


def _open_stream(setup: Setup, path: str, cookies: str, user_agent: str) -> socket.socket:
    parts = urlsplit(setup.issuer)
    sock = socket.create_connection(("127.0.0.1", parts.port or 80), timeout=30)
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: {user_agent}\r\n"
            f"Accept: text/event-stream\r\nCookie: {cookies}\r\n\r\n"
        ).encode()
    )
    sock.setblocking(False)
    return sock


def approval_round_trip(
    setup: Setup,
    *,
    waiting: int,
    parallel: int,
    server_cpu: Callable[[], float],
    all_waiting: Callable[[], None] = lambda: None,
) -> Sample:
    """``waiting`` browsers wait on their waiting pages, each with its event
    stream open; the device approves them one after the other. Latency: from
    the device sending its answer to the event reaching that browser.

    The browsers sign in ``parallel`` at a time (at most
    ``login_failures_per_account``: one account, and a sign-in counts against
    its limit while it is checked). ``all_waiting`` is called when every
    browser's stream is open, before the first answer."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * waiting + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * waiting + 256), hard))
    device = Device(setup)
    device.enrol()
    with ThreadPoolExecutor(parallel) as pool:
        pages = list(pool.map(lambda n: _waiting_browser(setup, n), range(waiting)))
    browsers = {
        agent: Waiting(agent, code, _open_stream(setup, path, cookies, agent))
        for agent, code, path, cookies in pages
    }
    selector = selectors.DefaultSelector()
    for entry in browsers.values():
        selector.register(entry.stream, selectors.EVENT_READ, entry)
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                entry: Waiting = key.data
                now = time.monotonic()
                try:
                    data = entry.stream.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(entry.stream)
                    continue
                entry.buffer += data
                if not entry.opened and b'"pending"' in entry.buffer:
                    entry.opened = now
                if not entry.notified and b'"approved"' in entry.buffer:
                    entry.notified = now

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        deadline = time.monotonic() + 60
        while not all(e.opened for e in browsers.values()):
            if time.monotonic() > deadline:
                opened = sum(1 for e in browsers.values() if e.opened)
                raise FlowError(f"only {opened} of {waiting} event streams opened")
            time.sleep(0.05)
        all_waiting()
        listed = device.call("GET", "/approvals").json()["approvals"]
        approvals = []
        for item in listed:
            approval = device.call("GET", f"/approvals/{item['id']}").json()
            agent = approval["context"].get("user_agent")
            if agent in browsers:
                approvals.append((approval, browsers[agent]))
        if len(approvals) != waiting:
            raise FlowError(f"the device sees {len(approvals)} of {waiting} approvals")

        errors = 0
        sent: list[tuple[float, Waiting]] = []
        cpu_before = server_cpu()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        began = time.monotonic()
        for approval, entry in approvals:
            body = device.answer_body(approval, entry.code)
            t0 = time.monotonic()
            response = device.call("POST", f"/approvals/{approval['id']}", json=body)
            if response.status_code != 200:
                errors += 1
                continue
            sent.append((t0, entry))
        deadline = time.monotonic() + 30
        while any(not e.notified for _, e in sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        finished = time.monotonic()
        cpu_after = server_cpu()
        used = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        stop.set()
        listener.join(timeout=5)
        selector.close()
        for entry in browsers.values():
            entry.stream.close()
    latencies = [e.notified - t0 for t0, e in sent if e.notified]
    errors += len(sent) - len(latencies)
    return Sample(
        operations=len(latencies),
        errors=errors,
        seconds=finished - began,
        p50_ms=1000 * percentile(latencies, 0.50),
        p99_ms=1000 * percentile(latencies, 0.99),
        client_cpu=(used.ru_utime + used.ru_stime) - (usage.ru_utime + usage.ru_stime),
        server_cpu=cpu_after - cpu_before,
    )
