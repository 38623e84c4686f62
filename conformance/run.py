"""One run of the suite in one process: providers, report directory, engine and result files.

The pytest layer (:mod:`conformance.pytest_support`) drives it; it never imports pytest.
Under xdist each worker has its own :class:`Run` writing ``results.<worker>.jsonl`` and the
controller's :class:`Run` merges what the workers hand over through ``workeroutput``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from conformance import __version__
from conformance.builtins import Builtins
from conformance.checks.registry import Check, all_checks
from conformance.config import ProviderConfig, ProvidersConfig
from conformance.engine import Engine
from conformance.redact import Redactor
from conformance.report import write_reports
from conformance.results import Result, ResultLog, RunData, now_iso, write_json


def new_run_id() -> str:
    """``20261121T232600Z-3fa2``: sortable, unique enough for one machine."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def provider_entry(provider: ProviderConfig) -> dict[str, Any]:
    """The ``providers[]`` entry of results.json: never a key."""
    base_url = f"builtin:{provider.builtin}" if provider.builtin else provider.base_url or ""
    # A password in the URL is a configured secret too.
    base_url = Redactor(provider.secrets).text(base_url)
    entry: dict[str, Any] = {
        "name": provider.name,
        "base_url": base_url,
        "models": {"default": provider.model, **dict(provider.models)},
    }
    if provider.builtin and provider.faults:
        entry["faults"] = list(provider.faults)
    if provider.skip_reason:
        entry["skipped"] = provider.skip_reason
    if provider.key_variables:  # the variable's name, never its value ("Copy as curl")
        entry["api_key_env"] = provider.key_variables[0]
    if provider.docs:
        entry["docs"] = provider.docs
    if provider.price is not None:
        entry["price"] = {"input": provider.price.input, "output": provider.price.output}
    return entry


class Run:
    """State of one process's share of a run."""

    def __init__(
        self,
        config: ProvidersConfig,
        report_dir: Path,
        run_id: str,
        *,
        worker: str | None = None,
        started_at: str | None = None,
        max_tokens: int | None = None,
        repeat: int = 1,
    ) -> None:
        self.config = config
        self.providers = list(config.providers)
        self.report_dir = report_dir
        self.run_id = run_id
        self.worker = worker
        self.started_at = started_at or now_iso()
        self._t0 = time.perf_counter()
        self.results: list[Result] = []
        name = f"results.{worker}.jsonl" if worker else "results.jsonl"
        self.log = ResultLog(report_dir / name)
        self._engine: Engine | None = None
        self._builtins = Builtins()
        self.max_tokens = max_tokens
        #: ``--repeat K``: every check runs K times (:mod:`conformance.stability`).
        self.repeat = repeat
        self._meta_written = False
        #: The (check id, provider) pairs this run set out to judge (controller only).
        self.planned: list[tuple[str, str]] | None = None
        self.data: RunData | None = None

    @property
    def checks(self) -> list[Check]:
        return all_checks()

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self._builtins.resolve(self.providers),
                                  self._builtins.upstream_origin, max_tokens=self.max_tokens,
                                  repeat=self.repeat)
        return self._engine

    def submit(self, pairs: Iterable[tuple[Check, str]]) -> None:
        """Start checks early so they run concurrently while pytest walks its items; the
        controller also records them as the run's plan."""
        pairs = list(pairs)
        if self.worker is None:
            self.plan((check.id, provider) for check, provider in pairs)
        for check, provider in pairs:
            self.engine.submit(check, provider)

    def plan(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record the (check id, provider) pairs the run will judge and write run.json now,
        so a killed run's reports can say what did not run (controller only)."""
        new = list(dict.fromkeys(pairs))
        if not new or self.worker is not None:
            return
        self.planned = list(dict.fromkeys([*(self.planned or []), *new]))
        write_json(self.report_dir / "run.json", self.meta())
        self._meta_written = True

    def result(self, check: Check, provider: str) -> Result:
        return self.engine.result(check, provider)

    def meta(self) -> dict[str, Any]:
        return {
            "format": "conformance-run/1",
            "run": {
                "id": self.run_id,
                "started_at": self.started_at,
                "finished_at": None,
                "suite_version": __version__,
                "providers_file": self.config.path,
                **({"repeat": self.repeat} if self.repeat > 1 else {}),
            },
            "providers": [provider_entry(p) for p in self.providers],
            "checks": [c.catalogue_entry() for c in self.checks],
            **({"planned": [list(pair) for pair in self.planned]}
               if self.planned is not None else {}),
        }

    def record(self, result: Result) -> None:
        """Keep a finished result and append it to this process's JSON Lines file."""
        if not self._meta_written and self.worker is None:
            write_json(self.report_dir / "run.json", self.meta())
            self._meta_written = True
        self.results.append(result)
        self.log.append(result)

    def record_finished(self) -> None:
        """Record what the engine judged but no item asked for yet: an interrupted run keeps
        every verdict it paid for."""
        if self._engine is None:
            return
        recorded = {(r.check, r.provider) for r in self.results}
        for result in self._engine.finished():
            if (result.check, result.provider) not in recorded:
                self.record(result)

    def finish(self, worker_results: Iterable[Result] = ()) -> RunData | None:
        """Merge, write results.json, results.jsonl, junit.xml and matrix.html; None if no
        check ran (e.g. ``--collect-only``)."""
        results = [*self.results, *worker_results]
        if not results:
            return None
        meta = self.meta()
        run = dict(meta["run"])
        run["finished_at"] = now_iso()
        run["duration_ms"] = int((time.perf_counter() - self._t0) * 1000)
        self.data = RunData(run=run, providers=meta["providers"], checks=meta["checks"],
                            results=results, planned=self.planned)
        if not self._meta_written:
            write_json(self.report_dir / "run.json", meta)
        self.log.close()
        self._merge_jsonl()
        write_reports(self.report_dir, self.data)
        return self.data

    def _merge_jsonl(self) -> None:
        parts = sorted(self.report_dir.glob("results.*.jsonl"))
        if not parts:
            return
        merged = self.report_dir / "results.jsonl"
        with merged.open("a", encoding="utf-8") as out:
            for part in parts:
                out.write(part.read_text(encoding="utf-8"))
        for part in parts:
            part.unlink()

    def close(self) -> None:
        self.log.close()
        if self._engine is not None:
            self._engine.close()
        self._builtins.stop()
