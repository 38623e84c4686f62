"""The engine: runs checks concurrently on a background asyncio loop.

pytest runs items one at a time.  So that a run costs the slowest provider's time rather than
the sum of every request, the engine is handed checks as early as the process knows them
(before the first item runs, or as an xdist worker receives them) and runs each as one task:
providers side by side, and within a provider at most ``concurrency`` checks at once.  A check's
requests (a control and its test) stay together inside its task.  pytest items then wait for
their own :class:`~conformance.results.Result`.  This module never imports pytest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import threading
import time
import traceback
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from conformance import warmup
from conformance.checks.context import CheckContext, ProviderRuntime
from conformance.checks.registry import Check
from conformance.config import ProviderConfig, UpstreamConfig
from conformance.cost_table import CHAINS
from conformance.errors import Failure, NotApplicable, SuiteError, TransportError, Unsupported
from conformance.exchange import Exchange
from conformance.i18n import BUDGET_SPENT
from conformance.preflight import ProviderProblem, preflight
from conformance.redact import Redactor
from conformance.results import Outcome, Result, Sanitized, one_line
from conformance.slots import PRIORITY, WAITING, Priority, Waiting
from conformance.stability import fold
from conformance.transport import ProviderClient
from conformance.upstream import UpstreamClient

#: Checks of one provider admitted at once per request slot (``concurrency:``).
CHECKS_PER_SLOT = 4
#: Checks admitted at once across all providers.  A run of many providers is bound by the
#: suite's CPU, not by its requests in flight: 100 providers × 128 admitted checks held ~100 MB
#: of waiting requests; 1,024 still keep ~300 checks a second going at 3 s per request.
MAX_CHECKS_IN_FLIGHT = 1024

_Judged = tuple[Outcome, str, dict[str, object]]


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, even one whose ``str()`` itself raises."""
    try:
        text = str(exc)
    except Exception as inner:
        text = f"(its message cannot be shown: str() raised {type(inner).__name__})"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def judge(check: Check, ctx: CheckContext) -> _Judged:
    """Run one check function and map what it raised to an outcome (docs/CONTRACT.md)."""
    extra: dict[str, object] = {}
    outcome: Outcome
    try:
        message = await check.func(ctx) or "as specified"
        outcome = "pass"
    except Failure as exc:
        outcome, message = "fail", exc.message
        if exc.event is not None:
            extra["event_about"] = exc.event
    except Unsupported as exc:
        outcome, message = "unsupported", exc.message
    except NotApplicable as exc:
        outcome, message = "skip", exc.message
    except TransportError as exc:
        outcome, message = "error", str(exc)
    except SuiteError as exc:
        outcome, message = "error", describe(exc)
    except Exception as exc:  # a bug in the suite: never a verdict about the provider
        outcome, message = "error", f"suite fault: {describe(exc)}"
        extra["traceback"] = traceback.format_exc(limit=8)
    return outcome, message, extra


@dataclasses.dataclass
class _Run:
    """One run of a check: its verdict, and its context (None when it did not start)."""

    outcome: Outcome
    message: str
    duration: int
    ctx: CheckContext | None
    extra: dict[str, object] = dataclasses.field(default_factory=dict)

    def evidence(self, offset: int = 0) -> dict[str, object]:
        """The run's evidence; ``offset``: how many exchanges of earlier runs come before
        this run's in the result (``evidence.event`` counts from the result's first)."""
        if self.ctx is None:
            return {}
        extra = dict(self.extra)
        about = extra.pop("event_about", None)
        evidence = {"exchanges": Engine._evidence(self.ctx.exchanges,
                                                  self.ctx.client.redactor),
                    **self.ctx.facts,
                    **extra}
        if isinstance(about, tuple):
            where = Engine._event_at(self.ctx.exchanges, *about)
            if where is not None:
                evidence["event"] = {**where, "exchange": where["exchange"] + offset}
        return evidence


class Engine:
    """Owns one event loop thread, one client per provider, and the check tasks."""

    def __init__(self, providers: Sequence[ProviderConfig],
                 start_upstream: Callable[[UpstreamConfig], str] | None = None, *,
                 max_tokens: int | None = None, repeat: int = 1) -> None:
        self._providers: Mapping[str, ProviderConfig] = {p.name: p for p in providers}
        self._start_upstream = start_upstream
        #: The run budget (``--max-tokens``) and what the providers' usage reported so far.
        self._budget = max_tokens
        #: ``--repeat K``: each check runs K times, nothing shared across runs.
        self._repeat = max(1, repeat)
        self._spent = 0
        self._counted: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="conformance-engine", daemon=True
        )
        self._runtimes: dict[str, ProviderRuntime] = {}
        # Loop-thread state: one preflight per provider, and the provider's check tasks.
        self._preflights: dict[str, asyncio.Task[ProviderProblem | None]] = {}
        self._tasks: dict[str, dict[asyncio.Task[Result], Check]] = {}  # while they run
        #: Each submitted (check, provider) in submission order: its future while it runs, its
        #: Result once judged.  A finished concurrent future keeps its asyncio task (through
        #: the callback that chained them), a Condition and a deque: ~2.6 KB per check, 40 MB
        #: at 100 providers, for nothing once the result is in.
        self._futures: dict[tuple[str, str], concurrent.futures.Future[Result] | Result] = {}
        self._lock = threading.RLock()  # a future done at once calls _keep_result in submit
        self._closed = False
        self._admitted = asyncio.Semaphore(MAX_CHECKS_IN_FLIGHT)

    def submit(self, check: Check, provider: str) -> concurrent.futures.Future[Result]:
        """Schedule ``check`` against ``provider`` (once; later calls return the same future)."""
        key = (check.id, provider)
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            entry = self._futures.get(key)
            if isinstance(entry, Result):
                done: concurrent.futures.Future[Result] = concurrent.futures.Future()
                done.set_result(entry)
                return done
            if entry is None:
                if not self._thread.is_alive():
                    self._thread.start()
                if check.prepare is not None and not self._providers[provider].skip_reason:
                    warmup.start(check.prepare)  # begins while the preflight is in flight
                # Submission order is slot priority (conformance.slots): earlier checks first.
                entry = asyncio.run_coroutine_threadsafe(
                    self._run(check, provider, len(self._futures)), self._loop)
                self._futures[key] = entry
                entry.add_done_callback(functools.partial(self._keep_result, key))
            return entry

    def _keep_result(self, key: tuple[str, str],
                     future: concurrent.futures.Future[Result]) -> None:
        """A judged check: keep its Result in place of its future (same position)."""
        if future.cancelled() or future.exception() is not None:
            return
        with self._lock:
            if self._futures.get(key) is future:
                self._futures[key] = future.result()

    def result(self, check: Check, provider: str) -> Result:
        """Block until ``check`` has been judged against ``provider``."""
        with self._lock:
            entry = self._futures.get((check.id, provider))
        if isinstance(entry, Result):
            return entry
        return self.submit(check, provider).result()

    def finished(self) -> list[Result]:
        """The results judged so far, in submission order (what an interrupted run keeps)."""
        with self._lock:
            entries = list(self._futures.values())
        results: list[Result] = []
        for entry in entries:
            if not isinstance(entry, Result):
                if not entry.done() or entry.cancelled() or entry.exception() is not None:
                    continue  # still running, cancelled, or failed in the suite
                entry = entry.result()
            results.append(entry)
        return results

    def _runtime(self, provider: ProviderConfig) -> ProviderRuntime:
        runtime = self._runtimes.get(provider.name)
        if runtime is None:
            runtime = ProviderRuntime(
                provider=provider,
                client=ProviderClient(provider),
                # Checks admitted at once: several per request slot (a check waiting on a
                # shared request or judging holds none), one per slot under a token budget,
                # which is weighed as each check ends.
                semaphore=asyncio.Semaphore(provider.concurrency * (
                    1 if self._budget is not None else CHECKS_PER_SLOT)),
                upstream=(UpstreamClient(provider, self._start_upstream)
                          if provider.upstream is not None else None),
            )
            self._runtimes[provider.name] = runtime
        return runtime

    async def _run(self, check: Check, name: str, priority: int) -> Result:
        """The check's result; whatever goes wrong in the suite is that check's ``error`` with
        a one-line message, never an exception for pytest to format."""
        # The requests it is expected to send: checks with long chains start first.
        PRIORITY.set(Priority(priority, expected=CHAINS.get(check.id, 1)))
        try:
            return await self._judged(check, name)
        except Exception as exc:  # a suite fault outside judge() (preflight, evidence, ...)
            provider = self._providers[name]
            model = provider.model_for(check.behavior)
            message = one_line(f"suite fault: {describe(exc)}")[:500]
            evidence: dict[str, object] = {"traceback": traceback.format_exc(limit=8)}
            if name in self._runtimes:
                return self._result(self._runtimes[name], check, model, "error", message, 0,
                                    evidence)
            return Result(name, model, check.id, check.behavior, "error", message, 0,
                          Redactor(provider.secrets).data(evidence))

    async def _judged(self, check: Check, name: str) -> Result:
        provider = self._providers[name]
        model = provider.model_for(check.behavior)
        if provider.skip_reason:
            return Result(name, model, check.id, check.behavior, "skip", provider.skip_reason, 0)
        runtime = self._runtime(provider)
        current = asyncio.current_task()
        if current is not None and not check.runs_last:
            tasks = self._tasks.setdefault(name, {})
            tasks[current] = check  # until it is done (a done task holds its result)
            current.add_done_callback(lambda task: tasks.pop(task, None))
        problem = await self._preflight(runtime)
        if problem is not None and problem.blocks(check):
            evidence: dict[str, object] = {"provider_problem": problem.kind,
                                           "exchanges": self._evidence(problem.exchanges,
                                                                       runtime.client.redactor)}
            return self._result(runtime, check, model, "error", problem.message, 0, evidence)
        if check.runs_last:
            await self._others_finished(name)
        if check.prepare is not None:
            await warmup.ready(check.prepare)
        runs = [await self._once(runtime, check, model, index) for index in range(self._repeat)]
        if len(runs) == 1:
            run = runs[0]
            return self._result(runtime, check, model, run.outcome, run.message, run.duration,
                                run.evidence())
        return self._folded(runtime, check, model, runs)

    async def _once(self, runtime: ProviderRuntime, check: Check, model: str,
                    repeat: int) -> _Run:
        """One run of ``check`` (the ``repeat``-th of ``--repeat K``), admitted by the
        provider's semaphore and the run's (:data:`MAX_CHECKS_IN_FLIGHT`), under the run
        budget."""
        provider = runtime.provider
        async with runtime.semaphore, self._admitted:
            if self._budget is not None and self._spent >= self._budget:
                return _Run("skip", BUDGET_SPENT.format(
                    budget=f"{self._budget:,}", spent=f"{self._spent:,}"), 0, None)
            started = time.perf_counter()
            ctx = CheckContext(runtime, model, repeat)
            deadline = provider.timeouts.check_deadline
            judged = await self._within(judge(check, ctx), deadline)
            outcome: Outcome
            extra: dict[str, object]
            if judged is None:
                outcome, extra = "error", {}
                message = (f"check exceeded its {deadline:g} s deadline (timeouts.check): the "
                           f"provider was too slow to judge")
            else:
                outcome, message, extra = judged
            duration = int((time.perf_counter() - started) * 1000)
        self._spend(ctx.exchanges)
        return _Run(outcome, message, duration, ctx, extra)

    @staticmethod
    async def _within(judging: Coroutine[Any, Any, _Judged], deadline: float
                      ) -> _Judged | None:
        """Await ``judging`` for at most ``deadline`` seconds of the check's own time: its
        requests, retries and judging together (``timeouts.check``), not the time its requests
        waited for a free slot behind other checks'.  None when the deadline passed."""
        waiting = Waiting()
        WAITING.set(waiting)  # this task's context: the judging task copies it
        task = asyncio.ensure_future(judging)
        credited = 0.0
        end = time.perf_counter() + deadline
        try:
            while True:
                done, _ = await asyncio.wait({task},
                                             timeout=max(0.0, end - time.perf_counter()))
                if done:
                    return task.result()
                waited = waiting.seconds()
                if waited - credited <= 0.001:
                    break
                end += waited - credited
                credited = waited
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return None

    def _folded(self, runtime: ProviderRuntime, check: Check, model: str,
                runs: Sequence[_Run]) -> Result:
        """One result for the K runs of ``--repeat K`` (:func:`conformance.stability.fold`):
        every run's exchanges are evidence (each marked with its ``repeat``, 1-based), the
        measured facts are those of the run the message speaks for."""
        redactor = runtime.client.redactor
        records = [{"outcome": run.outcome, "message": one_line(redactor.text(run.message)),
                    "duration_ms": run.duration} for run in runs]
        folded = fold(records)
        exchanges: list[dict[str, object]] = []
        offset = 0
        for number, run in enumerate(runs, 1):
            if number - 1 == folded.representative:
                offset = len(exchanges)
            if run.ctx is not None:
                exchanges += [{**record, "repeat": number}
                              for record in self._evidence(run.ctx.exchanges, redactor)]
        chosen = runs[folded.representative]
        evidence: dict[str, object] = {**chosen.evidence(offset), "exchanges": exchanges}
        result = self._result(runtime, check, model, folded.outcome, folded.message,
                              sum(run.duration for run in runs), evidence)
        return dataclasses.replace(result, runs=tuple(records), flaky=folded.flaky)

    def _spend(self, exchanges: Sequence[Exchange]) -> None:
        """Add the tokens these exchanges' usage reported to the run's spending (a shared
        exchange once)."""
        for exchange in exchanges:
            if exchange.id in self._counted:
                continue
            self._counted.add(exchange.id)
            usage = exchange.usage()  # Anthropic's input/output_tokens under OpenAI's names
            if isinstance(usage, dict):
                for key in ("prompt_tokens", "completion_tokens"):
                    value = usage.get(key)
                    if isinstance(value, int) and not isinstance(value, bool):
                        self._spent += value

    def _preflight(self, runtime: ProviderRuntime) -> asyncio.Task[ProviderProblem | None]:
        """The provider's one preflight (:mod:`conformance.preflight`), shared by its checks."""
        name = runtime.provider.name
        task = self._preflights.get(name)
        if task is None:
            task = asyncio.ensure_future(preflight(runtime))
            self._preflights[name] = task
        return task

    async def _others_finished(self, name: str) -> None:
        """Wait until every other submitted check of provider ``name`` has finished (checks
        submitted while waiting included), so a ``runs_last`` check sees what they saw."""
        while True:
            pending = [t for t in self._tasks.get(name, {}) if not t.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    @staticmethod
    def _event_at(exchanges: Sequence[Exchange], exchange_id: str, index: int
                  ) -> dict[str, int] | None:
        """``{"exchange": i, "index": n}``: the position of exchange ``exchange_id`` in the
        evidence (each exchange once, in order) and of the event in its ``response.events``."""
        ids = list(dict.fromkeys(x.id for x in exchanges))
        if exchange_id not in ids:
            return None
        return {"exchange": ids.index(exchange_id), "index": index}

    @staticmethod
    def _evidence(exchanges: Sequence[Exchange], redactor: Redactor
                  ) -> list[dict[str, object]]:
        """Each exchange once, in order, as its evidence record."""
        seen: set[str] = set()
        out: list[dict[str, object]] = []
        for exchange in exchanges:
            if exchange.id not in seen:
                seen.add(exchange.id)
                out.append(exchange.evidence_record(redactor))
        return out

    @staticmethod
    def _result(runtime: ProviderRuntime, check: Check, model: str, outcome: Outcome,
                message: str, duration: int, evidence: dict[str, object]) -> Result:
        redactor = runtime.client.redactor
        return Result(
            provider=runtime.provider.name,
            model=model,
            check=check.id,
            behavior=check.behavior,
            outcome=outcome,
            message=one_line(redactor.text(message)),
            duration_ms=duration,
            evidence=Engine._redacted(redactor, evidence),
        )

    @staticmethod
    def _redacted(redactor: Redactor, evidence: dict[str, object]) -> dict[str, object]:
        """``evidence`` redacted, but for the exchange records already redacted once for
        all (:meth:`Exchange.evidence_record`): every result they are evidence for shares
        them."""
        exchanges = evidence.get("exchanges")
        out: dict[str, object] = {}
        if isinstance(exchanges, list):
            out["exchanges"] = [record if isinstance(record, Sanitized)
                                else redactor.data(record) for record in exchanges]
        rest = redactor.data({k: v for k, v in evidence.items() if k != "exchanges"})
        out.update(rest if isinstance(rest, dict) else {})
        return out

    def close(self) -> None:
        """Cancel what has not run, close the clients and stop the loop thread."""
        with self._lock:
            self._closed = True
            futures = [e for e in self._futures.values() if not isinstance(e, Result)]
        for future in futures:
            future.cancel()
        if not self._thread.is_alive():
            self._loop.close()
            return

        async def shutdown() -> None:
            # What is still in flight (shared requests, preflights, checks of an interrupted
            # run) is cancelled and awaited, so no task is destroyed while pending.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            for runtime in self._runtimes.values():
                await runtime.client.aclose()
                if runtime.upstream is not None:
                    await runtime.upstream.aclose()

        with contextlib.suppress(concurrent.futures.TimeoutError, RuntimeError):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


def redact_all(providers: Sequence[ProviderConfig]) -> Redactor:
    """A redactor knowing every provider's secrets (for run-level artefacts)."""
    return Redactor(s for p in providers for s in p.secrets)
