"""Builtin servers: ``builtin: reference`` providers are served by an in-process
:class:`~conformance.reference.server.ReferenceServer` on 127.0.0.1 (random free port, random
key), started on first use and stopped at the end of the session; ``upstream: {builtin:
reference, port: N}`` gets a reference on that fixed port (:meth:`Builtins.upstream_origin`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from conformance.config import ProviderConfig, UpstreamConfig

if TYPE_CHECKING:  # the server (Starlette, uvicorn) is imported only when a run needs it
    from conformance.reference.server import ReferenceServer


class Builtins:
    """Starts the servers builtin providers need and resolves their base URLs and keys."""

    def __init__(self) -> None:
        self._server: ReferenceServer | None = None
        self._upstreams: dict[tuple[str, int], ReferenceServer] = {}
        self._lock = threading.Lock()

    def resolve(self, providers: Sequence[ProviderConfig]) -> list[ProviderConfig]:
        out = []
        for provider in providers:
            if provider.builtin == "reference" and not provider.skip_reason:
                server = self._reference()
                key = server.api_key or ""
                provider = replace(
                    provider,
                    base_url=server.variant_url(provider.faults, provider.latency_ms),
                    api_key=key,
                    secrets=(*provider.secrets, key),
                    # An image URL the reference can fetch, for the vision-by-URL checks.
                    vision_url=provider.vision_url or f"{server.origin}/assets/color/red.png",
                )
            out.append(provider)
        return out

    def _reference(self) -> ReferenceServer:
        from conformance.reference.server import ReferenceServer

        if self._server is None:
            self._server = ReferenceServer(api_key="sk-ref-" + secrets.token_urlsafe(24)).start()
        return self._server

    def upstream_origin(self, upstream: UpstreamConfig) -> str:
        """Start (once per address) the reference an ``upstream: {builtin: reference, port: N}``
        names, on that fixed port so a relay's channel can point at it; its origin.

        Started on first use (by the process that runs the provider's fidelity checks), not
        with the run: under xdist only one worker may hold the port.  Raises OSError when the
        port is taken.
        """
        from conformance.reference.server import ReferenceServer

        address = (upstream.host, upstream.port or 0)
        with self._lock:
            server = self._upstreams.get(address)
            if server is None:
                server = ReferenceServer(api_key=upstream.api_key, host=upstream.host,
                                         port=upstream.port or 0).start()
                self._upstreams[address] = server
            return server.origin

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        with self._lock:
            for server in self._upstreams.values():
                server.stop()
            self._upstreams.clear()
