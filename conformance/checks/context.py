"""What a running check sees: its provider, its model, and a way to send requests.

Every request goes through the provider's :class:`~conformance.transport.ProviderClient` and
is recorded, so the exchanges a check made become its evidence.  Identical requests marked
``share=True`` are sent once per provider and model (stop checks share one control request),
and once per repeat under ``--repeat K``: repeats never share a request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from conformance.config import ProviderConfig
from conformance.exchange import Auth, Exchange
from conformance.slots import PRIORITY, SHARED_HOPS, WAITING, Priority, Waiting, add_hop
from conformance.transport import ProviderClient
from conformance.upstream import UpstreamClient


@dataclass
class ProviderRuntime:
    """Per-provider state on the engine's event loop."""

    provider: ProviderConfig
    client: ProviderClient
    semaphore: asyncio.Semaphore
    memo: dict[str, tuple[asyncio.Future[Exchange], Waiting]] = field(default_factory=dict)
    upstream: UpstreamClient | None = None
    """The recording reference behind a relay (``upstream:``), else None."""
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, name: str, make: Callable[[], str]) -> str:
        """A value made once per provider and ``name`` (a marker shared requests carry)."""
        if name not in self.tokens:
            self.tokens[name] = make()
        return self.tokens[name]

    async def shared(self, key: str, send: Callable[[], Awaitable[Exchange]]) -> Exchange:
        """Send once per key; concurrent callers await the same task.  The time the request
        waited for a slot counts as waiting for each caller (:class:`~conformance.slots.
        Waiting`), not against their deadlines."""
        entry = self.memo.get(key)
        if entry is None:
            waited = Waiting()

            async def run() -> Exchange:
                # In the task's own copy of the context: its wait is its own, and it goes
                # before every check's own request (others wait on it: a probe, a control).
                WAITING.set(waited)
                PRIORITY.set(Priority(-1, SHARED_HOPS))
                return await send()

            entry = (asyncio.ensure_future(run()), waited)
            self.memo[key] = entry
        task, waited = entry
        mine = WAITING.get()
        before = waited.seconds()
        try:
            return await asyncio.shield(task)
        finally:
            if mine is not None:
                mine.add(waited.seconds() - before)


class CheckContext:
    """Handed to each check function; collects the exchanges it makes."""

    def __init__(self, runtime: ProviderRuntime, model: str, repeat: int = 0) -> None:
        self._runtime = runtime
        #: Which of ``--repeat K`` runs this is (0-based): part of every shared request's key
        #: and of every per-provider token, so repeats never share a request or a marker.
        self.repeat = repeat
        self.provider = runtime.provider
        self.model = model
        self.exchanges: list[Exchange] = []
        #: Numbers a check measured, kept in its result's evidence under their keys (e.g.
        #: ``billing``: prompt tokens billed and counted) for reports to read.
        self.facts: dict[str, Any] = {}

    @property
    def upstream(self) -> UpstreamClient | None:
        """The provider's recording upstream (``upstream:`` in providers.yaml), else None."""
        return self._runtime.upstream

    def token(self, name: str, make: Callable[[], str]) -> str:
        """A value made once per provider, ``name`` and repeat (see
        :meth:`ProviderRuntime.token`)."""
        return self._runtime.token(f"{name}#{self.repeat}" if self.repeat else name, make)

    def record(self, exchange: Exchange) -> None:
        """Keep an exchange made outside :meth:`request` (e.g. with the upstream) as evidence."""
        self.exchanges.append(exchange)
        add_hop()

    @property
    def client(self) -> ProviderClient:
        """The provider's transport; third-party clients (the official SDK) talk through its
        :meth:`~ProviderClient.recording_client`, recording into :attr:`exchanges`."""
        return self._runtime.client

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: Auth = "key",
        stream: bool = False,
        share: bool = False,
        retries: int | None = None,
    ) -> Exchange:
        """Send one request through the provider's client and record it as evidence
        (``retries`` overrides the provider's: 0 to see a 429 or a cut stream as it came)."""
        client = self._runtime.client

        def send() -> Awaitable[Exchange]:
            return client.request(
                method, path, json_body=json_body, content=content, headers=headers, auth=auth,
                stream=stream, retries=retries,
            )

        sending: Awaitable[Exchange]
        if share:
            key = json.dumps(
                [method, path, json_body, content.decode("utf-8", "replace") if content else None,
                 headers, auth, stream, retries, self.repeat],
                sort_keys=True, default=str,
            )
            sending = self._runtime.shared(key, send)
        else:
            sending = send()
        try:
            exchange = await sending
        except Exception as exc:  # what was sent, and what came back, is evidence too
            recorded = getattr(exc, "exchange", None)
            if isinstance(recorded, Exchange):
                self.exchanges.append(recorded)
            raise
        self.exchanges.append(exchange)
        add_hop()  # its next request goes before new checks' first ones
        return exchange

    async def chat(
        self, *, stream: bool = False, auth: Auth = "key", share: bool = False,
        retries: int | None = None, **fields: Any
    ) -> Exchange:
        """POST /chat/completions with ``{"model": <the check's model>, **fields}`` plus the
        provider's ``request_defaults`` for fields the check does not set."""
        body: dict[str, Any] = {"model": self.model, **self.provider.request_defaults, **fields}
        if stream:
            body["stream"] = True
        return await self.request(
            "POST", "/chat/completions", json_body=body, auth=auth, stream=stream, share=share,
            retries=retries,
        )

    async def chat_apart(self, *, stream: bool = False, **fields: Any) -> Exchange:
        """:meth:`chat` (never shared), sent and read by a client of its own on an event loop
        of its own in a worker thread: none of the engine loop's other tasks can hold up its
        reading (``streaming.real_time`` resends a stream the engine's busy loop may have read
        late this way).  Recorded as evidence like any request."""
        body: dict[str, Any] = {"model": self.model, **self.provider.request_defaults, **fields}
        if stream:
            body["stream"] = True
        provider = self.provider
        limited: list[Exchange] = []

        async def send() -> Exchange:
            client = ProviderClient(provider)
            try:
                return await client.request("POST", "/chat/completions", json_body=body,
                                            stream=stream)
            finally:
                if client.rate_limited is not None:
                    limited.append(client.rate_limited)
                await client.aclose()

        try:
            # The thread's client has slots of its own: this holds one of the provider's.
            async with self._runtime.client.slots.slot():
                exchange = await asyncio.to_thread(lambda: asyncio.run(send()))
        except Exception as exc:
            recorded = getattr(exc, "exchange", None)
            if isinstance(recorded, Exchange):
                self.exchanges.append(recorded)
            raise
        finally:
            if limited:  # a 429 seen there is one of this run's (sdk.rate_limit)
                self._runtime.client.rate_limited = limited[-1]
        self.exchanges.append(exchange)
        return exchange

    async def get(self, path: str, *, auth: Auth = "key", share: bool = False) -> Exchange:
        return await self.request("GET", path, auth=auth, share=share)
