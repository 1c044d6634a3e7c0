"""A thread pool that hands work to the thread that became idle last.

gunicorn's gthread worker runs each connection on a ``ThreadPoolExecutor``,
whose idle threads all wait on one queue and take turns: once a burst has
started many threads (1,000 browsers on waiting pages start about 500 per
worker), steady load afterwards is spread over all of them, and each thread
that serves a request grows state of its own in the C allocator and the
libraries (measured: about 45 KiB per thread). Memory then rose for minutes
after the burst, by 24 % in a soak that followed one (docs/performance.md).

``LifoThreadPool`` keeps its idle threads on a stack: a task goes to the
thread that finished last, so steady load runs on as few threads as it
needs, and the threads a burst started stay parked. Otherwise it behaves as
``ThreadPoolExecutor`` does for gunicorn: at most ``max_workers`` threads,
started when no idle one is left, tasks beyond that wait in order, and
``shutdown`` lets running tasks finish while the idle threads end.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any


class _Task:
    __slots__ = ("args", "fn", "future", "kwargs")

    def __init__(self, future: Future[Any], fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        self.future, self.fn, self.args, self.kwargs = future, fn, args, kwargs

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class _Runner:
    """One thread of the pool: ``wake`` is held while it is parked."""

    __slots__ = ("task", "wake")

    def __init__(self, task: _Task) -> None:
        self.task: _Task | None = task
        self.wake = threading.Lock()
        self.wake.acquire()


class LifoThreadPool(Executor):
    def __init__(self, max_workers: int, thread_name_prefix: str = "lifo-pool") -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        # Reentrant: gunicorn shuts the pool down from a signal handler, which
        # may interrupt the same thread inside submit().
        self._lock = threading.RLock()
        self._idle: list[_Runner] = []  # the last to become idle on top
        self._backlog: deque[_Task] = deque()
        self._threads: list[threading.Thread] = []
        self._shutdown = False

    @property
    def thread_count(self) -> int:
        """Threads started so far (they live until shutdown)."""
        return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        task = _Task(future, fn, args, kwargs)
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            if self._idle:
                runner = self._idle.pop()
                runner.task = task
                runner.wake.release()
            elif len(self._threads) < self._max_workers:
                runner = _Runner(task)
                thread = threading.Thread(
                    target=self._run,
                    args=(runner,),
                    name=f"{self._prefix}-{len(self._threads)}",
                )
                self._threads.append(thread)
                try:
                    thread.start()
                except RuntimeError:  # the system gives no more threads
                    self._threads.pop()
                    if not self._threads:
                        raise
                    self._backlog.append(task)  # for the next thread that is done
            else:
                self._backlog.append(task)
        return future

    def _run(self, runner: _Runner) -> None:
        while (task := runner.task) is not None:
            runner.task = None
            task.run()
            del task
            with self._lock:
                if self._backlog:
                    runner.task = self._backlog.popleft()
                    continue
                if self._shutdown:
                    return
                self._idle.append(runner)
            runner.wake.acquire()  # until submit() hands it a task, or shutdown

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._backlog:
                    self._backlog.popleft().future.cancel()
            parked, self._idle = self._idle, []
            for runner in parked:
                runner.task = None
                runner.wake.release()
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()
