"""Benchmark: wall time of a full run against providers with injected latency.

Serves the reference provider with ``latency-<ms>`` per request, runs the whole suite against
N copies of it through ``conformance run`` (so pytest, the engine, the transport and the
result files are all in the measurement), and prints the wall time next to the serial sum of
request times taken from the run's own evidence — what a run without concurrency would cost.

    python benchmarks/concurrency.py [--latency-ms 300] [--providers 2] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from conformance.reference.server import ReferenceServer

KEY = "sk-bench-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--providers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--xdist", type=int, default=0, help="also run with -n N")
    args = parser.parse_args()

    with ReferenceServer(api_key=KEY) as server, tempfile.TemporaryDirectory() as tmp:
        url = server.variant_url(latency_ms=args.latency_ms)
        print(f"reference provider with {args.latency_ms} ms latency per request, "
              f"{args.providers} provider(s)")
        print(f"{'mode':<22}{'wall s':>8}{'requests':>10}{'serial sum s':>14}{'speed-up':>10}")
        modes = [(f"concurrency {c}", c, 0) for c in args.concurrency]
        if args.xdist:
            modes.append((f"concurrency 4, -n {args.xdist}", 4, args.xdist))
        for label, concurrency, workers in modes:
            providers = {"providers": [
                {"name": f"p{i}", "base_url": url, "api_key": "${BENCH_KEY}", "model": "ref-1",
                 "concurrency": concurrency}
                for i in range(args.providers)
            ]}
            path = Path(tmp) / f"providers-{concurrency}-{workers}.yaml"
            path.write_text(yaml.safe_dump(providers))
            report = Path(tmp) / f"report-{concurrency}-{workers}"
            cmd = [sys.executable, "-m", "conformance", "run", "--providers", str(path),
                   "--report-dir", str(report), "-q", "-p", "no:cacheprovider"]
            if workers:
                cmd += ["-n", str(workers)]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                                  env={**os.environ, "BENCH_KEY": KEY})
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:], file=sys.stderr)
                return 1
            data = json.loads((report / "results.json").read_text())
            seen: dict[str, float] = {}
            for result in data["results"]:
                for exchange in result["evidence"].get("exchanges", []):
                    seen[exchange["id"]] = exchange["elapsed_ms"] / 1000
            serial = sum(seen.values())
            print(f"{label:<22}{wall:>8.1f}{len(seen):>10}{serial:>14.1f}"
                  f"{serial / wall:>9.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
