"""The result model and the result files of a run (docs/CONTRACT.md, "Results").

A run directory holds ``run.json`` (written when the checks are submitted: run id, providers,
check catalogue and the ``planned`` (check, provider) pairs), ``results.jsonl`` (one line per
finished check, flushed as it finishes; under xdist one ``results.<worker>.jsonl`` per worker,
merged at the end) and, once the run is over, ``results.json`` (the merged run).
:func:`load_run` reads any of these back, so a killed run's directory can still be reported.
A run is *incomplete* when it did not finish (no ``finished_at``) or a planned pair has no
result (killed, Ctrl-C, ``-x``); its results.json then carries ``run.incomplete``.  This
module never imports pytest.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import isfinite
from pathlib import Path
from typing import Any, Literal, TextIO

FORMAT = "conformance-results/1"
Outcome = Literal["pass", "fail", "unsupported", "skip", "error"]
OUTCOMES: tuple[Outcome, ...] = ("pass", "fail", "unsupported", "skip", "error")


#: Longest message kept in a result; a provider's text quoted inside one is cut here.
MAX_MESSAGE = 600


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Collapse whitespace and cap the length: messages are one line (docs/CONTRACT.md), but a
    provider's text quoted inside them is not."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


#: How deep provider JSON is kept in a result; deeper containers become :data:`DEEP_MARK`.
MAX_DEPTH = 64
DEEP_MARK = "… (nested deeper than {depth} levels)"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: C0 controls but tab and newline, DEL and C1 controls: never shown raw in a message.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe_text(text: str) -> str:
    """``text`` with every lone surrogate (a ``"\\ud800"`` escape in a provider's JSON, which
    no UTF-8 file can hold) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def printable(text: str) -> str:
    """``text`` safe to show anywhere (terminal, XML, Markdown, HTML): lone surrogates become
    U+FFFD and control characters (ESC, NUL, DEL, C1, but not tab or newline) their escape,
    e.g. ``\\x1b``, so a provider's ANSI sequences are shown, not executed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", safe_text(text))


class Sanitized(dict):  # type: ignore[type-arg]
    """A JSON object :func:`safe_json` has already made safe for nesting ``at`` levels deep
    (an exchange's evidence record, shared by the results of every check that used it):
    later walks that meet it there keep it as it is instead of copying it again."""

    __slots__ = ("_text", "at")

    def __init__(self, data: Mapping[str, Any], at: int) -> None:
        super().__init__(data)
        self.at = at
        self._text: str | None = None

    def json_text(self) -> str:
        """Its compact JSON text, encoded once however many results and files hold it (the
        record is never changed once made)."""
        if self._text is None:
            self._text = json.dumps(self, ensure_ascii=False, separators=(",", ":"))
        return self._text


def sanitized(value: Mapping[str, Any], at: int) -> Sanitized:
    """``value`` made safe (:func:`safe_json`) for nesting ``at`` levels deep, and marked so."""
    made = safe_json(value, start_depth=at)
    return Sanitized(made if isinstance(made, dict) else {}, at)


def safe_json(value: Any, max_depth: int = MAX_DEPTH, *, start_depth: int = 0) -> Any:
    """A copy of JSON-like ``value`` any file can hold and ``json.dumps`` can write without
    deep recursion: strings (keys too) pass through :func:`safe_text`, tuples become lists,
    NaN and ±Infinity their ``str`` ("nan", "inf": strict JSON readers refuse the bare tokens),
    other objects their ``str``, and a container nested deeper than ``max_depth`` levels is
    replaced by the marker ``"… (nested deeper than N levels)"``.  The walk is iterative, so
    data of any depth is safe to pass in."""
    mark = DEEP_MARK.format(depth=max_depth)
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, start_depth)]
    while stack:
        item, parent, slot, depth = stack.pop()
        if isinstance(item, Sanitized) and item.at == depth and max_depth == MAX_DEPTH:
            parent[slot] = item
        elif isinstance(item, str):
            parent[slot] = safe_text(item)
        elif item is None or isinstance(item, bool | int):
            parent[slot] = item
        elif isinstance(item, float):
            # NaN and ±Infinity are not JSON (RFC 8259 §6): json.dumps would write them bare
            parent[slot] = item if isfinite(item) else str(item)
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                parent[slot] = mark
            elif isinstance(item, Mapping):
                mapping: dict[str, Any] = {}
                parent[slot] = mapping
                for key, child in item.items():
                    name = safe_text(key if isinstance(key, str) else str(key))
                    mapping[name] = None
                    stack.append((child, mapping, name, depth + 1))
            else:
                items: list[Any] = [None] * len(item)
                parent[slot] = items
                stack.extend((child, items, i, depth + 1) for i, child in enumerate(item))
        else:
            parent[slot] = safe_text(str(item))
    return root[0]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Result:
    """One check judged against one provider (a ``results[]`` entry of results.json)."""

    provider: str
    model: str
    check: str
    behavior: str
    outcome: Outcome
    message: str
    duration_ms: int
    evidence: dict[str, Any] = field(default_factory=dict)
    #: ``--repeat K`` (K > 1): each run's ``{outcome, message, duration_ms}``, in order; the
    #: fields above are their fold (:mod:`conformance.stability`). Empty for a single run.
    runs: tuple[dict[str, Any], ...] = ()
    #: The runs disagree: at least one passed and at least one failed or was declined.
    flaky: bool = False

    def __post_init__(self) -> None:
        # Whatever a provider sent is made safe once, here, so that every file and screen a
        # result reaches can hold it: text printable, evidence without lone surrogates and
        # no deeper than MAX_DEPTH (json.dumps recurses per level).
        for name in ("provider", "model", "check", "behavior", "message"):
            object.__setattr__(self, name, printable(str(getattr(self, name))))
        evidence = safe_json(self.evidence)
        object.__setattr__(self, "evidence", evidence if isinstance(evidence, dict) else {})
        object.__setattr__(self, "runs", tuple(
            {"outcome": str(r.get("outcome")), "message": printable(str(r.get("message", ""))),
             "duration_ms": int(r.get("duration_ms") or 0)}
            for r in self.runs if isinstance(r, Mapping)))

    @property
    def provider_problem(self) -> str | None:
        """The provider-wide problem (``unreachable``, ``not_an_api``, ``key_rejected``)
        behind an ``error`` that stopped this check before it ran
        (:mod:`conformance.preflight`), if any."""
        kind = self.evidence.get("provider_problem") if self.outcome == "error" else None
        return kind if isinstance(kind, str) else None

    def to_json(self, *, plain: bool = False) -> dict[str, Any]:
        """The ``results[]`` entry; ``plain``: only builtin types (no :class:`Sanitized`),
        for serialisers that take nothing else (execnet, between xdist processes)."""
        evidence = self.evidence
        if plain and isinstance(evidence.get("exchanges"), list):
            evidence = {**evidence, "exchanges": [
                dict(x) if isinstance(x, Sanitized) else x for x in evidence["exchanges"]]}
        out: dict[str, Any] = {
            "provider": self.provider, "model": self.model, "check": self.check,
            "behavior": self.behavior, "outcome": self.outcome, "message": self.message,
            "duration_ms": self.duration_ms, "evidence": evidence}
        if self.runs:  # --repeat K: the runs and their tally (docs/CONTRACT.md)
            out.update(repeat=len(self.runs),
                       passes=sum(r["outcome"] == "pass" for r in self.runs),
                       flaky=self.flaky, runs=[dict(r) for r in self.runs])
        return out

    def json_text(self) -> str:
        """The ``results[]`` entry as compact JSON text (:meth:`to_json`), each shared exchange
        record's text encoded once (:meth:`Sanitized.json_text`)."""
        out = self.to_json()
        evidence = out.pop("evidence")
        exchanges = evidence.get("exchanges") if isinstance(evidence, dict) else None
        if not isinstance(exchanges, list) or not any(isinstance(x, Sanitized)
                                                      for x in exchanges):
            return _compact({**out, "evidence": evidence})
        rest = {k: v for k, v in evidence.items() if k != "exchanges"}
        records = ",".join(x.json_text() if isinstance(x, Sanitized) else _compact(x)
                           for x in exchanges)
        tail = "," + _compact(rest)[1:] if rest else "}"
        return f'{_compact(out)[:-1]},"evidence":{{"exchanges":[{records}]{tail}}}'

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, made_safe: bool = False) -> Result:
        """Raises ValueError for an outcome this version does not know.  ``made_safe``: the
        evidence was made safe by this suite already (an xdist worker's result, sent as
        builtin types), so it is not walked again."""
        if data.get("outcome") not in OUTCOMES:
            raise ValueError(f"result of {printable(str(data.get('check')))!s} for "
                             f"{printable(str(data.get('provider')))!s}: unknown outcome "
                             f"{printable(str(data.get('outcome')))!r} (known: "
                             f"{', '.join(OUTCOMES)})")
        return cls(
            provider=str(data["provider"]),
            model=str(data.get("model", "")),
            check=str(data["check"]),
            behavior=str(data.get("behavior", "")),
            outcome=data["outcome"],
            message=str(data.get("message", "")),
            duration_ms=int(data.get("duration_ms", 0)),
            evidence=(Sanitized(data.get("evidence") or {}, 0) if made_safe
                      else dict(data.get("evidence") or {})),
            runs=tuple(dict(r) for r in data.get("runs") or () if isinstance(r, Mapping)),
            flaky=data.get("flaky") is True,
        )


class ResultLog:
    """Appends results to a JSON Lines file, one flushed line per result (thread-safe).

    Each line is flushed to the OS as its result finishes, so a killed run keeps it; it is
    synced to the disk at most once per :attr:`SYNC_EVERY` seconds and at :meth:`close`
    (an ``fsync`` per result cost more than the rest of a result's bookkeeping).
    """

    #: Seconds between two ``fsync`` calls.
    SYNC_EVERY = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._synced = time.monotonic()
        self._unsynced = False
        self._file: TextIO | None = None
        #: Lines written so far.
        self.written = 0

    def append(self, result: Result) -> None:
        """Append one line.  A result whose evidence cannot be written is recorded without
        it (the message says why), so one provider's data never costs a result."""
        try:
            line = result.json_text()
            line.encode("utf-8")
        except (ValueError, TypeError, RecursionError) as exc:
            bare = {**result.to_json(), "evidence": {
                "unrecorded": printable(f"evidence could not be recorded: {exc}")[:300]}}
            line = json.dumps(safe_json(bare), ensure_ascii=False)
        with self._lock:
            if self._file is None:  # opened once: an open per result cost ~0.1 ms
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line + "\n")
            self._file.flush()
            self.written += 1
            now = time.monotonic()
            if now - self._synced >= self.SYNC_EVERY:
                os.fsync(self._file.fileno())
                self._synced, self._unsynced = now, False
            else:
                self._unsynced = True

    def close(self) -> None:
        """Sync what was appended since the last ``fsync`` and close the file (a later
        :meth:`append` opens it again)."""
        with self._lock:
            if self._file is not None:
                if self._unsynced:
                    os.fsync(self._file.fileno())
                    self._unsynced = False
                self._file.close()
                self._file = None


def read_jsonl(path: Path, *, made_safe: bool = False) -> list[Result]:
    """Results of one JSON Lines file; a torn last line (killed writer) is ignored.
    ``made_safe``: this suite wrote the file (see :meth:`Result.from_json`).  Lines end at
    ``\\n`` only: a provider's text holds U+2028, U+2029 or NEL unescaped (JSON allows it), at
    which ``str.splitlines`` would cut a result in two."""
    out: list[Result] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        try:
            out.append(Result.from_json(json.loads(line), made_safe=made_safe))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def token_totals(results: Iterable[Result]) -> dict[str, dict[str, int]]:
    """Tokens spent per provider, counting each exchange once (shared requests appear in the
    evidence of several checks)."""
    totals: dict[str, dict[str, int]] = {}
    seen: set[str] = set()
    for result in results:
        slot = totals.setdefault(result.provider, {"prompt": 0, "completion": 0, "requests": 0})
        for exchange in result.evidence.get("exchanges", []):
            key = exchange.get("id")
            if key in seen:
                continue
            if key:
                seen.add(key)
            slot["requests"] += 1
            usage = exchange.get("usage") or {}
            slot["prompt"] += int(usage.get("prompt_tokens") or 0)
            slot["completion"] += int(usage.get("completion_tokens") or 0)
    return totals


def outcome_counts(results: Iterable[Result]) -> dict[str, int]:
    counts = Counter(r.outcome for r in results)
    return {o: counts.get(o, 0) for o in OUTCOMES}


Pair = tuple[str, str]
"""A planned (check id, provider) pair."""


def parse_pairs(value: Any, where: str) -> list[Pair]:
    """``[[check, provider], ...]`` as read from a file; ValueError names ``where``."""
    if not isinstance(value, list) or not all(
            isinstance(p, list | tuple) and len(p) == 2 and all(isinstance(x, str) for x in p)
            for p in value):
        raise ValueError(f"{where}: expected a list of [check, provider] pairs")
    return [(str(c), str(p)) for c, p in value]


@dataclass
class RunData:
    """A run as read from (or about to be written to) its directory.

    ``complete`` is False for a run that did not finish; ``planned`` lists the (check,
    provider) pairs the run set out to judge (None when it did not record them, as runs of
    earlier versions did).
    """

    run: dict[str, Any]
    providers: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    results: list[Result]
    complete: bool = True
    planned: list[Pair] | None = None
    #: (check, provider) → result, and how many results it covers: built on first use, and
    #: again when ``results`` grew.
    _index: tuple[int, dict[Pair, Result]] = field(default=(-1, {}), init=False, repr=False,
                                                   compare=False)

    def result_of(self, check: str, provider: str) -> Result | None:
        """The result of ``check`` against ``provider`` (the first one, if several), found
        in constant time: renderers ask this per provider, and a scan each time made them
        quadratic in providers."""
        covered, index = self._index
        if covered != len(self.results):
            index = {}
            for result in self.results:
                index.setdefault((result.check, result.provider), result)
            self._index = (len(self.results), index)
        return index.get((check, provider))

    @property
    def not_run(self) -> list[Pair]:
        """Planned pairs without a result, in plan order."""
        if not self.planned:
            return []
        done = {(r.check, r.provider) for r in self.results}
        return [pair for pair in dict.fromkeys(self.planned) if pair not in done]

    @property
    def incomplete(self) -> bool:
        """The run did not finish, or finished without judging every planned pair."""
        return not self.complete or bool(self.not_run)

    def progress(self) -> tuple[int, int | None]:
        """(checks finished, checks planned); planned is None when not recorded."""
        if self.planned is None:
            return len(self.results), None
        planned = list(dict.fromkeys(self.planned))
        return len(planned) - len(self.not_run), len(planned)

    def to_json(self) -> dict[str, Any]:
        head, ordered = self.json_parts()
        return {**head, "results": [r.to_json() for r in ordered]}

    def json_parts(self) -> tuple[dict[str, Any], list[Result]]:
        """results.json without its ``results``, and the results in their order there."""
        ordered = sorted(self.results, key=_result_order(self.providers, self.checks))
        run = dict(self.run)
        run["outcomes"] = outcome_counts(ordered)
        if any(r.runs for r in ordered):
            run["flaky"] = sum(r.flaky for r in ordered)
        run["tokens"] = token_totals(ordered)
        run.pop("incomplete", None)
        if self.incomplete:
            finished, planned = self.progress()
            run["incomplete"] = {"planned": planned, "finished": finished,
                                 "not_run": [list(pair) for pair in self.not_run]}
        return {"format": FORMAT, "run": run, "providers": self.providers,
                "checks": self.checks}, ordered


def _result_order(
    providers: Sequence[Mapping[str, Any]], checks: Sequence[Mapping[str, Any]]
) -> Any:
    p_index = {p["name"]: i for i, p in enumerate(providers)}
    c_index = {c["id"]: i for i, c in enumerate(checks)}
    return lambda r: (p_index.get(r.provider, 1 << 30), c_index.get(r.check, 1 << 30), r.check)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename).  Data too deep for ``json.dumps`` or
    holding lone surrogates is written as :func:`safe_json` makes it (:func:`_encoded`).
    results.json has a writer of its own, one result at a time (:func:`write_results_json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_encoded(data, indent=1) + b"\n")
    tmp.replace(path)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def write_results_json(path: Path, data: RunData) -> None:
    """Write results.json (:meth:`RunData.to_json`) atomically, one result per line, each
    encoded as it is written: the C encoder, one result in memory at a time (``json.dump``
    with an indent is pure Python and was given every result's dict at once).  A result too
    deep to encode or holding lone surrogates is written as :func:`safe_json` makes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    head, ordered = data.json_parts()
    with tmp.open("wb") as fh:
        fh.write(b"{\n")
        for key, value in head.items():
            fh.write(b" " + _encoded(key) + b": " + _encoded(value, indent=1).replace(
                b"\n", b"\n ") + b",\n")
        fh.write(b' "results": [')
        for number, result in enumerate(ordered):
            try:
                line = result.json_text().encode("utf-8")
            except (UnicodeEncodeError, RecursionError, ValueError, TypeError):
                line = _encoded(result.to_json())
            fh.write((b",\n  " if number else b"\n  ") + line)
        fh.write(b"\n ]\n}\n")
    tmp.replace(path)


def _encoded(value: Any, indent: int | None = None) -> bytes:
    """``value`` as UTF-8 JSON; as :func:`safe_json` makes it when it is too deep, circular
    or holds lone surrogates."""
    try:
        return json.dumps(value, ensure_ascii=False, indent=indent).encode("utf-8")
    except (UnicodeEncodeError, RecursionError, ValueError):
        made_safe = safe_json(value, max_depth=min(MAX_DEPTH * 4, sys.getrecursionlimit() // 4))
        return json.dumps(made_safe, ensure_ascii=False, indent=indent).encode("utf-8")


#: What a run writes into its report dir (``baseline.json`` aside, see :func:`clear_run_files`).
RUN_FILES: tuple[str, ...] = ("results.jsonl", "results.json", "run.json", "junit.xml",
                              "matrix.html", "summary.md")


def clear_run_files(directory: Path, *, keep_baseline: bool = False) -> list[str]:
    """Remove an earlier run's files from a report dir about to be reused, so that neither
    this run's results.jsonl nor a later ``conformance report`` mixes two runs; return the
    names removed. ``baseline.json`` goes too unless this run writes its own. A directory
    without a run's results or run.json (``--report-dir .``) is left alone."""
    workers = sorted(p.name for p in directory.glob("results.*.jsonl"))
    marks = ("results.jsonl", "results.json", "run.json")
    if not workers and not any((directory / name).is_file() for name in marks):
        return []
    names = [*RUN_FILES, *workers, *([] if keep_baseline else ["baseline.json"])]
    removed = []
    for name in names:
        path = directory / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def jsonl_files(directory: Path) -> list[Path]:
    """``results.jsonl`` or, when absent, the per-worker ``results.<worker>.jsonl`` files."""
    merged = directory / "results.jsonl"
    if merged.exists():
        return [merged]
    return sorted(directory.glob("results.*.jsonl"))


def load_run(directory: Path) -> RunData:
    """Read a run back: ``results.json`` if the run finished, else run.json + JSON Lines.

    Raises ``FileNotFoundError`` with a one-line message when the directory holds neither.
    """
    final = directory / "results.json"
    if final.exists():
        data = json.loads(final.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{final}: not a {FORMAT} file (format {data.get('format')!r})")
        results = [Result.from_json(r) for r in data["results"]]
        run = data["run"]
        incomplete = run.get("incomplete")
        planned: list[Pair] | None = None
        if isinstance(incomplete, dict) and incomplete.get("planned") is not None:
            planned = [(r.check, r.provider) for r in results] + parse_pairs(
                incomplete.get("not_run", []), f"{final}: run.incomplete.not_run")
        # A killed run re-rendered by an earlier version: finished_at null, no "incomplete".
        unfinished = "finished_at" in run and run["finished_at"] is None
        return RunData(
            run=run, providers=data["providers"], checks=data["checks"], results=results,
            complete=not incomplete and not unfinished, planned=planned,
        )
    files = jsonl_files(directory)
    meta_path = directory / "run.json"
    if not files and not meta_path.exists():
        raise FileNotFoundError(f"{directory}: no results.json, results.jsonl or run.json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    results = [r for f in files for r in read_jsonl(f)]
    providers = meta.get("providers") or [
        {"name": n, "base_url": "", "models": {}}
        for n in dict.fromkeys(r.provider for r in results)
    ]
    checks = meta.get("checks") or [
        {"id": c, "behavior": b, "title": c, "spec": ""}
        for c, b in dict.fromkeys((r.check, r.behavior) for r in results)
    ]
    run = dict(meta.get("run") or {"id": directory.name})
    run.setdefault("finished_at", None)
    planned = (parse_pairs(meta["planned"], f"{meta_path}: planned")
               if meta.get("planned") is not None else None)
    return RunData(run=run, providers=providers, checks=checks, results=results, complete=False,
                   planned=planned)
