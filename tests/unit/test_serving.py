"""The worker and hooks `idp serve` gives gunicorn.

Each case runs in a process of its own: a worker installs signal handlers and
ends with its exit."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

WORKER = """
import os, signal, sys, time
from types import SimpleNamespace
from gunicorn.config import Config
from gunicorn.glogging import Logger
from idp.serving import GthreadWorker, end_waits
from idp.state import IDP

config = Config()
config.set("worker_int", end_waits)


class Application:  # what the worker loads its app from (idp.serving._Gunicorn)
    def __init__(self, load):
        self.wsgi = load


def serve(load, **hooks):  # a worker's life: signals, load the app, serve
    for name, hook in hooks.items():
        config.set(name, hook)
    worker = GthreadWorker(1, os.getppid(), [], Application(load), 30, config, Logger(config))
    worker.init_process()
"""


def run(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WORKER + textwrap.dedent(script)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_a_stop_while_a_worker_builds_its_app_lets_it_exit_cleanly() -> None:
    # A replacement worker still inside create_app() when Ctrl-C arrives: it
    # has no app yet, so no streams to end. It must leave with 0; an error in
    # the hook failed its boot and made the whole server exit with 3.
    stopped = run("""
        def load():
            os.kill(os.getpid(), signal.SIGQUIT)
            time.sleep(5)
            sys.exit(9)  # not reached: the signal ends the worker

        serve(load)
    """)
    assert stopped.returncode == 0, stopped.stderr


def test_ctrl_c_ends_the_streams_once_though_it_reaches_the_worker_twice() -> None:
    # The terminal's SIGINT to the process group and the master's SIGQUIT:
    # the second arrives while the first is still quitting (here: ending the
    # streams). Run inside the first, it waited forever for a lock the first
    # held (the thread pool's or a waiter's).
    stopped = run("""
        calls = []

        class Streams:
            def end_waits(self):
                calls.append(1)
                if len(calls) == 1:
                    os.kill(os.getpid(), signal.SIGQUIT)
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.2)  # a signal handler would run in here
                print(f"ended {len(calls)}", flush=True)

        app = SimpleNamespace(extensions={IDP: SimpleNamespace(store=Streams())})
        serve(lambda: app, post_worker_init=lambda worker: os.kill(os.getpid(), signal.SIGINT))
        sys.exit(9)  # not reached: the signal ends the worker
    """)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "ended 1\n", stopped.stdout
    assert "Traceback" not in stopped.stderr, stopped.stderr


def test_the_server_never_imports_the_migrations_machinery(tmp_path: Any) -> None:
    """alembic, mako and pygments are 12 MiB in every process that imports
    them: ``idp serve`` migrates in a child process, and the app it serves
    (and the ``idp`` command around it) load Flask-Migrate only for ``idp db``."""
    script = f"""
        import sys
        import idp.__main__, idp.serving
        from idp.app import create_app
        app = create_app({{"issuer": "http://localhost:1", "instance_path": {str(tmp_path)!r}}})
        app.test_client().get("/.well-known/openid-configuration")
        loaded = ("alembic", "flask_migrate", "mako", "pygments")
        print(sorted(m for m in loaded if m in sys.modules))
    """
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
