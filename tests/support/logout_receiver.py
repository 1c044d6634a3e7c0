"""A relying party's back-channel logout endpoint, for tests: a real HTTP
server that keeps every request the IdP posts, answers with a chosen status,
and can hold its answer until the test lets go (a slow client)."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response


@dataclass(frozen=True)
class Received:
    method: str
    content_type: str
    form: dict[str, list[str]]
    headers: dict[str, str]


class LogoutReceiver:
    def __init__(self, *, status: int = 200, hold: bool = False) -> None:
        self.status = status
        self.requests: queue.Queue[Received] = queue.Queue()
        # Set: answer at once. Clear: hold each answer until release().
        self._go = threading.Event()
        if not hold:
            self._go.set()
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/backchannel-logout"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.requests.put(
            Received(
                method=request.method,
                content_type=request.content_type or "",
                form={key: request.form.getlist(key) for key in request.form},
                headers=dict(request.headers),
            )
        )
        self._go.wait(timeout=60)
        return Response(status=self.status)(environ, start_response)

    def next(self, timeout: float = 20) -> Received:
        """The next request the IdP sent (waits for it)."""
        return self.requests.get(timeout=timeout)

    def release(self) -> None:
        self._go.set()

    def stop(self) -> None:
        self._go.set()
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
