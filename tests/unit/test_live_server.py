"""The tests' in-process server closes every response (tests/support/live_server.py)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

from tests.support.live_server import Listening, stop

BODY = b"x" * 64


def test_a_response_is_closed_when_the_client_resets_the_connection_after_it() -> None:
    """The client sends a byte beyond its request and resets the connection
    once it has the response: werkzeug, reading that byte after answering,
    fails on the reset before it closes the response."""
    byte_sent = threading.Event()
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield BODY[:32]
            # The extra byte is in the socket (not read with the request)
            # by the time the server finishes the response.
            byte_sent.wait(10)
            yield BODY[32:]

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: Any) -> Body:
        start_response("200 OK", [("Content-Length", str(len(BODY)))])
        return Body()

    server, thread = Listening("127.0.0.1").serve(app)
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            received = client.recv(4096)
            client.sendall(b"!")
            byte_sent.set()
            while not received.endswith(BODY):
                chunk = client.recv(4096)
                assert chunk, received
                received += chunk
            # Linger zero: close with a reset instead of a FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert closed.wait(10), "the response was never closed"
    finally:
        stop(server, thread)
