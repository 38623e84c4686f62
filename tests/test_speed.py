"""Speed figures (report/speed.py): the figures on a hand-made run (each exchange once, every
repeat's exchanges), then a real run against the builtin reference that shows them in the
terminal and summary.md, with the reference's paced streams judged (not inconclusive) by
``streaming.real_time`` (its judgement: tests/test_real_time.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from conformance.report.speed import Speed, percentile, speed_line, speeds
from conformance.report.summary import render_summary_md
from conformance.report.terminal import render_summary
from conformance.results import Result, RunData
from tests.conftest import RunOutput, run_suite


def _chunk(content: str) -> str:
    return json.dumps({"object": "chat.completion.chunk",
                       "choices": [{"index": 0, "delta": {"content": content}}]})


def _exchange(xid: str, *, elapsed: float, first_byte: float, stream_at: list[float] | None = None,
              completion: int | None = None, status: int = 200,
              method: str = "POST") -> dict[str, Any]:
    response: dict[str, Any] = {"status": status, "headers": {}}
    if stream_at is not None:
        role = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        response["events"] = ([{"t_ms": first_byte, "data": role}]
                              + [{"t_ms": t, "data": _chunk("x")} for t in stream_at]
                              + [{"t_ms": elapsed, "data": "[DONE]"}])
    else:
        response["body"] = {"object": "chat.completion"}
    record: dict[str, Any] = {"id": xid, "request": {"method": method, "url": "u", "headers": {},
                                                     "body": {}},
                              "response": response, "elapsed_ms": elapsed,
                              "first_byte_ms": first_byte}
    if completion is not None:
        record["usage"] = {"prompt_tokens": 5, "completion_tokens": completion,
                           "total_tokens": 5 + completion}
    return record


def _result(provider: str, check: str, *exchanges: dict[str, Any]) -> Result:
    return Result(provider=provider, model="m", check=check, behavior=check.split(".")[0],
                  outcome="pass", message="ok", duration_ms=1,
                  evidence={"exchanges": list(exchanges)})


def _hand_made() -> RunData:
    stream = _exchange("s1", elapsed=1000, first_byte=100, stream_at=[200, 400, 600, 800, 950],
                       completion=5)
    results = [
        # the shared stream appears in two results: counted once
        _result("fast", "streaming.a", stream),
        _result("fast", "streaming.b", stream),
        _result("fast", "chat.basic", _exchange("p1", elapsed=300, first_byte=300,
                                                completion=30)),
        _result("fast", "chat.other", _exchange("p2", elapsed=500, first_byte=500)),
        # not timed: an error answer and a GET
        _result("fast", "errors.x", _exchange("e1", elapsed=5, first_byte=5, status=400)),
        _result("fast", "models.list", _exchange("g1", elapsed=7, first_byte=7, method="GET")),
        _result("plain", "chat.basic", _exchange("q1", elapsed=2000, first_byte=2000,
                                                 completion=40)),
    ]
    return RunData(run={"id": "r"}, providers=[{"name": "fast"}, {"name": "plain"}],
                   checks=[], results=results)


def test_figures_count_each_exchange_once_and_time_only_answered_posts() -> None:
    figures = speeds(_hand_made())
    fast = figures["fast"]
    assert fast.requests == 3
    # TTFT: the stream's first content event (200), the plain answers' first byte
    assert fast.ttft_median == 300 and fast.ttft_p95 == 500
    assert fast.total_median == 500 and fast.total_p95 == 1000
    # tokens/s from the stream with usage: 5 tokens over 200 → 950 ms
    assert fast.tokens_per_s == pytest.approx(5 / 0.75)
    # without a stream: completion tokens over the whole time of the plain answers
    assert figures["plain"] == Speed(1, 2000, 2000, 2000, 2000, pytest.approx(20.0))
    assert speed_line(fast) == "TTFT 300 ms · p95 500 ms · 7 tok/s"


def test_every_repeat_counts_and_a_shared_exchange_once() -> None:
    """Results of a ``--repeat`` run may carry each repeat's evidence (a ``runs`` list): every
    repeat's exchanges are timed, an exchange shared by two results still once."""
    first = _exchange("r1", elapsed=100, first_byte=100)
    second = _exchange("r2", elapsed=300, first_byte=300)
    third = _exchange("r3", elapsed=500, first_byte=500)
    repeated = Result(provider="p", model="m", check="chat.basic", behavior="chat",
                      outcome="pass", message="ok", duration_ms=1,
                      evidence={"exchanges": [first],
                                "runs": [{"outcome": "pass", "evidence": {"exchanges": [second]}},
                                         {"outcome": "pass", "exchanges": [third]}]})
    again = _result("p", "chat.other", first)
    data = RunData(run={"id": "r"}, providers=[{"name": "p"}], checks=[],
                   results=[repeated, again])
    figures = speeds(data)["p"]
    assert figures.requests == 3
    assert (figures.total_median, figures.total_p95) == (300, 500)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95 and percentile(values, 0.5) == 50
    assert percentile([3.0], 0.95) == 3 and percentile([], 0.95) is None


def test_figures_appear_in_terminal_and_summary() -> None:
    data = _hand_made()
    terminal = render_summary(data, width=200)
    assert re.search(r"TTFT \(median · p95\).*300 ms · p95 500 ms.*2000 ms · p95 2000 ms",
                     terminal)
    assert re.search(r"output tok/s.*7 tok/s.*20 tok/s", terminal)
    md = render_summary_md(data)
    assert "TTFT (median · p95) | total time (median · p95) | output tok/s |" in md
    assert "| 300 ms · p95 500 ms | 500 ms · p95 1000 ms | 7 tok/s |" in md


@pytest.fixture(scope="module")
def builtin_run(tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    base = tmp_path_factory.mktemp("speed")
    providers = base / "providers.yaml"
    providers.write_text("providers:\n  - {name: reference, builtin: reference}\n",
                         encoding="utf-8")
    out = run_suite(providers, base / "report", "-m", "streaming or chat")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_a_builtin_reference_run_shows_speed_everywhere(builtin_run: RunOutput) -> None:
    ttft = r"\d[\d,.]* (ms|s) · p95 \d[\d,.]* (ms|s)"
    assert re.search(rf"TTFT \(median · p95\)\s*│\s*{ttft}", builtin_run.stdout), \
        builtin_run.stdout
    assert re.search(r"output tok/s\s*│\s*[\d,]+ tok/s", builtin_run.stdout)
    md = (builtin_run.report_dir / "summary.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| reference"))
    assert re.search(rf"\| {ttft} \| {ttft} \| [\d,]+ tok/s \|$", row), row


def test_the_paced_reference_streams_in_real_time(builtin_run: RunOutput) -> None:
    outcome, message = builtin_run.outcomes()[("reference", "streaming.real_time")]
    assert outcome == "pass", message
    assert re.match(r"9 content chunks over \d+ ms \(first after \d+ ms, last after \d+ ms\)",
                    message), message
