"""A raw HTTP/1.1 server on 127.0.0.1 for transport edge cases that a framework would not
produce (a reset before the answer, a connection closed without saying so)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class RawServer:
    """Hands each accepted connection to ``answer(conn, number)`` (``number`` counts from 1),
    one at a time in a thread of its own, and closes it afterwards; :attr:`connections`
    counts them."""

    def __init__(self, answer: Callable[[socket.socket, int], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._answer = answer
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            # a client that reset its connection does not stop the server: serve the next one
            with conn, contextlib.suppress(OSError):
                self._answer(conn, self.connections)

    def close(self) -> None:
        self.sock.close()


def read_request_head(conn: socket.socket) -> bytes:
    """Read up to the end of a request's head (its body, if any, is left unread); what came
    before the client closed or reset the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:  # a client closing with our answer unread sends RST
            break
        if not chunk:
            break
        data += chunk
    return data
