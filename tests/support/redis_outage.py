"""A real Redis server that a test can kill in the middle of a request.

``OutageRedis`` runs the system's ``redis-server`` with an append-only file
(so a restart finds every write it acknowledged: Redis writes the file
before it replies, and a killed process leaves what it wrote to the
system) and puts a small TCP relay in front of it. The IdP connects to the relay. Armed
with ``kill_on(b"...")``, the relay kills the server (SIGKILL) the moment a
command containing those bytes arrives, before the server sees it: the
request in flight gets a broken connection exactly there. ``restart()``
brings the server back on the same socket with its data.

The server listens on a unix socket, not a port: a port left free while the
server is down could be bound by another server meanwhile, and the restart
would find someone else's server answering there.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import redis


class OutageRedis:
    def __init__(self, workdir: Path, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir = workdir
        # A short path of its own: a unix socket's path has at most 107 bytes.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="outage-redis-"))
        self.socket = str(self._socket_dir / "redis.sock")
        self.process: subprocess.Popen[bytes] | None = None
        self._trigger: bytes | None = None
        self.killed_at: bytes | None = None
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._closed = False
        # The relay's port is the one the system gives its listener: a port
        # found free and bound later could be taken in between (seen under load).
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.relay_port = int(self._listener.getsockname()[1])
        try:
            self.start()
        except BaseException:
            self._listener.close()
            if self.process is not None and self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            raise
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    # --- the server -------------------------------------------------------------

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", "0", "--unixsocket", self.socket),
                # No fsync: the server is killed, not the machine. An fsync at
                # every write can stall it for seconds on a busy disk, longer
                # than a client waits (a PING timed out once on CI).
                *("--save", "", "--appendonly", "yes", "--appendfsync", "no"),
                *("--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=self.socket, socket_timeout=5)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    # Refused before it listens; slow to answer while it
                    # sets up its files on a busy disk (seen on CI).
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.relay_port}/{db}"

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill_on(self, trigger: bytes) -> None:
        """Kill the server when the next command containing ``trigger`` arrives."""
        with self._lock:
            self._trigger = trigger
            self.killed_at = None

    def kill(self) -> None:
        with self._lock:
            self._trigger = None
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGKILL)
                self.process.wait()
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
                connection.close()
            self._connections.clear()

    def restart(self) -> None:
        if not self.up:
            self.start()

    def close(self) -> None:
        self._closed = True
        # Closing alone does not wake an accept() blocked in another thread.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._accepting.join(timeout=10)
        self.kill()
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    # --- the relay ---------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._closed:
                client.close()
                return
            if not self.up:
                client.close()  # refused as a dead server would be
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.settimeout(5)
            try:
                upstream.connect(self.socket)
            except OSError:
                upstream.close()
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, to_server: bool) -> None:
        tail = b""
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            if to_server:
                seen = tail + chunk
                tail = seen[-256:]
                trigger = self._trigger
                if trigger is not None and trigger in seen:
                    self.killed_at = trigger
                    self.kill()
                    return
            try:
                target.sendall(chunk)
            except OSError:
                break
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        # The other direction's pump wakes from the shutdown and ends too;
        # whichever ends first closes both (closing twice does nothing).
        with self._lock:
            for end in (source, target):
                end.close()
                if end in self._connections:
                    self._connections.remove(end)
