"""Run the reference provider over real HTTP: in a background thread, or blocking for the CLI.

The server speaks the OpenAI API on ``http://<host>:<port>/v1``
(https://platform.openai.com/docs/api-reference); :meth:`ReferenceServer.variant_url` gives the
base URL of a deliberately broken variant (see :mod:`conformance.reference.faults`). It records
what it receives and answers, and can be armed to misbehave, for a relay put in front of it
(:mod:`conformance.reference.recording`, :mod:`conformance.reference.upstream_faults`).

On a loopback host (the default, 127.0.0.1) it downloads the image URLs of vision requests as
before. On any other host it is reachable by other machines, so it never fetches anything but
its own ``/assets/`` (read locally) and refuses other image URLs with 400
``invalid_image_url``; :mod:`conformance.cli` refuses to serve there without an API key.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

import uvicorn

from conformance.reference.app import create_app
from conformance.reference.faults import variant_spec
from conformance.reference.recording import MAX_RECORDS, Recorder
from conformance.reference.upstream_faults import ArmedFaults
from conformance.reference.vision import is_loopback


class _DeliberateCuts(logging.Filter):
    """Keeps uvicorn quiet about the streams the ``stream_cut`` fault cuts on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


logging.getLogger("uvicorn.error").addFilter(_DeliberateCuts())

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class ThreadedServer:
    """Any ASGI app served by uvicorn in a daemon thread on a real socket (port 0 = free)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> Self:
        """Bind, serve in a daemon thread and wait until connections are accepted."""
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP; without it every keep-alive response stalls ~40 ms (delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"cannot bind {self.host}:{self.port}: {exc}") from exc
        self.port = sock.getsockname()[1]
        self._socket = sock
        # Clients keep connections alive between a run's requests; uvicorn's default of 5 s
        # closes them while they are being reused under load.
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2,
                                timeout_keep_alive=300)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                        name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start on {self.origin}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut down gracefully and join the thread (bounded)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class ReferenceServer(ThreadedServer):
    """The reference provider served by uvicorn in a daemon thread, on ``host``:``port``
    (port 0 = a free one) with ``api_key`` (None = no authentication).

    ``record_limit`` bounds its recorded requests (:attr:`recorder`); on a host that is not
    loopback it fetches no image URL but its own (:mod:`conformance.reference.vision`).
    """

    def __init__(self, api_key: str | None = None, host: str = "127.0.0.1",
                 port: int = 0, *, record_limit: int = MAX_RECORDS) -> None:
        app = create_app(api_key, record_limit=record_limit,
                         fetch_remote_images=is_loopback(host))
        super().__init__(app, host, port)
        self.api_key = api_key
        self.recorder: Recorder = app.state.recorder
        self.armed: ArmedFaults = app.state.armed

    @property
    def base_url(self) -> str:
        """The faithful API, e.g. ``http://127.0.0.1:8123/v1``."""
        return f"{self.origin}/v1"

    def variant_url(self, faults: Iterable[str] = (), latency_ms: int = 0) -> str:
        """Base URL of the variant with ``faults`` (and quirks) and ``latency_ms``."""
        spec = variant_spec(faults, latency_ms)
        if not spec:
            return self.base_url
        return f"{self.origin}/variant/{spec}/v1"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints where it listens once it accepts connections."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            host, port = self.config.host, self.config.port
            for server in getattr(self, "servers", []):
                for sock in server.sockets or ():
                    host, port = sock.getsockname()[:2]
                    break
            print(f"reference provider listening on http://{host}:{port}/v1", flush=True)


def serve(host: str, port: int, api_key: str | None) -> None:
    """Serve in the foreground until Ctrl-C (``conformance serve-reference``); image URLs are
    fetched only when ``host`` is loopback."""
    app = create_app(api_key, fetch_remote_images=is_loopback(host))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            lifespan="off", timeout_graceful_shutdown=2)
    with contextlib.suppress(KeyboardInterrupt):
        _AnnouncingServer(config).run()
