"""Write conformance/cost_table.py: what each check costs, measured from a reference run.

Usage: python scripts/cost_table.py [--check]

Runs the whole suite once (serially, ``conformance run`` in a subprocess) against a real
reference server on 127.0.0.1 as two providers: ``reference`` (its own model ref-1, as the
README's figures are counted) and ``relayed`` (gpt-4o-mini, with the reference itself as its
``upstream:``, so the ``fidelity`` and ``billing`` checks send what they send behind a relay
and for an OpenAI model).  Each check's figures are its requests to the provider (the
upstream's ``/__conformance/`` control plane is free and left out) and the tokens their
``usage`` reported; a request in the evidence of n checks (``share=True``) counts 1/n to each.
``fidelity`` and ``billing`` are taken from ``relayed``, every other family from
``reference``.  Each check's chain is the number of requests in its evidence, shared ones
whole (what it waits for one after another, at most): the engine starts the checks with the
longest chains first (:class:`conformance.slots.Priority`).  With ``--check`` nothing is
written: exit 1 when the file differs.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.reference.server import ReferenceServer  # noqa: E402

TARGET = ROOT / "conformance" / "cost_table.py"
RELAYED_FAMILIES = ("fidelity", "billing")
HEADER = '''"""Per-check cost of one run against the reference provider (generated: do not edit).

Written by ``python scripts/cost_table.py`` from a reference run (see its docstring); read by
:mod:`conformance.estimate`.  check id → (requests, tokens), a request shared by n checks
counted 1/n to each; read by :mod:`conformance.engine`: CHAINS, check id → the requests in
its evidence, shared ones whole (its chain of requests, at most).  ``tests/test_repeat.py``
fails when a check is missing here or the figures no longer match a run.
"""

'''


Costs = dict[str, tuple[float, float, int]]


def measure() -> Costs:
    key = "sk-costs-" + secrets.token_hex(8)
    with ReferenceServer(api_key=key) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        providers = folder / "providers.yaml"
        providers.write_text(yaml.safe_dump({"providers": [
            {"name": "reference", "base_url": server.base_url, "api_key": "${COSTS_KEY}",
             "model": "ref-1", "vision_url": f"{server.origin}/assets/color/red.png"},
            {"name": "relayed", "base_url": server.base_url, "api_key": "${COSTS_KEY}",
             "model": "gpt-4o-mini", "vision_url": f"{server.origin}/assets/color/red.png",
             "upstream": {"url": server.origin, "api_key": "${COSTS_KEY}"}},
        ]}, sort_keys=False), encoding="utf-8")
        report = folder / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "conformance", "run", "--providers", str(providers),
             "--report-dir", str(report), "-p", "no:cacheprovider", "-q", "-n", "0"],
            cwd=ROOT, env={**os.environ, "COSTS_KEY": key, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"the reference run failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    return per_check(data["results"])


def per_check(results: list[dict[str, Any]]) -> Costs:
    """check id → (requests, tokens, chain) from a run's results (module docstring)."""
    sharers: dict[tuple[str, str], int] = defaultdict(int)
    for result in results:
        for exchange in result["evidence"].get("exchanges", []):
            sharers[(result["provider"], exchange["id"])] += 1
    costs: Costs = {}
    for result in results:
        family = result["check"].split(".", 1)[0]
        wanted = "relayed" if family in RELAYED_FAMILIES else "reference"
        if result["provider"] != wanted:
            continue
        requests = spent = 0.0
        chain = 0
        for exchange in result["evidence"].get("exchanges", []):
            if "/__conformance/" in str(exchange.get("request", {}).get("url", "")):
                continue
            share = 1 / sharers[(result["provider"], exchange["id"])]
            usage = exchange.get("usage") or {}
            requests += share
            chain += 1
            spent += share * (int(usage.get("prompt_tokens") or 0)
                              + int(usage.get("completion_tokens") or 0))
        costs[result["check"]] = (round(requests, 3), round(spent, 1), chain)
    return costs


def render(costs: Costs) -> str:
    lines = ["COSTS: dict[str, tuple[float, float]] = {"]
    lines += [f"    {check!r}: ({r!r}, {t!r})," for check, (r, t, _) in costs.items()]
    lines += ["}", "", "CHAINS: dict[str, int] = {"]
    lines += [f"    {check!r}: {chain!r}," for check, (_, _, chain) in costs.items()]
    return HEADER + "\n".join(lines) + "\n}\n"


def main() -> int:
    text = render(measure())
    if "--check" in sys.argv[1:]:
        same = TARGET.exists() and TARGET.read_text(encoding="utf-8") == text
        print("cost_table.py is up to date" if same else "cost_table.py is stale: run "
              "python scripts/cost_table.py")
        return 0 if same else 1
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
