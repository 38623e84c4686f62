"""Hostile or broken providers cannot break the report of a run.

Each test serves a small provider on 127.0.0.1 that answers every request (models, chat
completions, streams, errors) with one kind of poison, runs the whole suite against it next
to the builtin reference provider, and asserts that the run still completes with every report
file written, the reference's results intact, and the poison defused in each artefact.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.reference.server import ThreadedServer
from conformance.report.diff import md_cell
from conformance.report.junit import xml_text
from conformance.report.terminal import render_summary
from conformance.results import MAX_DEPTH, Result, RunData, printable, safe_json
from tests import hostile as guard
from tests.conftest import run_cli, write_providers

DEPTH = 500
#: Markdown or HTML a provider may send, and how each must not appear in summary.md.
MARKDOWN_POISON = ("![pixel](http://127.0.0.1:9/track.png) [click](http://127.0.0.1:9/x) "
                   "<img src=http://127.0.0.1:9/p.png> <b>bold</b>")
#: Control characters: ANSI colour and title escapes, NUL, a bell, a backspace.
#: Link or image syntax Markdown would render: a bracket not escaped by a backslash.
RENDERED = re.compile(r"(?<!\\)(?:\\\\)*[\[\]]")
CONTROL_POISON = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 nul\x00 bs\x08 del\x7f end"


#: U+2028, U+2029 and NEL (C1): json.dumps(ensure_ascii=False) writes them raw.
SEPARATOR_POISON = "line\u2028sep para\u2029sep nel\x85sep"


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return {"nested": value}


#: kind → (the text put in every content and error message, extra fields of every object).
POISONS: dict[str, tuple[str, dict[str, Any]]] = {
    "surrogate": ("lone \ud800 surrogate \udfff", {"odd": "\udc80"}),
    "deep": ("deep data", {"extra": _deep(DEPTH)}),
    "control": (CONTROL_POISON, {"odd": CONTROL_POISON}),
    "markdown": (MARKDOWN_POISON, {"odd": MARKDOWN_POISON}),
    # NaN and ±Infinity, which Python's json reads and writes but RFC 8259 (and a browser's
    # JSON.parse, reading the matrix's embedded data) does not: json.dumps below writes them bare
    "nonfinite": ("not a number", {"nan": float("nan"), "inf": float("inf"),
                                   "ninf": float("-inf")}),
    # Unicode line separators JSON carries unescaped, which str.splitlines splits a line at
    "separators": (SEPARATOR_POISON, {"odd": SEPARATOR_POISON}),
}


#: The run's data embedded in matrix.html, which the page reads with JSON.parse.
EMBEDDED = re.compile(r'<script type="application/json" id="conformance-data">(.*?)</script>',
                      re.S)


def strict_json(text: str) -> Any:
    """``text`` read as RFC 8259 JSON (Python's json alone takes NaN and Infinity too)."""
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def _json(data: Any, status: int = 200) -> Response:
    # ensure_ascii: a lone surrogate goes on the wire as the escape "\ud800", valid JSON text
    # that Python decodes into a str no UTF-8 codec accepts.
    text = json.dumps(data).replace('"BIGINT"', "9" * 5000)
    return Response(text.encode(), status, media_type="application/json")


def hostile_app() -> Starlette:
    """``/<kind>/v1/...``: every answer carries the poison of ``kind``."""

    def poison(request: Request) -> tuple[str, dict[str, Any]]:
        return POISONS[request.path_params["kind"]]

    async def models(request: Request) -> Response:
        text, extra = poison(request)
        return _json({"object": "list", "data": [
            {"id": "ref-1", "object": "model", "created": 1, "owned_by": text, **extra}]})

    async def chat(request: Request) -> Response:
        text, extra = poison(request)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("messages"):
            return _json({"error": {"message": text, "type": "invalid_request_error",
                                    "code": text, **extra}}, 400)
        if body.get("stream"):
            chunks = [{"id": "c1", "object": "chat.completion.chunk", "created": 1,
                       "model": "ref-1", **extra,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                    "logprobs": None}]}
                      for delta, finish in (({"role": "assistant", "content": ""}, None),
                                            ({"content": text}, None), ({}, "stop"))]
            payload = "".join(f"data: {json.dumps(c)}\n\n".replace('"BIGINT"', "9" * 5000)
                              for c in chunks) + "data: [DONE]\n\n"
            return Response(payload.encode(), media_type="text/event-stream")
        return _json({"id": "c1", "object": "chat.completion", "created": 1, "model": "ref-1",
                      **extra,
                      "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                   "message": {"role": "assistant", "content": text,
                                               "refusal": None}}],
                      "usage": {"prompt_tokens": 3, "completion_tokens": 2,
                                "total_tokens": 5, **extra}})

    async def other(request: Request) -> Response:
        text, extra = poison(request)
        return _json({"error": {"message": text, "type": text, "code": None, **extra}}, 404)

    return Starlette(routes=[
        Route("/{kind}/v1/models", models, methods=["GET"]),
        Route("/{kind}/v1/chat/completions", chat, methods=["POST"]),
        Route("/{kind}/v1/{path:path}", other, methods=["GET", "POST"]),
    ])


@pytest.fixture(scope="module")
def hostile() -> Iterator[ThreadedServer]:
    with ThreadedServer(hostile_app()) as server:
        yield server


HOSTILE_KEY = "sk-hostile-key-1234567890abcdef"


def _run(tmp_path: Path, server: ThreadedServer, kind: str, *extra: str) -> tuple[Path, str]:
    providers = write_providers(tmp_path / "providers.yaml", [
        {"name": "reference", "builtin": "reference"},
        {"name": f"hostile-{kind}", "base_url": f"{server.origin}/{kind}/v1",
         "api_key": HOSTILE_KEY, "model": "ref-1"},
    ])
    run = guard.run_measured(providers, tmp_path / "report", *extra)
    guard.assert_sound(run, keys=[HOSTILE_KEY])
    out, report = run.out, run.out.report_dir
    data = json.loads((report / "results.json").read_text(encoding="utf-8"))
    hostile_results = [r for r in data["results"] if r["provider"] == f"hostile-{kind}"]
    assert len(hostile_results) == len([r for r in data["results"]
                                        if r["provider"] == "reference"])
    assert "\x1b" not in out.stdout + out.stderr
    return report, (report / "results.json").read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", [
    "surrogate",
    "deep",
    "control",
    "markdown",
    "nonfinite",
    "separators",
    # -n 2: each worker's results reach the controller through its results.<worker>.jsonl
    "separators+xdist",
])
def test_hostile_provider_next_to_reference_every_report_written(
        tmp_path: Path, hostile: ThreadedServer, kind: str) -> None:
    kind, xdist = kind.removesuffix("+xdist"), kind.endswith("+xdist")
    report, text = _run(tmp_path, hostile, kind, *(["-n", "2"] if xdist else []))
    text.encode("utf-8")  # strict: no lone surrogate survived
    for name in ("results.jsonl", "summary.md", "matrix.html", "junit.xml"):
        content = (report / name).read_text(encoding="utf-8")
        assert "\x1b" not in content and "\x00" not in content, name
    summary = (report / "summary.md").read_text(encoding="utf-8")
    if kind == "markdown":
        assert not RENDERED.search(summary), RENDERED.search(summary)
        assert "<img" not in summary and "<b>" not in summary
        assert "\\[click\\](http://127.0.0.1:9/x)" in summary
    if kind == "deep":
        assert f"nested deeper than {MAX_DEPTH} levels" in text
    # Strict JSON everywhere a reader (jq, a browser's JSON.parse) meets it: no bare NaN.
    strict_json(text)
    for line in (report / "results.jsonl").read_text(encoding="utf-8").split("\n")[:-1]:
        strict_json(line)  # JSON Lines end at "\n" only (str.splitlines also cuts at U+2028)
    embedded = EMBEDDED.search((report / "matrix.html").read_text(encoding="utf-8"))
    assert embedded is not None
    strict_json(embedded.group(1))
    if kind == "nonfinite":
        results = {r["check"]: r for r in json.loads(text)["results"]
                   if r["provider"] == "hostile-nonfinite"}
        assert results["chat.basic"]["outcome"] == "fail"
        assert "NaN is not a JSON value, RFC 8259" in results["chat.basic"]["message"]
        assert results["streaming.chunk_schema"]["outcome"] == "fail"
    # Re-rendering from the files alone gives the same four files, without a traceback.
    proc = run_cli(["report", str(report)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "\x1b" not in proc.stdout
    ET.parse(report / "junit.xml")


# --- unit tests of the sanitising functions -------------------------------------------------


def test_safe_json_replaces_lone_surrogates_in_keys_and_values() -> None:
    data = {"a\ud800": ["x\udfffy", {"k": "\ud83d"}], "ok": "😀", "n": 1, "f": None}
    clean = safe_json(data)
    assert clean == {"a\ufffd": ["x\ufffdy", {"k": "\ufffd"}], "ok": "😀", "n": 1, "f": None}
    json.dumps(clean, ensure_ascii=False).encode("utf-8")


def test_safe_json_cuts_deep_nesting_without_recursion() -> None:
    clean = safe_json(_deep(100_000))
    level = clean["nested"]
    for _ in range(MAX_DEPTH - 1):
        level = level[0]
    assert level == f"… (nested deeper than {MAX_DEPTH} levels)"
    json.dumps(clean, indent=1)


def test_result_made_safe_when_built_and_loaded(tmp_path: Path) -> None:
    result = Result("p\ud800", "m", "chat.basic", "chat", "fail", "got \udc80", 1,
                    {"exchanges": [{"response": {"body": _deep(5000)}}]})
    assert result.provider == "p\ufffd" and result.message == "got \ufffd"
    json.dumps(result.to_json(), indent=1).encode("utf-8")


def test_unknown_outcome_in_results_json_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    report = tmp_path / "run"
    report.mkdir()
    good = Result("p", "m", "chat.basic", "chat", "pass", "ok", 1).to_json()
    weird = {**good, "check": "chat.other", "outcome": "weird"}
    (report / "results.json").write_text(json.dumps({
        "format": "conformance-results/1",
        "run": {"id": "r1", "started_at": "x", "finished_at": "y", "suite_version": "0"},
        "providers": [{"name": "p", "base_url": "", "models": {}}],
        "checks": [], "results": [good, weird]}), encoding="utf-8")
    proc = run_cli(["report", str(report)], cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown outcome 'weird'" in proc.stderr


def test_printable_escapes_controls_and_surrogates() -> None:
    assert printable(CONTROL_POISON) == (
        "\\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07 nul\\x00 bs\\x08 del\\x7f end")
    assert printable("tab\tnew\nline \ud800 ünï ✓") == "tab\tnew\nline \ufffd ünï ✓"


def test_xml_text_is_xml_1_0() -> None:
    element = ET.Element("x", message=xml_text(CONTROL_POISON + "\ufffe\ud800"))
    element.text = xml_text("\x00\x1b\x0c")
    ET.fromstring(ET.tostring(element, encoding="unicode"))


def test_md_cell_renders_no_link_image_or_html() -> None:
    cell = md_cell(MARKDOWN_POISON + " | a_b (c) \\[d](http://e)")
    assert not RENDERED.search(cell) and "<" not in cell
    assert "\\[click\\](http://127.0.0.1:9/x)" in cell and "\\|" in cell
    assert "a_b (c) \\\\\\[d\\](http://e)" in cell


def test_terminal_summary_shows_provider_escapes_literally() -> None:
    results = [Result("p\x1b[2J[bold]x", "m", "chat.basic", "chat\x1b]0;t\x07", "error",
                      "refused \x1b[31mred", 1, {"provider_problem": "unreachable"})]
    data = RunData(run={"id": "r"}, providers=[], checks=[], results=results)
    text = render_summary(data, width=200, color=True)
    assert "\x1b]0" not in text and "\x1b[2J" not in text and "\x1b[31mred" not in text
    assert "[bold]x" in text.replace("\x1b", "")  # markup shown, not applied


@pytest.mark.parametrize("finished", [1, 2])
def test_killed_run_stays_incomplete_when_rendered_twice(tmp_path: Path, finished: int) -> None:
    """kill -9 leaves run.json and results.jsonl; ``conformance report`` twice (the second
    time from the results.json the first wrote) keeps the "did not finish" mark, also when
    every planned check had finished but the run never did."""
    report = tmp_path / "run"
    report.mkdir()
    checks = [{"id": f"chat.c{i}", "behavior": "chat", "title": "t", "spec": ""}
              for i in range(2)]
    (report / "run.json").write_text(json.dumps({
        "run": {"id": "r1", "started_at": "2026-01-01T00:00:00Z", "suite_version": "0"},
        "providers": [{"name": "p", "base_url": "", "models": {}}], "checks": checks,
        "planned": [[c["id"], "p"] for c in checks]}), encoding="utf-8")
    with (report / "results.jsonl").open("w", encoding="utf-8") as fh:
        for check in checks[:finished]:
            fh.write(json.dumps(Result("p", "m", check["id"], "chat", "pass", "ok", 1)
                                .to_json()) + "\n")
    note = f"Incomplete run: {finished} of 2 checks finished"
    for _ in range(2):
        proc = run_cli(["report", str(report)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert note in proc.stdout
        data = json.loads((report / "results.json").read_text(encoding="utf-8"))
        assert data["run"]["incomplete"]["finished"] == finished
        assert data["run"]["finished_at"] is None
        assert note in (report / "summary.md").read_text(encoding="utf-8")
        assert note in (report / "matrix.html").read_text(encoding="utf-8")
