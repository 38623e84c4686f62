"""History trends (report/history.py, ``--history``) and the CI niceties (report/ci.py): no
row repeated in summary.md, the artifact link, ``::error`` annotations, a lost provider as a
regression.  Hand-made run directories (results.json as a run writes it) through the real
command line, and one real run of a fault variant for the annotations of ``conformance run``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conformance.reference.server import ReferenceServer
from conformance.report.ci import annotation_lines, error, run_url
from conformance.report.diff import Snapshot, diff_runs
from conformance.report.history import load_history, sparkline, trends
from conformance.report.summary import render_summary_md
from conformance.results import Result, RunData, write_json
from tests.conftest import external, run_cli, run_suite, write_providers

CHECKS = [{"id": "chat.basic", "behavior": "chat", "title": "t", "spec": "s",
           "severity": "breaks-clients"},
          {"id": "auth.wrong_key", "behavior": "auth", "title": "t", "spec": "s",
           "severity": "security"},
          {"id": "stop.string", "behavior": "stop", "title": "t", "spec": "s",
           "severity": "breaks-clients"}]


def _exchange(xid: str, elapsed: float) -> dict[str, Any]:
    return {"id": xid, "request": {"method": "POST", "url": "u", "headers": {}, "body": {}},
            "response": {"status": 200, "headers": {}, "body": {}}, "elapsed_ms": elapsed,
            "first_byte_ms": elapsed}


def _run(run_id: str, started: str, outcomes: dict[tuple[str, str], str],
         latency: float = 100.0) -> RunData:
    results = [Result(provider=p, model="m", check=c, behavior=c.split(".")[0], outcome=o,  # type: ignore[arg-type]
                      message=f"{c} {o} message", duration_ms=1,
                      evidence={"exchanges": [_exchange(f"{run_id}-{p}-{c}", latency)]})
               for (p, c), o in outcomes.items()]
    providers = [{"name": p, "base_url": "", "models": {"default": "m"}}
                 for p in dict.fromkeys(p for p, _ in outcomes)]
    return RunData(run={"id": run_id, "started_at": started, "finished_at": started},
                   providers=providers, checks=CHECKS, results=results)


def _write(directory: Path, data: RunData) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    write_json(directory / "results.json", data.to_json())
    return directory


ALL_PASS = {("a", "chat.basic"): "pass", ("a", "auth.wrong_key"): "pass",
            ("a", "stop.string"): "pass", ("b", "chat.basic"): "fail"}
NOW = {("a", "chat.basic"): "pass", ("a", "auth.wrong_key"): "fail",
       ("a", "stop.string"): "fail"}


def test_summary_never_repeats_a_row_of_since_baseline_in_deviations() -> None:
    old, new = _run("old", "2026-11-28T03:00:00Z", ALL_PASS), _run("new", "2026-11-29", NOW)
    md = render_summary_md(new, diff_runs(Snapshot.from_run(old), Snapshot.from_run(new)))
    rows = [line for line in md.splitlines() if "`stop.string`" in line]
    assert len(rows) == 1 and rows[0].startswith("| ↓ regression |"), rows
    assert "### Deviations" not in md
    assert "No other deviations than the 2 listed since the baseline." in md
    # a deviation that is no change since the baseline is still listed below
    newer = _run("new", "2026-11-29", {**NOW, ("a", "chat.basic"): "error"})
    older = _run("old", "2026-11-28", {**ALL_PASS, ("a", "chat.basic"): "error"})
    md = render_summary_md(newer, diff_runs(Snapshot.from_run(older), Snapshot.from_run(newer)))
    assert "### Deviations (1) (2 more listed above, since the baseline)" in md
    assert len([line for line in md.splitlines() if "`chat.basic`" in line]) == 1


def test_summary_links_the_actions_run_artifacts(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_REPOSITORY": "acme/relays", "GITHUB_RUN_ID": "123456"}
    url = "https://github.com/acme/relays/actions/runs/123456"
    assert run_url(env) == url
    assert run_url({}) is None
    assert run_url({**env, "GITHUB_REPOSITORY": "acme/x) [y](z"}) is None
    assert run_url({**env, "GITHUB_RUN_ID": "12; rm"}) is None
    data = _run("new", "2026-11-29", NOW)
    assert f"[{url}]({url}#artifacts)" in render_summary_md(data, artifacts=url)
    # write_reports reads the environment: `conformance report` inside Actions links the run
    directory = _write(tmp_path / "r", data)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    proc = run_cli(["report", str(directory)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"({url}#artifacts)" in (directory / "summary.md").read_text(encoding="utf-8")
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert run_cli(["report", str(directory)], cwd=tmp_path).returncode == 0
    assert "#artifacts" not in (directory / "summary.md").read_text(encoding="utf-8")


def test_annotations_escape_and_are_capped() -> None:
    assert error("Regression: a, b", "line 1\nline 2: 100%") == \
        "::error title=Regression%3A a%2C b::line 1 line 2: 100%25"
    many = _run("new", "t", {(f"p{n}", "auth.wrong_key"): "fail" for n in range(60)})
    lines = annotation_lines(None, many)
    assert len(lines) == 50 and lines[-1].startswith("::error title=More findings::11 more")


def test_diff_annotates_regressions_lost_providers_and_security_failures(
        tmp_path: Path) -> None:
    old = _write(tmp_path / "old", _run("old", "2026-11-28", ALL_PASS))
    new = _write(tmp_path / "new", _run("new", "2026-11-29", NOW))
    quiet = run_cli(["diff", str(old), str(new)], cwd=tmp_path, env={"GITHUB_ACTIONS": ""})
    assert quiet.returncode == 1 and "::error" not in quiet.stdout
    proc = run_cli(["diff", str(old), str(new)], cwd=tmp_path, env={"GITHUB_ACTIONS": "true"})
    assert proc.returncode == 1
    errors = [line for line in proc.stdout.splitlines() if line.startswith("::error")]
    assert errors == [
        "::error title=Regression%3A auth.wrong_key [a]::passed in baseline old, now fail: "
        "auth.wrong_key fail message",
        "::error title=Regression%3A stop.string [a]::passed in baseline old, now fail: "
        "stop.string fail message",
        "::error title=Provider missing%3A b::b was in baseline old and is absent from this run",
        "::error title=Security%3A auth.wrong_key [a]::auth.wrong_key fail message",
    ]


def test_a_provider_lost_from_a_merge_is_a_regression(tmp_path: Path) -> None:
    """b had no passing check last night (so no check of it can regress), but it vanished:
    `conformance diff` and `merge --baseline` exit 1 and say so."""
    old = _write(tmp_path / "old", _run("old", "2026-11-28", ALL_PASS))
    tonight = _write(tmp_path / "a-only", _run("new", "2026-11-29",
                                               {("a", k[1]): "pass" for k in ALL_PASS}))
    proc = run_cli(["diff", str(old), str(tonight)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    assert "a regression: b had judged results in the baseline and none now" in proc.stdout
    assert "0 regressions" in proc.stdout and "1 missing provider" in proc.stdout
    merged = tmp_path / "merged"
    proc = run_cli(["merge", str(merged), str(tonight), "--baseline", str(old)], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "provider(s) missing from this run: b" in proc.stdout
    summary = (merged / "summary.md").read_text(encoding="utf-8")
    assert "**1 missing provider** (a regression)" in summary
    # a provider that was only skipped (no key) last night is not missed
    skipped = _write(tmp_path / "skipped", _run("old2", "2026-11-28", {
        **{("a", k[1]): "pass" for k in ALL_PASS}, ("c", "chat.basic"): "skip"}))
    assert run_cli(["diff", str(skipped), str(tonight)], cwd=tmp_path).returncode == 0


def test_history_trend_ordered_by_run_time_with_gaps(tmp_path: Path) -> None:
    runs = [_run("n1", "2026-11-27", {("a", "chat.basic"): "pass", ("a", "stop.string"): "fail"},
                 latency=300),
            _run("n3", "2026-11-29", {("a", "chat.basic"): "pass", ("a", "stop.string"): "pass"},
                 latency=100),
            _run("n2", "2026-11-28", {("a", "chat.basic"): "skip"}, latency=200)]
    current = _run("now", "2026-11-30", NOW, latency=150)
    points = trends(current, runs)["a"]
    assert [p.run_id for p in points] == ["n1", "n2", "n3", "now"]
    assert [p.score for p in points] == [50.0, None, 100.0, pytest.approx(100 / 3)]
    assert [p.latency for p in points] == [300, 200, 100, 150]
    svg = str(sparkline(points))
    assert svg.startswith('<svg class="spark" role="img"') and svg.count("<polyline") == 2
    assert "n2: —, 200 ms" in svg and "<script" not in svg
    assert str(sparkline(points[:1])) == ""


def test_report_with_history_renders_the_trend_and_skips_bad_dirs(tmp_path: Path) -> None:
    h1 = _write(tmp_path / "h1", _run("n1", "2026-11-27", ALL_PASS, latency=300))
    h2 = _write(tmp_path / "h2", _run("n2", "2026-11-28", ALL_PASS, latency=200))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json", encoding="utf-8")
    current = _write(tmp_path / "now", _run("now", "2026-11-30", NOW, latency=150))
    proc = run_cli(["report", str(current), "--history", str(h2), str(h1), str(broken),
                    str(tmp_path / "missing")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    problems = proc.stderr.strip().splitlines()
    assert len(problems) == 2 and "Traceback" not in proc.stderr
    assert problems[0].startswith(f"conformance: history {broken}: ")
    assert problems[1] == (f"conformance: history {tmp_path / 'missing'}: no such directory "
                           "(left out of the trend)")
    summary = (current / "summary.md").read_text(encoding="utf-8")
    assert "### Trend over the last 3 runs" in summary
    assert "| a | 100% → 100% → 33% | 300 ms → 200 ms → 150 ms | `n1`, `n2`, `now` |" in summary
    html = (current / "matrix.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<span class="trend"><svg class="spark"', html)) == 1
    # without --history, no trend
    assert run_cli(["report", str(current)], cwd=tmp_path).returncode == 0
    assert "Trend over" not in (current / "summary.md").read_text(encoding="utf-8")


def test_load_history_reads_a_killed_run(tmp_path: Path) -> None:
    runs, problems = load_history([tmp_path])
    assert runs == [] and problems == [
        f"history {tmp_path}: {tmp_path}: no results.json, results.jsonl or run.json (left out "
        "of the trend)"]


def test_run_annotates_a_security_failure(reference_server: ReferenceServer,
                                          tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        external("lax", reference_server.variant_url(["accept_any_key"]))])
    out = run_suite(path, tmp_path / "r", "-k", "auth.wrong_key",
                    env={"GITHUB_ACTIONS": "true"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"^::error title=Security%3A auth\.wrong_key \[lax\]::.+$", out.stdout,
                     re.MULTILINE), out.stdout[-2000:]
