"""Picking a provider from the matrix and summary.md (issue 13): the weighted score and its
formula, family cells shaded by score, the security badge, the ranking, unrun providers as
chips, the builtin reference apart and out of the overall figures, speed in the column heads,
and the stream event a verdict is about (``evidence.event``, set by the streaming checks).

Renderer tests use hand-made runs (exact control of severities and outcomes); the event test
runs the streaming family against real reference fault variants.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.checks import prompts
from conformance.reference.server import ReferenceServer
from conformance.report.common import (
    SEVERITY_WEIGHTS,
    is_reference,
    shade,
    unrun_reason,
    weighted_score,
)
from conformance.report.matrix import build, render_matrix
from conformance.report.summary import render_summary_md
from conformance.results import Result, RunData
from tests.conftest import external, run_suite, write_providers
from tests.test_report import payload

SEVERITIES = ("security", "breaks-clients", "degrades", "cosmetic")


def stream_exchange(xid: str, ttft: float, total: float) -> dict[str, Any]:
    """An answered streamed POST whose first content event arrives at ``ttft`` ms."""
    content = json.dumps({"choices": [{"delta": {"content": "1"}}]})
    return {"id": xid, "elapsed_ms": total,
            "request": {"method": "POST", "url": "https://x.example/v1/chat/completions",
                        "headers": {"authorization": "Bearer ***"}, "body": {"stream": True}},
            "response": {"status": 200, "headers": {}, "events": [
                {"t_ms": ttft, "data": content}, {"t_ms": total - 1, "data": "[DONE]"}]}}


def run_of(outcomes: dict[str, dict[str, str]], *, reference: str | None = None,
           skipped: dict[str, str] | None = None,
           speed: dict[str, tuple[float, float]] | None = None) -> RunData:
    """Providers × the eight checks ``fam{a,b}.{severity}``; ``outcomes[provider][check]``
    overrides the default ``pass``. ``reference`` names a builtin reference provider,
    ``skipped`` providers not run (with their reason), ``speed`` one timed stream each."""
    checks = [{"id": f"fam{f}.{s.replace('-', '_')}", "behavior": f"fam{f}", "title": s,
               "spec": "", "proves": "", "severity": s} for f in "ab" for s in SEVERITIES]
    names = list(outcomes) + ([reference] if reference else []) + list(skipped or {})
    providers: list[dict[str, Any]] = []
    results: list[Result] = []
    for name in names:
        entry: dict[str, Any] = {"name": name, "base_url": f"https://{name}.example/v1",
                                 "models": {"default": "m"}, "api_key_env": "RELAY_KEY"}
        if name == reference:
            entry = {"name": name, "base_url": "builtin:reference", "models": {"default": "m"}}
        if skipped and name in skipped:
            entry["skipped"] = skipped[name]
        providers.append(entry)
        for i, check in enumerate(checks):
            outcome = "skip" if skipped and name in skipped else \
                outcomes.get(name, {}).get(check["id"], "pass")
            evidence: dict[str, Any] = {}
            if speed and name in speed and i == 0:
                evidence["exchanges"] = [stream_exchange(f"{name}-x", *speed[name])]
            results.append(Result(name, "m", check["id"], check["behavior"], outcome,  # type: ignore[arg-type]
                                  skipped[name] if skipped and name in skipped else outcome,
                                  5, evidence))
    return RunData(run={"id": "20260101T000000Z-rank", "suite_version": "t"},
                   providers=providers, checks=checks, results=results)


def column_order(html: str) -> list[str]:
    return re.findall(r'<th class="prov[^"]*" scope="col" data-col="\d+" data-provider="([^"]+)"',
                      html)


# -- the weighted score ------------------------------------------------------------------------

def test_weighted_score_follows_the_stated_formula() -> None:
    # One failure of each severity in family a; family b passes.
    data = run_of({"p": {"fama.security": "fail", "fama.cosmetic": "fail",
                         "famb.degrades": "unsupported", "famb.cosmetic": "skip"}})
    severity = {c["id"]: c["severity"] for c in data.checks}
    score = weighted_score(data.results, severity)
    w = SEVERITY_WEIGHTS
    # Σ w·pass ÷ Σ w·(pass + fail): unsupported and skip count on neither side.
    passed = (w["breaks-clients"] + w["degrades"]) + (w["security"] + w["breaks-clients"])
    judged = passed + w["security"] + w["cosmetic"]
    assert (score.passed, score.judged) == (passed, judged) == (18, 27)
    assert score.text == "66%"  # 66.7 rounded down: a failure never reads as more
    html = render_matrix(data)
    assert "Σ w·pass ÷ Σ w·(pass + fail)" in html and "8 security" in html
    assert '<b class="wscore">66%</b>' in html
    # The plain pass rate stays next to it: 4 pass of 6 judged.
    assert "pass 66%" in html
    text = render_summary_md(data)
    assert "Σ w·pass ÷ Σ w·(pass + fail)" in text and "w = 8 for security" in text
    assert "**Overall compatibility: 66% weighted by severity, 66% pass rate**" in text


def test_a_security_failure_weighs_more_than_a_cosmetic_one() -> None:
    data = run_of({"leaky": {"fama.security": "fail"}, "ugly": {"fama.cosmetic": "fail"}})
    context = build(data)
    by_name = {c.name: c for c in context["columns"]}
    # Same pass rate, different weighted scores; the security failure ranks lower.
    assert by_name["leaky"].score == by_name["ugly"].score == "87%"
    # Σ w over the eight checks is 30: 22 ÷ 30 against 29 ÷ 30.
    assert by_name["leaky"].weighted == "73%" and by_name["ugly"].weighted == "96%"
    assert [c.name for c in context["columns"]] == ["ugly", "leaky"]


# -- shading -----------------------------------------------------------------------------------

def test_shade_steps() -> None:
    assert shade(None) is None
    assert [shade(v) for v in (0, 9.9, 10, 55, 99.9, 100)] == [0, 0, 1, 5, 9, 10]


def test_family_cells_are_shaded_by_their_score_not_two_colours() -> None:
    data = run_of({"a": {}, "b": {"fama.security": "fail"}, "c": {"fama.breaks_clients": "fail",
                                                                  "fama.security": "fail"}})
    html = render_matrix(data)
    fam_a = re.search(r'<tbody class="family" data-family="fama".*?</tr>', html, re.S)
    assert fam_a
    shades = re.findall(r'class="fcell (s\d+)[^"]*" data-col="(\d)"', fam_a.group(0))
    # 100 %, 7/15 = 46 %, 3/15 = 20 %: three different steps of one scale.
    assert dict((col, s) for s, col in shades) == {"0": "s10", "1": "s4", "2": "s2"}
    for step in range(11):  # every step has its own colour, and the bars use the same scale
        assert f".s{step} {{ background: hsl({step * 12}," in html
    # Still readable without colour: the percent and the symbols are in the cell.
    assert re.search(r'data-col="2"[^>]*><span class="fs">20%</span><span class="fc">'
                     r'<span class="t-pass">✓2</span><span class="t-fail">✗2</span>',
                     fam_a.group(0))


# -- security badge ---------------------------------------------------------------------------

def test_security_failures_badge_the_column_and_come_first_in_summary() -> None:
    data = run_of({"safe": {"famb.cosmetic": "fail"},
                   "open": {"fama.security": "fail", "famb.security": "fail"}})
    html = render_matrix(data)
    head = re.search(r'data-provider="open".*?</th>', html, re.S)
    assert head and '<span class="badge sec"' in head.group(0) and "⚠ 2 security" in head.group(0)
    safe = re.search(r'data-provider="safe".*?</th>', html, re.S)
    assert safe and "badge sec" not in safe.group(0)
    assert 'id="security-total"' in html
    text = render_summary_md(data)
    assert text.index("### ⚠ Security failures (2)") < text.index("| provider |") \
        < text.index("### Deviations")
    assert "| open ⚠ 2 security |" in text


# -- ranking -----------------------------------------------------------------------------------

def test_default_order_is_by_weighted_score_and_each_head_carries_its_sort_keys() -> None:
    data = run_of({"mid": {"fama.degrades": "fail"}, "top": {},
                   "low": {"fama.security": "fail"}},
                  speed={"top": (300, 900), "mid": (50, 100), "low": (80, 200)})
    html = render_matrix(data)
    assert column_order(html) == ["top", "mid", "low"]
    heads = dict(re.findall(r'data-provider="(\w+)" data-order="\d+" (data-score="[^"]*" '
                            r'data-rate="[^"]*" data-speed="[^"]*")', html))
    assert heads["top"] == 'data-score="100.000" data-rate="100.000" data-speed="900.000"'
    assert 'data-speed="100.000"' in heads["mid"]
    # Sorting by speed is the page's job; the data it needs (median total ms) is there,
    # and every row's cells follow the head's order.
    for row in re.finditer(r'<tr class="chk[^"]*" data-check="[^"]+">(.*?)</tr>', html, re.S):
        assert re.findall(r'data-col="(\d)"', row.group(1)) == ["1", "0", "2"]


def test_speed_figures_in_the_head_the_chart_and_summary() -> None:
    data = run_of({"fast": {}, "slow": {}}, speed={"fast": (40, 120), "slow": (400, 2500)})
    html = render_matrix(data)
    assert "<span>TTFT 40 ms</span> · <span>total 120 ms</span>" in html
    assert "<span>TTFT 400 ms</span> · <span>total 2500 ms</span>" in html
    chart = re.search(r'<svg class="latency".*?</svg>', html, re.S)
    assert chart
    rows = re.findall(r'<g class="lrow" data-provider="(\w+)"', chart.group(0))
    assert rows == ["fast", "slow"]
    # The slowest p95 sets the scale: its total bar spans the whole bar area.
    widths = [float(w) for w in re.findall(r'class="total" x="150" y="15" width="([\d.]+)"',
                                           chart.group(0))]
    assert widths == [pytest.approx(300 * 120 / 2500, abs=0.1), 300.0]
    text = render_summary_md(data)
    assert "| TTFT (median · p95) | total time (median · p95) | output tok/s |" in text
    assert "40 ms · p95 40 ms | 120 ms · p95 120 ms |" in text


# -- unrun providers and the reference ----------------------------------------------------------

def test_unrun_providers_collapse_into_one_row_of_chips() -> None:
    data = run_of({"ran": {}}, skipped={"api51": "set API51_API_KEY",
                                        "apiyi": "set APIYI_API_KEY"})
    assert unrun_reason(data.providers[1], [r for r in data.results
                                            if r.provider == "api51"]) == "set API51_API_KEY"
    html = render_matrix(data)
    assert column_order(html) == ["ran"]
    chips = re.search(r'<div class="unrun" id="unrun".*?</div>', html, re.S)
    assert chips and "<b>2 not run:</b>" in chips.group(0)
    assert "<b>api51</b> set API51_API_KEY" in chips.group(0)
    assert "<b>apiyi</b> set APIYI_API_KEY" in chips.group(0)
    assert [p["name"] for p in payload(html)["providers"]] == ["ran"]
    text = render_summary_md(data)
    assert "2 not run: api51 (set API51_API_KEY), apiyi (set APIYI_API_KEY)." in text
    assert "| api51" not in text


def test_the_reference_is_apart_and_out_of_every_overall_figure() -> None:
    data = run_of({"relay": {"fama.security": "fail", "famb.cosmetic": "fail"}},
                  reference="reference")
    assert is_reference(data.providers[1]) and not is_reference(data.providers[0])
    assert not is_reference({"base_url": "builtin:reference", "faults": ["no_done"]})
    context = build(data)
    assert [c.name for c in context["columns"]] == ["relay", "reference"]
    assert context["real_count"] == 1
    # Overall = the relay alone (6 of 8 pass; 21 of 30 weighted), not 14 of 16 with the
    # reference.
    assert context["overall"] == "75%" and context["overall_weighted"] == "70%"
    html = render_matrix(data)
    head = re.search(r'<th class="prov ref firstref"[^>]*data-provider="reference".*?</th>',
                     html, re.S)
    assert head and "reference, for comparison" in head.group(0)
    assert column_order(html) == ["relay", "reference"]
    text = render_summary_md(data)
    assert "75% pass rate" in text and "(the reference is left out)" in text
    assert "| reference (reference, for comparison) |" in text
    assert text.index("| relay") < text.index("| reference (")


def test_a_hundred_providers_by_a_hundred_checks_render_in_one_pass() -> None:
    """No quadratic work over providers × checks: the context has one cell per pair and one
    bar per (provider, family)."""
    from tests.test_report import synthetic_run
    data = synthetic_run(100, 100)
    context = build(data)
    cells = sum(len(r.cells) for f in context["families"] for r in f.rows)
    assert cells == 100 * 100
    families = len(context["families"])
    assert all(len(c.bars) == families for c in context["columns"])


# -- the event a verdict is about --------------------------------------------------------------

Results = dict[tuple[str, str], dict[str, Any]]


def variant_results(server: ReferenceServer, tmp_path: Path, variants: list[str],
                    marker: str) -> tuple[Results, list[dict[str, Any]]]:
    """The results (and providers) of a run of the checks marked ``marker`` against one
    provider per variant of the reference (named after it)."""
    path = write_providers(tmp_path / "providers.yaml", [
        external(v, server.variant_url([v])) for v in variants])
    out = run_suite(path, tmp_path / "r", "-m", marker)
    assert out.returncode == 0, out.stderr[-2000:]
    return ({(r["provider"], r["check"]): r for r in out.data["results"]},
            out.data["providers"])


def event_about(results: Results, provider: str, check: str
                ) -> tuple[list[dict[str, Any]], int]:
    """The events of the exchange a failed result's ``evidence.event`` points into, and the
    index it names."""
    result = results[(provider, check)]
    assert result["outcome"] == "fail", result
    where = result["evidence"]["event"]
    exchange = result["evidence"]["exchanges"][where["exchange"]]
    return exchange["response"]["events"], where["index"]


def test_streaming_failures_name_the_event_they_are_about(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    results, providers = variant_results(reference_server, tmp_path, [
        "chunk_wrong_object", "chunk_ids_vary", "events_after_done", "no_done",
        "no_role_chunk"], "streaming")
    about = functools.partial(event_about, results)

    events, n = about("chunk_wrong_object", "streaming.chunk_schema")
    assert json.loads(events[n]["data"])["object"] != "chat.completion.chunk"
    events, n = about("chunk_ids_vary", "streaming.consistent_ids")
    first = next(json.loads(e["data"]) for e in events if e["data"].startswith("{"))
    assert json.loads(events[n]["data"])["id"] != first["id"]
    events, n = about("events_after_done", "streaming.nothing_after_done")
    assert events[n - 1]["data"] == "[DONE]" and events[n]["data"] != "[DONE]"
    events, n = about("events_after_done", "streaming.done_sentinel")
    assert events[n]["data"] == "[DONE]" and n < len(events) - 1
    events, n = about("no_done", "streaming.done_sentinel")
    assert n == len(events) - 1
    events, n = about("no_role_chunk", "streaming.role_first")
    assert "role" not in json.loads(events[n]["data"])["choices"][0]["delta"]
    # A verdict about the stream as a whole names no event; a pass never does.
    assert "event" not in results[("no_done", "streaming.chunk_schema")]["evidence"]
    # The results carry the key's variable name for "Copy as curl", never a value.
    assert {p["api_key_env"] for p in providers} == {"CONFORMANCE_SELFTEST_KEY"}


def test_streamed_tool_call_failures_name_the_delta_they_are_about(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """The streamed tool-call checks name the chunk their fail is about: the first tool_calls
    delta without an index, the call that reuses another's index, the delta that sends a
    call's name again, the arguments delta that is an object."""
    results, _ = variant_results(reference_server, tmp_path, [
        "stream_tool_no_index", "stream_tool_same_index", "stream_tool_name_repeated",
        "tool_args_object"], "tools")
    about = functools.partial(event_about, results)

    def calls(event: dict[str, Any]) -> list[dict[str, Any]]:
        return list(json.loads(event["data"])["choices"][0]["delta"].get("tool_calls") or [])

    events, n = about("stream_tool_no_index", "tools.stream_index")
    assert calls(events[n]) and "index" not in calls(events[n])[0]
    assert not any(calls(e) for e in events[:n] if e["data"].startswith("{"))  # the first
    events, n = about("stream_tool_same_index", "tools.stream_index")
    earlier = {c.get("id") for e in events[:n] if e["data"].startswith("{") for c in calls(e)}
    assert calls(events[n])[0]["index"] == 0 and calls(events[n])[0]["id"] not in earlier
    events, n = about("stream_tool_name_repeated", "tools.stream_once")
    name = calls(events[n])[0]["function"]["name"]
    assert any(c.get("function", {}).get("name") == name
               for e in events[:n] if e["data"].startswith("{") for c in calls(e))
    events, n = about("tool_args_object", "tools.stream_arguments")
    assert isinstance(calls(events[n])[0]["function"]["arguments"], dict)


def test_usage_and_n_stream_failures_name_the_chunk_they_are_about(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """usage.stream_include_usage names the chunk whose usage is wrong or misplaced, n.stream
    the first delta of the choice that lacks its role."""
    results, _ = variant_results(reference_server, tmp_path, [
        "usage_on_content_chunk", "usage_bad_total", "no_role_chunk"], "usage or n")
    about = functools.partial(event_about, results)

    events, n = about("usage_on_content_chunk", "usage.stream_include_usage")
    chunk = json.loads(events[n]["data"])
    assert chunk["usage"] and chunk["choices"] and events[n + 1]["data"] == "[DONE]"
    events, n = about("usage_bad_total", "usage.stream_include_usage")
    usage = json.loads(events[n]["data"])["usage"]
    assert usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]
    events, n = about("no_role_chunk", "n.stream")
    chunk = json.loads(events[n]["data"])
    assert chunk["choices"][0]["index"] == 0 and "role" not in chunk["choices"][0]["delta"]
    assert not any(e["data"].startswith("{") for e in events[:n])  # choice 0's first delta


def test_a_stream_past_its_stop_names_the_chunk_the_stop_text_came_in(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """stop.stream, when the stream ignores stop, names the chunk that brought the stop text
    (the first one: the text before it does not hold it)."""
    results, _ = variant_results(reference_server, tmp_path, ["ignore_stop_stream"], "stop")
    events, n = event_about(results, "ignore_stop_stream", "stop.stream")

    def content(event: dict[str, Any]) -> str:
        if not event["data"].startswith("{"):
            return ""
        return str(json.loads(event["data"])["choices"][0]["delta"].get("content") or "")

    before = "".join(content(e) for e in events[:n])
    assert prompts.STOP_TEXT not in before and prompts.STOP_TEXT in before + content(events[n])


def test_max_tokens_and_json_stream_failures_name_the_chunk_they_are_about(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """max_tokens.stream names the chunk that gave the wrong finish_reason;
    json_mode.json_schema_stream the chunk where the text stops being JSON (prose from its
    first character, or a Markdown fence)."""
    results, _ = variant_results(reference_server, tmp_path, [
        "ignore_max_tokens", "ignore_response_format_stream", "json_fenced"],
        "max_tokens or json_mode")
    about = functools.partial(event_about, results)

    def chunk(event: dict[str, Any]) -> dict[str, Any]:
        return dict(json.loads(event["data"])) if event["data"].startswith("{") else {}

    def content(event: dict[str, Any]) -> str:
        choices = chunk(event).get("choices") or [{}]
        return str(choices[0].get("delta", {}).get("content") or "")

    events, n = about("ignore_max_tokens", "max_tokens.stream")
    assert chunk(events[n])["choices"][0]["finish_reason"] == "stop"
    for provider in ("ignore_response_format_stream", "json_fenced"):
        events, n = about(provider, "json_mode.json_schema_stream")
        # the first chunk with text: the answer is not JSON from its first character on
        assert content(events[n]) and not any(content(e) for e in events[:n]), provider
    assert content(events[n]).lstrip().startswith("`")  # json_fenced: the fence


def test_a_run_of_the_reference_alone_says_so() -> None:
    data = run_of({}, reference="reference")
    html = render_matrix(data)
    assert column_order(html) == ["reference"]
    assert "only the builtin reference was run" in html
    text = render_summary_md(data)
    assert "only the builtin reference was run" in text
    assert "| reference (reference, for comparison) | m | 100% | 100% |" in text


def test_named_event_stream_failures_name_the_event_they_are_about(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """The Messages and Responses stream checks name the event their fail is about, as the
    streaming family does: an OpenAI chunk in a named-event stream, an event whose SSE name is
    not its type, a sequence_number that goes back, an event invalid for its type."""
    results, _ = variant_results(reference_server, tmp_path, [
        "messages_stream_openai_chunks", "messages_stream_no_event_names",
        "responses_stream_chat_chunks", "responses_stream_no_event_names",
        "responses_stream_sequence_reset", "responses_stream_invalid_event"],
        "messages_api or responses_api")
    about = functools.partial(event_about, results)

    for provider, check in (("messages_stream_openai_chunks", "messages_api.stream"),
                            ("responses_stream_chat_chunks", "responses_api.stream")):
        events, n = about(provider, check)
        assert "choices" in json.loads(events[n]["data"])
    for provider, check in (("messages_stream_no_event_names",
                             "messages_api.stream_event_names"),
                            ("responses_stream_no_event_names", "responses_api.stream_events")):
        events, n = about(provider, check)
        assert events[n].get("event") != json.loads(events[n]["data"])["type"]
    events, n = about("responses_stream_sequence_reset", "responses_api.stream_events")
    numbers = [json.loads(e["data"]).get("sequence_number") for e in events[:n + 1]
               if e["data"].startswith("{")]
    assert numbers[-1] <= max(numbers[:-1])
    events, n = about("responses_stream_invalid_event", "responses_api.stream_schema")
    invalid = json.loads(events[n]["data"])
    assert invalid["type"] == "response.output_text.delta" and "item_id" not in invalid
