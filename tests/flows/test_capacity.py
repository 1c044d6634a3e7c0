"""A thousand open event streams on one instance leave other requests served.

`idp serve` runs gthread workers (1024 threads each by default) and every
waiting stream shares its process's single Redis subscriber (idp.store.fanout),
so what a waiting browser or device holds is a thread, not a database or
Redis connection. This test opens 1000 device event streams against one
`idp serve` and then signs in through the authorization endpoint.
"""

from __future__ import annotations

import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..support.ports import free_port
from .conftest import PASSWORD
from .devices import SoftDevice
from .helpers import Browser
from .test_serve import interrupt, start, wait_for

STREAMS = 1000


def open_streams(port: int, token: str, count: int) -> list[socket.socket]:
    request = (
        f"GET /device/v1/events HTTP/1.1\r\nHost: localhost:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    streams = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request)
        streams.append(sock)
    return streams


def wait_until_streaming(streams: list[socket.socket], timeout: float) -> int:
    """How many streams got their 200 and first event line within ``timeout``."""
    selector = selectors.DefaultSelector()
    for sock in streams:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    started = 0
    deadline = time.monotonic() + timeout
    while started < len(streams) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            data = sock.recv(4096)
            selector.unregister(sock)
            if data.startswith(b"HTTP/1.1 200") and b"text/event-stream" in data:
                started += 1
    selector.close()
    return started


def test_a_thousand_waiting_streams_leave_other_requests_served(
    tmp_path: Path, process_group: list[Any]
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * STREAMS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * STREAMS), hard))
    port = free_port()
    issuer = f"http://localhost:{port}"
    env = {"IDP_ISSUER": issuer, "IDP_INSTANCE_PATH": str(tmp_path)}
    process = start(["serve", "--port", str(port)], env, tmp_path, process_group)
    wait_for(f"{issuer}/.well-known/openid-configuration", process)
    subprocess.run(
        [sys.executable, "-m", "idp", "users", "add", "--username", "many",
         "--phone", "+49 151 1", "--password-stdin"],
        input=PASSWORD + "\n", env={**os.environ, **env}, check=True, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    device = SoftDevice(issuer)
    device.enrol("many", PASSWORD, tmp_path)
    assert device.token is not None

    streams = open_streams(port, device.token, STREAMS)
    try:
        assert wait_until_streaming(streams, timeout=120) == STREAMS
        # With all of them open, the instance still answers everyone else.
        browser = Browser(issuer)
        page = browser.go(f"{issuer}/login")
        assert page.status_code == 200
        page = browser.sign_in(page, "many", PASSWORD)
        assert page.status_code == 200 and 'id="access-number"' in page.text
        assert browser.go(f"{issuer}/jwks.json").status_code == 200
    finally:
        for sock in streams:
            sock.close()
    output = interrupt(process)
    assert process.returncode == 0, output[-2000:]
