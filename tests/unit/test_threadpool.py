"""The workers' thread pool (idp.threadpool): the thread idle last takes the
next task, and otherwise it behaves as gunicorn needs its pool to."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from idp.threadpool import LifoThreadPool

WAIT = 10


@pytest.fixture
def pool() -> Iterator[LifoThreadPool]:
    started = LifoThreadPool(max_workers=8)
    yield started
    started.shutdown(wait=True, cancel_futures=True)


def burst(pool: LifoThreadPool, size: int) -> None:
    """``size`` tasks running at once, so that ``size`` threads are started."""
    arrived = threading.Barrier(size + 1)
    futures = [pool.submit(arrived.wait, WAIT) for _ in range(size)]
    arrived.wait(WAIT)
    for future in futures:
        future.result(WAIT)


def test_after_a_burst_one_task_at_a_time_runs_on_the_thread_idle_last(
    pool: LifoThreadPool,
) -> None:
    burst(pool, 6)
    assert pool.thread_count == 6
    names = {pool.submit(lambda: threading.current_thread().name).result(WAIT) for _ in range(50)}
    # A pool whose idle threads take turns spreads these over all six.
    assert len(names) == 1
    assert pool.thread_count == 6


def test_results_exceptions_and_callbacks_reach_the_future(pool: LifoThreadPool) -> None:
    assert pool.submit(divmod, 7, 2).result(WAIT) == (3, 1)
    failed = pool.submit(int, "not a number")
    with pytest.raises(ValueError):
        failed.result(WAIT)
    called = threading.Event()
    pool.submit(str, 1).add_done_callback(lambda future: called.set())
    assert called.wait(WAIT)


def test_beyond_max_workers_tasks_wait_in_order_and_no_thread_is_added() -> None:
    pool = LifoThreadPool(max_workers=2)
    try:
        release = threading.Event()
        blocking = [pool.submit(release.wait, WAIT) for _ in range(2)]
        order: list[int] = []
        waiting = [pool.submit(order.append, n) for n in range(5)]
        assert not any(f.done() for f in waiting)
        release.set()
        for future in blocking + waiting:
            future.result(WAIT)
        assert order == [0, 1, 2, 3, 4]
        assert pool.thread_count == 2
    finally:
        pool.shutdown(wait=True)


def test_shutdown_without_waiting_lets_running_tasks_finish_and_parked_threads_end() -> None:
    pool = LifoThreadPool(max_workers=4)
    burst(pool, 3)
    release, started = threading.Event(), threading.Event()
    runs_on: list[threading.Thread] = []

    def task() -> bool:
        runs_on.append(threading.current_thread())
        started.set()
        return release.wait(WAIT)

    running = pool.submit(task)
    assert started.wait(WAIT)
    pool.shutdown(wait=False)
    with pytest.raises(RuntimeError):
        pool.submit(print)
    for thread in pool._threads:
        if thread is not runs_on[0]:
            thread.join(WAIT)
            assert not thread.is_alive()
    assert not running.done()
    release.set()
    assert running.result(WAIT) is True
    runs_on[0].join(WAIT)
    assert not runs_on[0].is_alive()


def test_shutdown_can_cancel_the_waiting_tasks() -> None:
    pool = LifoThreadPool(max_workers=1)
    release = threading.Event()
    running = pool.submit(release.wait, WAIT)
    waiting = pool.submit(print, "never")
    pool.shutdown(wait=False, cancel_futures=True)
    assert waiting.cancelled()
    release.set()
    assert running.result(WAIT) is True
    pool.shutdown(wait=True)


def test_when_no_thread_can_be_started_the_task_waits_for_a_running_one(
    pool: LifoThreadPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    busy = pool.submit(release.wait, WAIT)

    def refused(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refused)
    later = pool.submit(str, "done")
    monkeypatch.undo()
    assert pool.thread_count == 1 and not later.done()
    release.set()
    assert busy.result(WAIT) is True
    assert later.result(WAIT) == "done"
