"""Serve a WSGI app from a thread of the test process (werkzeug's server).

werkzeug's development server skips a response's ``close()`` when the client
resets the connection while the server reads what the client sent beyond
the request (run_wsgi's drain after the response raises ConnectionResetError
before it reaches ``application_iter.close()``). A file Flask sends, a
stylesheet say, is then left to the garbage collector, which warns of an
unclosed file in whichever test runs at that moment: a browser that leaves
a page while its stylesheet is still on the way did that under load.
``ClosesResponses`` closes such a response when the server lets go of it.
gunicorn, which serves the IdP outside the tests, closes every response.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Any


class _Closing:
    """A response iterable that closes the app's one at the latest when dropped."""

    def __init__(self, iterable: Iterable[bytes]) -> None:
        self._iterable = iterable
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._iterable)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        close = getattr(self._iterable, "close", None)
        if close is not None:
            close()

    def __del__(self) -> None:
        self.close()


class ClosesResponses:
    """WSGI middleware: every response is closed, whether or not the server does."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> _Closing:
        return _Closing(self.app(environ, start_response))


def _not_ready(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise RuntimeError("the server was not given its app")


class Listening:
    """A server bound at once to a port the system chose, which serves once it
    has its app: an app that must know its own URL is made after the port is
    taken. (A port found free and bound later can be taken in between by
    another process of a busy machine.)"""

    def __init__(self, host: str = "localhost") -> None:
        self.server = make_server(host, 0, _not_ready, threaded=True)
        self.port: int = self.server.server_port
        self.serving = False

    def serve(self, app: WsgiApp) -> tuple[BaseWSGIServer, threading.Thread]:
        """``app`` served by a daemon thread; stop with ``stop``."""
        self.server.app = ClosesResponses(app)
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        self.serving = True
        return self.server, thread

    def close(self) -> None:
        """Give the port back without serving (the app could not be made)."""
        self.server.server_close()


def stop(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
