"""Benchmark: every speed and scale figure of the suite next to its goal, in one run.

    python benchmarks/run.py            # `make bench`: the full set (a few minutes)
    python benchmarks/run.py --short    # `make bench-short`: fewer providers (CI, < 1 min)

Every run goes through ``conformance run`` in a subprocess (pytest, the engine, the transport,
the result files and the reports are all measured), against the reference provider served in
this process on real sockets: instant (``/v1``) or with a latency per request
(``/variant/latency-<ms>/v1``).  The figures are ratios within this one run wherever the goal
is a ratio, so a loaded machine shifts them less than absolute times; the suite's CPU is the
subprocess's own (``getrusage``), the provider's is this process's.  The load average is
printed at the start and the end: figures taken under load are not the ones the README quotes.
Beside the goals it prints their floors on this machine: pytest alone running as many empty
tests as the runs have checks, serial and under ``-n 2`` (:func:`pytest_floor`).
Nothing here asserts: a human reads the table (no timed test).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conformance.checks.registry import all_checks
from conformance.reference.app import create_app
from conformance.reference.server import ThreadedServer
from conformance.reference.streaming import pace
from conformance.report.matrix import render_matrix
from conformance.results import RunData, load_run

KEY = "sk-bench-0123456789abcdef"
ONE_CHECK = "chat.basic"


class CountingApp:
    """The reference app, counting the HTTP requests it receives (what a run cost)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


@dataclass
class Measured:
    wall: float
    cpu: float  # the suite's processes (user + system)
    provider_cpu: float  # the reference provider's (this process)
    peak_rss_mb: float  # the suite's main process
    requests: int  # as received by the provider
    checks: int  # results written
    report: Path


class Bench:
    def __init__(self, tmp: Path, app: CountingApp, origin: str) -> None:
        self.tmp = tmp
        self.app = app
        self.origin = origin
        self.runs = 0

    def url(self, latency_ms: int) -> str:
        return (f"{self.origin}/variant/latency-{latency_ms}/v1" if latency_ms
                else f"{self.origin}/v1")

    def run(self, providers: int, *, latency_ms: int = 0, concurrency: int = 32,
            workers: int = 0, select: str | None = None) -> Measured:
        self.runs += 1
        path = self.tmp / f"providers-{self.runs}.yaml"
        path.write_text(yaml.safe_dump({"providers": [
            {"name": f"p{i}", "base_url": self.url(latency_ms), "api_key": "${BENCH_KEY}",
             "model": "ref-1", "concurrency": concurrency}
            for i in range(providers)
        ]}))
        report = self.tmp / f"report-{self.runs}"
        cmd = [sys.executable, "-m", "conformance", "run", "--providers", str(path),
               "--report-dir", str(report), "-q", "-p", "no:cacheprovider"]
        if workers:
            cmd += ["-n", str(workers)]
        if select:
            cmd += ["-k", select]
        requests_before = self.app.requests
        provider_cpu = time.process_time()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, "BENCH_KEY": KEY})
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage (peak RSS)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        provider_cpu = time.process_time() - provider_cpu
        if proc.returncode != 0:
            sys.stderr.write(out.decode(errors="replace")[-3000:])
            raise SystemExit(f"benchmark run failed: {' '.join(cmd)}")
        cpu, rss = _child_usage(usage)
        data = json.loads((report / "results.json").read_text(encoding="utf-8"))
        return Measured(wall, cpu, provider_cpu, rss, self.app.requests - requests_before,
                        len(data["results"]), report)


_children = resource.getrusage(resource.RUSAGE_CHILDREN)


def _child_usage(usage: Any) -> tuple[float, float]:
    """CPU seconds of the subprocesses reaped since the last call, and the peak RSS (MB) of
    the largest of them (Linux reports ``ru_maxrss`` in KB)."""
    global _children
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (now.ru_utime - _children.ru_utime) + (now.ru_stime - _children.ru_stime)
    _children = now
    rss = usage.ru_maxrss / 1024
    return cpu, rss


FLOOR_TESTS = """\
import pytest

@pytest.mark.parametrize("i", range({items}))
def test_empty(i):
    pass
"""


#: Every built-in pytest plugin that can be left out (``-s``: no output capture): what a run
#: would still cost if it gave up the options they bring (``--log-*``, ``-W``, ``--junitxml``,
#: ``--sw``, ``--pdb``'s neighbours, ``tmp_path``, ``monkeypatch``, ``skipif``...).
BARE = ("-s", "-p", "no:logging", "-p", "no:warnings", "-p", "no:junitxml", "-p", "no:stepwise",
        "-p", "no:faulthandler", "-p", "no:threadexception", "-p", "no:doctest",
        "-p", "no:pastebin", "-p", "no:nose", "-p", "no:legacypath", "-p", "no:tmpdir",
        "-p", "no:monkeypatch", "-p", "no:skipping")


def pytest_floor(tmp: Path, items: int, *, workers: int = 0, bare: bool = False) -> Measured:
    """pytest's own cost: ``items`` empty tests, run the way ``conformance run`` runs pytest
    (no plugin autoloaded but xdist, plain asserts), in a directory of their own (no
    conftest, no configuration of this repository).  A floor under any run of that many
    checks in one process, and under ``-n 2``'s gain.  ``bare``: with every built-in plugin
    that can be left out left out too (:data:`BARE`), the lowest pytest goes."""
    where = tmp / f"floor-{items}"
    where.mkdir(exist_ok=True)
    (where / "pytest.ini").write_text("[pytest]\n")
    (where / "test_floor.py").write_text(FLOOR_TESTS.format(items=items))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--assert=plain",
           "-p", "no:unraisableexception", "-p", "xdist",  # as conformance/pytest_args.py
           "-c", str(where / "pytest.ini"), "--rootdir", str(where), str(where)]
    if workers:
        cmd += ["-n", str(workers)]
    if bare:
        cmd += BARE
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=where,
                            env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(out.decode(errors="replace")[-3000:])
        raise SystemExit(f"benchmark floor failed: {' '.join(cmd)}")
    cpu, rss = _child_usage(usage)
    return Measured(wall, cpu, 0.0, rss, 0, items, where)


def exchange_time(exchange: dict[str, Any], latency_ms: int) -> float:
    """What the provider itself takes for one exchange, in seconds: its latency, and for a
    stream the pauses the reference writes its events with (conformance/reference/
    streaming.py: ``pace``), independent of how busy the client was."""
    events = [e for e in exchange.get("response", {}).get("events") or [] if "data" in e]
    pacing = (len(events) - 1) * pace(len(events)) if len(events) > 1 else 0.0
    return latency_ms / 1000 + pacing


def longest_chain(report: Path, latency_ms: int) -> tuple[float, int]:
    """The run's physical limit, in seconds and requests: the preflight, then the check whose
    requests take the provider longest one after another, then the longest of the checks that
    run last (they wait for all others); each request as long as the provider takes for it
    (:func:`exchange_time`)."""
    last = {c.id for c in all_checks() if c.runs_last}
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    chains: dict[bool, tuple[float, int]] = {False: (0.0, 0), True: (0.0, 0)}
    for r in data["results"]:
        exchanges = list({e["id"]: e for e in r["evidence"].get("exchanges", [])}.values())
        chain = (sum(exchange_time(e, latency_ms) for e in exchanges), len(exchanges))
        chains[r["check"] in last] = max(chains[r["check"] in last], chain)
    seconds = latency_ms / 1000 + chains[False][0] + chains[True][0]
    return seconds, 1 + chains[False][1] + chains[True][1]


def synthetic_run(template: RunData, providers: int, checks: int) -> RunData:
    """``providers`` × ``checks`` results made of a real run's results (real evidence)."""
    catalogue = (template.checks * (checks // len(template.checks) + 1))[:checks]
    catalogue = [{**c, "id": f"{c['id']}_{i}"} for i, c in enumerate(catalogue)]
    by_check = {r.check: r for r in template.results}
    base = template.results[0]
    results = []
    for p in range(providers):
        for entry in catalogue:
            source = by_check.get(entry["id"].rsplit("_", 1)[0], base)
            result = copy.copy(source)  # not replace(): no second safe_json walk
            object.__setattr__(result, "provider", f"p{p}")
            object.__setattr__(result, "check", entry["id"])
            results.append(result)
    return RunData(run=dict(template.run),
                   providers=[{**template.providers[0], "name": f"p{p}"}
                              for p in range(providers)],
                   checks=catalogue, results=results)


@contextmanager
def reference() -> Iterator[tuple[CountingApp, str]]:
    app = CountingApp(create_app(KEY))
    with ThreadedServer(app) as server:
        yield app, server.origin


Row = tuple[str, str, str]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="fewer providers (CI)")
    parser.add_argument("--latency-ms", type=int, default=300)
    args = parser.parse_args()
    latency = args.latency_ms
    many, most = (4, 8) if args.short else (20, 100)
    # The full set looks for the provider count from which -n 2 beats serial (the crossover).
    xdist_sizes = (1, 4) if args.short else (1, 4, 8, 16, 32)
    rows: list[Row] = []
    load_start = os.getloadavg()

    def say(figure: str, measured: str, goal: str) -> None:
        rows.append((figure, measured, goal))
        print(f"  {figure:<52} {measured:<34} goal: {goal}", flush=True)

    print(f"conformance benchmark ({'short' if args.short else 'full'}): {os.cpu_count()} "
          f"cores, load average {load_start[0]:.2f}, Python {sys.version.split()[0]}")
    with reference() as (app, origin), tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp), app, origin)
        bench.run(1, select=ONE_CHECK)  # warm the caches (bytecode, disk)

        # 1. Startup: one check against an instant provider, command to exit.
        walls = [bench.run(1, select=ONE_CHECK) for _ in range(3)]
        one = statistics.median(m.wall for m in walls)
        say("one check, instant provider: wall (median of 3)", f"{one:.2f} s "
            f"(CPU {statistics.median(m.cpu for m in walls):.2f} s)", "<= 1.0 s")

        # 2. Marginal CPU per check: many providers vs one, instant.
        single = bench.run(1)
        several = bench.run(many)
        per_check = (several.cpu - single.cpu) / max(1, several.checks - single.checks)
        say(f"marginal suite CPU per check ({many} vs 1 provider, instant)",
            f"{per_check * 1000:.1f} ms ({single.checks} vs {several.checks} checks)",
            "<= 2 ms")

        # 3. One provider at `latency` ms per request vs its longest dependent chain (the
        # median of 3 runs: the reference provider shares the machine's cores).
        slows = sorted((bench.run(1, latency_ms=latency) for _ in range(3)),
                       key=lambda m: m.wall)
        slow = slows[1]
        chain, hops = longest_chain(slow.report, latency)
        say(f"1 provider at {latency} ms: wall / longest chain (median of 3)",
            f"{slow.wall / chain:.2f}x ({slow.wall:.1f} s / {chain:.1f} s = {hops} requests)",
            "<= 1.5x")

        # 4. Many providers at `latency` ms vs one.
        scaled: dict[int, Measured] = {}
        for n, goal in ((many, "<= 1.3x"), (most, "<= 2x, <= 500 MB")):
            m = scaled[n] = bench.run(n, latency_ms=latency)
            say(f"{n} providers at {latency} ms: wall vs 1 provider, peak RSS",
                f"{m.wall / slow.wall:.2f}x ({m.wall:.1f} s), {m.peak_rss_mb:.0f} MB",
                goal)
            print(f"    (suite CPU {m.cpu:.1f} s, provider CPU {m.provider_cpu:.1f} s, "
                  f"{m.requests} requests, {m.checks} checks)")

        # 5. -n 2 vs serial: requests and wall at several provider counts.
        faster: list[int] = []
        for n in xdist_sizes:
            serial = bench.run(n, latency_ms=latency)
            split = bench.run(n, latency_ms=latency, workers=2)
            say(f"-n 2 vs serial, {n} provider(s) at {latency} ms",
                f"{split.wall / serial.wall:.2f}x wall, requests {split.requests} vs "
                f"{serial.requests}", "requests <=; faster from 4 providers")
            if split.wall < serial.wall:
                faster.append(n)
        say("-n 2 crossover (faster than serial from)",
            f"{min(faster)} providers" if faster else
            f"none up to {xdist_sizes[-1]} providers", "<= 4 providers")

        # 6. The floors under those goals: pytest itself, running as many empty tests as the
        # runs above had checks (each check is one pytest item), serial and under -n 2.
        # The reference provider answering those runs is one Python process on the same
        # cores: its CPU is a floor under their wall too.
        for n, goal_ratio in ((many, 1.3), (most, 2.0)):
            allowed = f"a floor: {n} providers may take {goal_ratio * slow.wall:.1f} s in all"
            items = n * single.checks
            floor = pytest_floor(Path(tmp), items)
            say(f"pytest alone: {items} empty tests ({n} providers' checks)",
                f"{floor.wall:.2f} s (CPU {floor.cpu:.2f} s)", allowed)
            bare = pytest_floor(Path(tmp), items, bare=True)
            say(f"pytest alone, every optional plugin off: {items} empty tests",
                f"{bare.wall:.2f} s (CPU {bare.cpu:.2f} s)", allowed)
            m = scaled[n]
            say(f"the reference provider's CPU for {n} providers ({m.requests} requests)",
                f"{m.provider_cpu:.1f} s (suite + provider on {os.cpu_count()} cores: "
                f"{(m.cpu + m.provider_cpu) / (os.cpu_count() or 1):.1f} s)", allowed)
        items = xdist_sizes[-1] * single.checks
        floor_serial = pytest_floor(Path(tmp), items)
        floor_split = pytest_floor(Path(tmp), items, workers=2)
        say(f"pytest alone: -n 2 vs serial, {items} empty tests",
            f"{floor_split.wall / floor_serial.wall:.2f}x wall (CPU {floor_split.cpu:.1f} s "
            f"vs {floor_serial.cpu:.1f} s)", "a floor: -n 2 can win only below 1x")

        # 7. The matrix of 100 providers x 100 checks, from a real run's results.
        data = synthetic_run(load_run(single.report), 100, 100)
        started, cpu = time.perf_counter(), time.process_time()
        html = render_matrix(data)
        render, cpu = time.perf_counter() - started, time.process_time() - cpu
        say("matrix.html render, 100 providers x 100 checks",
            f"{render:.2f} s (CPU {cpu:.2f} s, {len(html) / 1e6:.1f} MB)", "<= 2 s")
    load_end = os.getloadavg()
    print(f"load average at the end {load_end[0]:.2f}"
          + ("  (the machine was busy: absolute times are inflated)"
             if max(load_start[0], load_end[0]) > (os.cpu_count() or 1) * 0.5 else ""))
    print()
    print("| figure | measured | goal |")
    print("|---|---|---|")
    for figure, measured, goal in rows:
        print(f"| {figure} | {measured} | {goal} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
