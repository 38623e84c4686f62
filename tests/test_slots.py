"""Request slots (conformance/slots.py): a provider never sees more than ``concurrency``
requests in flight, whoever sends them (the suite's transport, the SDK's recording client),
a free slot goes to the check that started first, and a check's deadline leaves out the time
its requests queued behind other checks'."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.checks.registry import Check
from conformance.config import Timeouts
from conformance.engine import Engine
from conformance.reference.server import ThreadedServer
from conformance.slots import PRIORITY, SHARED_HOPS, Priority, Slots
from conformance.transport import ProviderClient
from tests.conftest import provider_config

KEY = "sk-slots-unit-0123456789"
DELAY = 0.2


class InFlight:
    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.total = 0
        self.lock = threading.Lock()

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


FLIGHT = InFlight()


async def models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "m", "object": "model"}]})


async def chat(request: Request) -> Response:
    body = json.loads(await request.body())
    FLIGHT.enter()
    if not body.get("stream"):
        try:
            await asyncio.sleep(DELAY)
            return JSONResponse({"id": "c", "object": "chat.completion", "choices": []})
        finally:
            FLIGHT.leave()

    async def events() -> Any:
        try:
            for n in range(4):
                await asyncio.sleep(DELAY / 4)
                yield f'data: {{"n": {n}}}\n\n'.encode()
            yield b"data: [DONE]\n\n"
        finally:
            FLIGHT.leave()

    return StreamingResponse(events(), media_type="text/event-stream")


#: The answer time of ``/slow/v1``, for the deadline test.
SLOW = 0.4


async def slow_chat(request: Request) -> Response:
    FLIGHT.enter()
    try:
        await asyncio.sleep(SLOW)
        return JSONResponse({"id": "c", "object": "chat.completion", "choices": []})
    finally:
        FLIGHT.leave()


APP = Starlette(routes=[Route("/v1/models", models),
                        Route("/v1/chat/completions", chat, methods=["POST"]),
                        Route("/slow/v1/models", models),
                        Route("/slow/v1/chat/completions", slow_chat, methods=["POST"])])


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    with ThreadedServer(APP) as server:
        yield server.origin


@pytest.fixture(autouse=True)
def fresh_count() -> None:
    FLIGHT.now = FLIGHT.most = FLIGHT.total = 0


def test_a_free_slot_goes_to_the_check_that_started_first() -> None:
    order: list[int] = []

    async def go() -> None:
        slots = Slots(1)
        await slots.acquire()  # held: everyone below queues

        async def waiter(priority: int) -> None:
            PRIORITY.set(Priority(priority))
            async with slots.slot():
                order.append(priority)
                await asyncio.sleep(0)

        tasks = [asyncio.ensure_future(waiter(p)) for p in (5, 3, 9, 1, 7)]
        await asyncio.sleep(0.01)
        slots.release()
        await asyncio.gather(*tasks)

    asyncio.run(go())
    assert order == [1, 3, 5, 7, 9]


def test_the_longest_chain_still_to_send_goes_first() -> None:
    """A shared request first; then the most requests still to send (a check of five
    dependent requests before single-request ones, whatever their submission order); then the
    most already sent (a chain under way is finished); then submission order."""
    order: list[str] = []

    async def go() -> None:
        slots = Slots(1)
        await slots.acquire()

        async def waiter(name: str, priority: Priority) -> None:
            PRIORITY.set(priority)
            async with slots.slot():
                order.append(name)
                await asyncio.sleep(0)

        waiting = {
            "fresh single, submitted first": Priority(0, expected=1),
            "fresh single, submitted later": Priority(7, expected=1),
            "single under way (2 sent)": Priority(5, hops=2, expected=1),
            "fresh chain of 5": Priority(9, expected=5),
            "chain of 5, 3 sent (2 left)": Priority(3, hops=3, expected=5),
            "fresh chain of 3": Priority(8, expected=3),
            "shared": Priority(-1, SHARED_HOPS),
        }
        tasks = [asyncio.ensure_future(waiter(n, p)) for n, p in waiting.items()]
        await asyncio.sleep(0.01)
        slots.release()
        await asyncio.gather(*tasks)

    asyncio.run(go())
    assert order == ["shared", "fresh chain of 5", "fresh chain of 3",
                     "chain of 5, 3 sent (2 left)", "single under way (2 sent)",
                     "fresh single, submitted first", "fresh single, submitted later"]


def test_checks_starting_together_all_queue_before_free_slots_are_handed_out() -> None:
    """Two free slots, six checks starting at once: the two of highest priority get them,
    even though they reach the queue several loop iterations after the others (a shared
    request created by one check, a check that awaits a probe first)."""
    got: list[int] = []

    async def go() -> None:
        slots = Slots(2)

        async def check(priority: int, late: int) -> None:
            PRIORITY.set(Priority(priority))
            for _ in range(late):
                await asyncio.sleep(0)
            async with slots.slot():
                got.append(priority)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(check(p, late) for p, late in
                               ((5, 0), (6, 0), (7, 0), (8, 0), (1, 3), (2, 4))))

    asyncio.run(go())
    assert got[:2] == [1, 2], got


def test_a_cancelled_waiter_passes_its_slot_on() -> None:
    async def go() -> list[str]:
        slots = Slots(1)
        await slots.acquire()
        got: list[str] = []

        async def waiter(name: str) -> None:
            async with slots.slot():
                got.append(name)

        first = asyncio.ensure_future(waiter("first"))
        second = asyncio.ensure_future(waiter("second"))
        await asyncio.sleep(0.01)
        slots.release()  # handed to "first" ...
        first.cancel()  # ... which is cancelled before it runs: "second" must get it
        await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 2)
        async with slots.slot():  # and the slot came back afterwards
            got.append("again")
        return got

    assert asyncio.run(go()) == ["second", "again"]


def test_requests_in_flight_never_exceed_concurrency(origin: str) -> None:
    """Twelve requests at once, half through the transport (streams and plain), half through
    the recording client a third-party SDK uses: the server sees at most two at a time."""
    config = provider_config(f"{origin}/v1", KEY, concurrency=2)

    async def go() -> None:
        client = ProviderClient(config)
        sdk = client.recording_client(lambda exchange: None)
        try:
            async def own(stream: bool) -> None:
                exchange = await client.request("POST", "/chat/completions",
                                                json_body={"model": "m", "stream": stream},
                                                stream=stream)
                assert exchange.status == 200

            async def third_party(stream: bool) -> None:
                async with sdk.stream("POST", f"{origin}/v1/chat/completions",
                                      json={"model": "m", "stream": stream}) as response:
                    await response.aread()
                    assert response.status_code == 200

            await asyncio.gather(*(own(n % 2 == 0) for n in range(6)),
                                 *(third_party(n % 2 == 0) for n in range(6)))
        finally:
            await sdk.aclose()
            await client.aclose()

    asyncio.run(go())
    assert FLIGHT.total == 12
    assert FLIGHT.most == 2, f"{FLIGHT.most} requests in flight with concurrency 2"


def test_a_checks_deadline_leaves_out_its_wait_for_a_slot(origin: str) -> None:
    """Four one-request checks (as many as the engine admits per request slot) on a provider
    with one slot answering in 0.4 s: the last waits ~3 × 0.4 s for its turn, so its request
    ends past its 1.2 s deadline, yet its own time is 0.4 s: it passes (without the wait left
    out, it is an error).  A check whose own time passes the deadline is still an error (the
    control).  Each quick check has 0.8 s to spare for a loaded machine (at 0.2 s against
    0.6 s, four xdist workers on two cores once made them take longer)."""

    async def one_request(ctx: Any) -> str:
        exchange = await ctx.chat(messages=[{"role": "user", "content": "hi"}])
        assert exchange.status == 200
        return "answered"

    async def four_requests(ctx: Any) -> str:
        for _ in range(4):  # 4 × 0.4 s of its own: past 1.2 s
            await ctx.chat(messages=[{"role": "user", "content": "again"}])
        return "answered"

    quick = [Check(id=f"slots.quick{n}", title="quick", behavior="chat", spec="-", proves="-",
                   func=one_request, module="tests") for n in range(4)]
    long = Check(id="slots.long", title="long", behavior="chat", spec="-", proves="-",
                 func=four_requests, module="tests")
    config = provider_config(f"{origin}/slow/v1", KEY, concurrency=1,
                             timeouts=Timeouts(total=5, check=1.2))
    engine = Engine([config])
    try:
        futures = [engine.submit(check, "t") for check in [*quick, long]]
        results = [future.result(timeout=30) for future in futures]
    finally:
        engine.close()
    assert [r.outcome for r in results[:-1]] == ["pass"] * 4, [r.message for r in results]
    assert results[-1].outcome == "error"
    assert "deadline" in results[-1].message
    assert FLIGHT.most == 1
