"""Ports for the servers the tests start as processes of their own (or bind
later than they choose the port: aiosmtpd).

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` comes from its
ephemeral range, the range it also takes the source port of every outgoing
connection from: between the moment a test found such a port free and the
moment its server bound it, a connection of any process could take it, and
the server failed to start under load. These ports come from below that
range, from a block of its own for each xdist worker, in turn, each checked
free before it is handed out: only another server of the same test process
could take one meanwhile, and that process hands each out once per round of
its block.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

FIRST = 10_000
BLOCK = 1_500


def ephemeral_start() -> int:
    """Where the kernel's range for ephemeral ports begins (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def worker_block() -> range:
    """This test process's block: by its xdist worker number (gw0, gw1 ...)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    number = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    blocks = max(1, (ephemeral_start() - FIRST) // BLOCK)
    start = FIRST + (number % blocks) * BLOCK
    return range(start, start + BLOCK)


_lock = threading.Lock()
_ports: Iterator[int] | None = None


def free_port() -> int:
    """A port on 127.0.0.1 that is free now and outside the ephemeral range."""
    global _ports
    with _lock:
        if _ports is None:
            _ports = itertools.cycle(worker_block())
        for port in itertools.islice(_ports, BLOCK):
            if _free(port):
                return port
    raise RuntimeError(f"no free port in {worker_block()}")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
