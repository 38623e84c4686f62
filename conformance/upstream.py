"""The suite's side of a recording upstream: asking a conformance reference server, put behind
a relay (``upstream:`` in providers.yaml), what it received and what it answered.

The reference keeps a bounded record of every request it serves and indexes it by the
*markers* it finds in the request body (``cfm-`` followed by 10-40 lowercase letters or
digits): the suite plants one in a message's text, where relays keep it, sends the request
through the relay, then fetches ``GET /__conformance/records?marker=M``.  ``POST
/__conformance/arm`` makes the next request carrying a marker misbehave the way upstreams do
(a cut stream, a 429 with ``Retry-After``, a 500, a 400 with ``param``/``code``), so the suite
can see what the relay makes of it.  Both paths need the reference's key.

Every request to the upstream goes through a :class:`~conformance.transport.ProviderClient`
(limits, timeouts, redaction of the provider's secrets), so it is recorded as evidence too.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from conformance.config import ProviderConfig, UpstreamConfig
from conformance.errors import MalformedAnswer, SuiteError
from conformance.exchange import Exchange
from conformance.transport import ProviderClient

RECORDS_PATH = "/__conformance/records"
ARM_PATH = "/__conformance/arm"
#: What the reference can be asked to do instead of answering (docs/CONTRACT.md extensions).
BEHAVIOURS = ("cut_stream", "rate_limit", "server_error", "bad_request")
#: How long to wait for a record after the relay answered: a relay may still be reading the
#: rest of the upstream's stream, and the reference files a record when its answer ends.
RECORD_WAIT = 3.0


def new_marker() -> str:
    """A fresh marker the reference indexes records by (``cfm-`` + 16 hex digits)."""
    return "cfm-" + secrets.token_hex(8)


class UpstreamProblem(SuiteError):
    """The upstream cannot be asked (unreachable, wrong key, not a conformance reference): no
    fidelity verdict is possible; the user's configuration is at fault, not the relay."""


Record = dict[str, Any]
"""One record (docs/CONTRACT.md extensions): ``method``, ``path``, ``headers``, ``body``,
``markers``, ``response`` (``status``, ``headers``, ``body`` or ``events``, ``complete``),
``injected``."""


class UpstreamClient:
    """Fetches records from, and arms misbehaviours on, one provider's upstream reference."""

    def __init__(self, provider: ProviderConfig,
                 start: Callable[[UpstreamConfig], str] | None = None) -> None:
        if provider.upstream is None:
            raise ValueError(f"provider {provider.name!r} has no upstream")
        self.provider = provider
        self.config = provider.upstream
        self._start = start
        self._client: ProviderClient | None = None
        self._lock = asyncio.Lock()
        #: Per marker of a shared request: the one fetch of its records and its polls.
        self._fetched: dict[str, tuple[asyncio.Future[list[Record]], list[Exchange]]] = {}

    @property
    def expected_model(self) -> str | None:
        """The model the relay should ask for, when configured (else the check's model)."""
        return self.config.model

    async def _transport(self) -> ProviderClient:
        async with self._lock:
            if self._client is None:
                origin = self.config.url
                if origin is None:
                    if self._start is None:
                        raise UpstreamProblem("the builtin upstream was not started")
                    try:
                        origin = await asyncio.to_thread(self._start, self.config)
                    except OSError as exc:
                        where = f"{self.config.host}:{self.config.port}"
                        raise UpstreamProblem(f"cannot start the builtin upstream on {where}: "
                                              f"{exc.strerror or exc}") from None
                upstream = replace(
                    self.provider, name=f"{self.provider.name} upstream", base_url=origin,
                    api_key=self.config.api_key, headers={}, retries=0, upstream=None,
                )
                self._client = ProviderClient(upstream)
            return self._client

    async def start(self) -> None:
        """Start a builtin upstream now (a no-op for a running one): the relay forwards to it
        as soon as the first request is sent."""
        await self._transport()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    @property
    def where(self) -> str:
        if self.config.url:
            return self.config.url
        return f"the builtin upstream on {self.config.host}:{self.config.port}"

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[Any, Exchange]:
        client = await self._transport()
        try:
            exchange = await client.request(method, path, json_body=body)
        except (SuiteError, MalformedAnswer) as exc:  # never the relay's finding: no verdict
            raise UpstreamProblem(f"the upstream {self.where} cannot be asked: {exc}") from None
        if exchange.status in (401, 403):
            raise UpstreamProblem(f"the upstream {self.where} refused the key in upstream."
                                  f"api_key (HTTP {exchange.status})")
        if exchange.status != 200 or not isinstance(exchange.json, dict):
            raise UpstreamProblem(
                f"the upstream {self.where} is not a conformance reference server that records "
                f"(HTTP {exchange.status} to {path}; start it with `conformance serve-reference`)")
        return exchange.json, exchange

    async def arm(self, marker: str, behaviour: str, record: Callable[[Exchange], None],
                  **params: int) -> None:
        """Make the next ``times`` (default 1) requests carrying ``marker`` get ``behaviour``."""
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        _, exchange = await self._call("POST", ARM_PATH,
                                       {"marker": marker, "behaviour": behaviour, **params})
        record(exchange)

    async def records(self, marker: str, record: Callable[[Exchange], None], *,
                      wait: float = RECORD_WAIT, share: bool = False) -> list[Record]:
        """The records of requests carrying ``marker``, oldest first, once the last one's answer
        has ended (or after ``wait`` seconds, with what there is: maybe nothing).

        ``share``: the marker's request is shared by several checks, which may judge it long
        after it was answered: its records are fetched once, right after the first answer,
        and every caller gets them (and the polls as evidence).  Asked again later, the
        reference may have dropped them from its bounded buffer (many providers or models
        through one reference)."""
        if share:
            entry = self._fetched.get(marker)
            if entry is None:
                polls: list[Exchange] = []
                entry = (asyncio.ensure_future(self._poll(marker, polls.append, wait)), polls)
                self._fetched[marker] = entry
            task, polls = entry
            found = await asyncio.shield(task)
            for exchange in polls:
                record(exchange)
            return found
        return await self._poll(marker, record, wait)

    async def _poll(self, marker: str, record: Callable[[Exchange], None], wait: float
                    ) -> list[Record]:
        deadline = time.monotonic() + wait
        pause = 0.05
        while True:
            data, exchange = await self._call("GET", f"{RECORDS_PATH}?marker={marker}")
            found = [r for r in data.get("data") or [] if isinstance(r, dict)]
            settled = bool(found) and all(_ended(r) for r in found)
            if settled or time.monotonic() + pause > deadline:
                break
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.4)
        record(exchange)  # the last poll is the evidence
        return found


def _ended(record: Record) -> bool:
    response = record.get("response")
    return isinstance(response, dict) and response.get("status") is not None
