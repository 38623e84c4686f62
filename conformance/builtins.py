"""Builtin providers: ``builtin: reference`` entries are served by an in-process
:class:`~conformance.reference.server.ReferenceServer` on 127.0.0.1 (random free port, random
key), started on first use and stopped at the end of the session.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from conformance.config import ProviderConfig

if TYPE_CHECKING:  # the server (Starlette, uvicorn) is imported only when a run needs it
    from conformance.reference.server import ReferenceServer


class Builtins:
    """Starts the servers builtin providers need and resolves their base URLs and keys."""

    def __init__(self) -> None:
        self._server: ReferenceServer | None = None

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

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
