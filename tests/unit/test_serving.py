"""The gunicorn hooks of `idp serve`, on gunicorn's own worker class."""

from __future__ import annotations

import logging

import pytest
from gunicorn.config import Config
from gunicorn.workers.gthread import ThreadWorker

from idp.serving import end_waits


def test_a_stop_while_a_worker_builds_its_app_lets_it_exit_cleanly() -> None:
    # A replacement worker still inside create_app() when Ctrl-C arrives: it
    # has no app yet, so no streams to end. It must leave with 0; an error in
    # the hook failed its boot and made the whole server exit with 3.
    config = Config()
    config.set("worker_int", end_waits)
    worker = ThreadWorker(1, 0, [], None, 30, config, logging.getLogger(__name__))
    try:
        worker.tpool = worker.get_thread_pool()  # as init_process does before loading the app
        assert not hasattr(worker, "wsgi")
        with pytest.raises(SystemExit) as exited:
            worker.handle_quit(0, None)
        assert exited.value.code == 0
    finally:
        worker.tmp.close()
