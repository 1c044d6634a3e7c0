"""The servers a benchmark run starts, and what their processes cost.

PostgreSQL and redis-server are started as tests/conftest.py starts them
(initdb/pg_ctl from /usr/lib/postgresql/*/bin, as user postgres when root; a
redis-server on a free loopback port). `idp serve` and C run under gunicorn,
gthread, with their output in a log file.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A server did not start, or a scenario could not be set up."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- process accounting -----------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            found += [int(p) for p in Path(task).read_text().split()]
        except OSError:
            continue
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (/proc/<pid>/stat fields 14 and 15)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def pss_bytes(pids: list[int]) -> int:
    """The sum of the processes' PSS (/proc/<pid>/smaps_rollup)."""
    total = 0
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


# --- a gunicorn server: `idp serve` or C ------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> list[int]:
        """The gunicorn master and its workers (not the embedded Redis it started)."""
        master = self.process.pid
        return [master, *(p for p in _children(master) if not _comm(p).startswith("redis"))]

    def cpu(self) -> float:
        return cpu_seconds(self.pids())

    def worker_cpu(self) -> list[float]:
        """CPU seconds of each worker (not the master), in pid order."""
        return [cpu_seconds([pid]) for pid in sorted(self.pids()[1:])]

    def pss(self) -> int:
        return pss_bytes(self.pids())

    def wait_ready(self, path: str, workers: int, timeout: float = 90) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise BenchError(f"{self.name} exited with {self.process.returncode}:\n{tail}")
            try:
                requests.get(self.url + path, timeout=2)
            except requests.RequestException:
                return False
            return len(self.pids()) >= 1 + workers

        wait_until(up, timeout, f"{self.name} at {self.url}")
        # Every worker answers (each builds its app when it starts).
        for _ in range(4 * workers):
            requests.get(self.url + path, timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_process(
    name: str, args: list[str], env: dict[str, str], log: Path, url: str, cwd: Path
) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name=name, url=url, process=process, log=log)


def start_ceiling(workdir: Path, workers: int, threads: int) -> Server:
    """C: the trivial Flask app under gunicorn with `idp serve`'s worker settings."""
    port = free_port()
    args = [
        *(sys.executable, "-m", "gunicorn", "bench.ceiling:app"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers)),
        *("--worker-class", "gthread", "--threads", str(threads)),
        *("--worker-connections", str(threads + 256), "--keep-alive", "5"),
        *("--access-logfile", "-", "--error-logfile", "-"),
        *("--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(D)sus'),
    ]
    repo = Path(__file__).resolve().parents[1]
    server = start_process(
        "C", args, {"PYTHONPATH": str(repo)}, workdir / "ceiling.log", f"http://127.0.0.1:{port}",
        workdir,
    )  # fmt: skip
    server.wait_ready("/", workers)
    return server


def start_idp(
    workdir: Path, env: dict[str, str], port: int, workers: int, threads: int, backend: str
) -> Server:
    args = [
        *(sys.executable, "-m", "idp", "serve", "--no-migrate"),
        *("--port", str(port), "--workers", str(workers), "--threads", str(threads)),
    ]
    server = start_process(
        f"Freigabe ({backend})", args, env, workdir / f"idp-{backend}.log",
        f"http://localhost:{port}", workdir,
    )  # fmt: skip
    server.wait_ready("/.well-known/openid-configuration", workers)
    return server


# --- PostgreSQL and redis-server --------------------------------------------------


def _postgres_bin() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(p) for p in Path(path).parent.parent.name.split(".") if p.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


@dataclass
class Postgres:
    port: int
    base: Path
    bindir: Path
    as_postgres: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def pids(self) -> list[int]:
        pidfile = self.base / "data" / "postmaster.pid"
        try:
            master = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []
        return [master, *_children(master)]

    def stop(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"),
             "-m", "fast", "-w", "stop"],
            check=False, capture_output=True, timeout=120,
        )  # fmt: skip
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> Postgres:
    bindir = _postgres_bin()
    if bindir is None:
        raise BenchError("PostgreSQL is not installed (no initdb/pg_ctl found)")
    base = Path(tempfile.mkdtemp(prefix="freigabe-bench-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    server = Postgres(port=port, base=base, bindir=bindir, as_postgres=as_postgres)

    def run(*args: str) -> None:
        subprocess.run([*as_postgres, *args], check=True, capture_output=True, timeout=120)

    try:
        run(
            str(bindir / "initdb"),
            *("-D", str(base / "data"), "-A", "trust", "-U", "postgres"),
            *("-E", "UTF8", "--no-locale", "--no-sync"),
        )
        # Durable as a production server would be: fsync and synchronous
        # commit stay on (unlike the test suite's throwaway servers).
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1"
        run(
            str(bindir / "pg_ctl"),
            *("-D", str(base / "data"), "-l", str(base / "server.log"), "-o", options),
            *("-w", "-t", "60", "start"),
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(base, ignore_errors=True)
        raise BenchError(f"PostgreSQL did not start: {exc}") from exc
    return server


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def pids(self) -> list[int]:
        return [self.process.pid]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_redis() -> RedisServer:
    import redis

    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.access(binary, os.X_OK):
        raise BenchError("redis-server is not installed")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="freigabe-bench-redis-"))
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(port=port, process=process, workdir=workdir)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def answers() -> bool:
        if process.poll() is not None:
            raise BenchError(f"redis-server did not start on port {port}")
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, 20, "redis-server")
    finally:
        client.close()
    return server
