"""The renderers, from result data alone: matrix.html, summary.md, diff, merge, secrets.

Synthetic runs (``synthetic_run``) give exact control over outcomes and evidence, including
hostile provider text; the end-to-end tests in ``test_report_cli.py`` use real runs.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from conformance.config import FAMILIES, load_providers
from conformance.redact import Redactor
from conformance.report import write_reports
from conformance.report.allure import sse_text
from conformance.report.common import score
from conformance.report.diff import Snapshot, diff_runs, render_markdown, render_text
from conformance.report.matrix import render_matrix
from conformance.report.merge import merge_runs
from conformance.report.summary import render_summary_md
from conformance.report.terminal import render_summary
from conformance.results import OUTCOMES, Result, RunData, load_run
from conformance.run import provider_entry

#: Provider text that would break out of an inline <script> if embedded naively.
HOSTILE = "</script><script>window.PWNED=1</script><!-- \u2028 & <b>bold</b>"


def exchange(xid: str, *, stream: bool = False, body: Any = None, status: int = 200,
             pad: int = 0) -> dict[str, Any]:
    """An evidence exchange shaped like ``Exchange.to_evidence()``."""
    response: dict[str, Any] = {"status": status,
                                "headers": {"content-type": "application/json"}}
    if stream:
        response["headers"] = {"content-type": "text/event-stream"}
        response["events"] = [
            {"t_ms": 10.0 + i, "data": json.dumps({"choices": [{"delta": {"content": str(i)}}]})}
            for i in range(5)] + [{"t_ms": 20.5, "data": "[DONE]"}]
    else:
        response["body"] = body if body is not None else {
            "object": "chat.completion", "note": "x" * pad,
            "choices": [{"message": {"role": "assistant", "content": f"answer {xid}"}}]}
    return {
        "id": xid,
        "request": {"method": "POST", "url": "http://127.0.0.1:1/v1/chat/completions",
                    "headers": {"authorization": "Bearer ***"},
                    "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                             "stream": stream}},
        "response": response,
        "elapsed_ms": 12.5,
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }


def synthetic_run(n_providers: int, n_checks: int, *, pad: int = 0,
                  outcomes: dict[tuple[str, str], str] | None = None) -> RunData:
    """``n_providers`` × ``n_checks`` results cycling through every outcome; every third
    check of a provider shares one exchange (like the streaming checks do)."""
    families = [f for f in FAMILIES if f != "sdk"]
    checks = [{"id": f"{families[i % len(families)]}.check_{i:03d}",
               "behavior": families[i % len(families)], "title": f"Title of check {i}",
               "spec": f"spec ref {i}", "proves": f"Proves thing {i}."}
              for i in range(n_checks)]
    checks.sort(key=lambda c: families.index(c["behavior"]))
    providers = [{"name": f"prov{p:02d}", "base_url": f"https://p{p}.example/v1",
                  "models": {"default": f"model-{p}"}} for p in range(n_providers)]
    results = []
    for p, provider in enumerate(providers):
        for i, check in enumerate(checks):
            name = str(provider["name"])
            outcome = (outcomes or {}).get((name, check["id"]))
            if outcome is None:
                outcome = "pass" if (i + p) % 7 else OUTCOMES[(i + p) // 7 % len(OUTCOMES)]
            shared = f"shared-{p}-{i // 3}"
            results.append(Result(
                provider=name, model=f"model-{p}", check=check["id"],
                behavior=check["behavior"], outcome=outcome,  # type: ignore[arg-type]
                message=f"{outcome} message for {check['id']} on {name}",
                duration_ms=10 + i,
                evidence={"exchanges": [exchange(shared, stream=i // 3 % 2 == 0, pad=pad),
                                        exchange(f"own-{p}-{i}", pad=pad)]},
            ))
    run = {"id": "20260101T000000Z-abcd", "started_at": "2026-01-01T00:00:00Z",
           "finished_at": "2026-01-01T00:01:00Z", "suite_version": "9.9.9",
           "duration_ms": 60_000}
    return RunData(run=run, providers=providers, checks=checks, results=results)


def payload(html: str) -> dict[str, Any]:
    """The JSON data block embedded in matrix.html."""
    match = re.search(r'<script type="application/json" id="conformance-data">(.*?)</script>',
                      html, re.S)
    assert match, "no data block"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def cell_classes(html: str) -> dict[tuple[str, int], str]:
    """(check id, column) → outcome, from the table markup."""
    out: dict[tuple[str, int], str] = {}
    for row in re.finditer(r'<tr class="chk[^"]*" data-check="([^"]+)">(.*?)</tr>', html, re.S):
        for cell in re.finditer(r'data-col="(\d+)" data-o="(\w+)"', row.group(2)):
            out[(row.group(1), int(cell.group(1)))] = cell.group(2)
    return out


# -- matrix.html -----------------------------------------------------------------------------

def test_matrix_shows_every_result_with_symbol_and_score() -> None:
    data = synthetic_run(3, 14)
    html = render_matrix(data)
    cells = cell_classes(html)
    assert len(cells) == 3 * 14
    names = [p["name"] for p in data.providers]
    for r in data.results:
        assert cells[(r.check, names.index(r.provider))] == r.outcome
    # Families are row groups with a per-provider score; providers carry theirs in the header.
    for family in {c["behavior"] for c in data.checks}:
        assert f'data-family="{family}"' in html
    for provider in names:
        counts = {o: sum(r.outcome == o for r in data.results if r.provider == provider)
                  for o in OUTCOMES}
        assert score(counts) in html
    # Overall score with its formula stated; symbols readable without colour.
    assert "pass ÷ (pass + fail)" in html
    for symbol in ("✓", "✗", "⊘", "–", "!"):
        assert symbol in html
    assert 'id="overall"' in html and "overall compatibility" in html


def test_matrix_is_self_contained() -> None:
    html = render_matrix(synthetic_run(2, 5))
    assert "<script src" not in html and "<link" not in html
    assert "@import" not in html and "url(" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)


def test_matrix_header_names_run_time_version_duration_tokens() -> None:
    data = synthetic_run(2, 6)
    html = render_matrix(data)
    for text in ("20260101T000000Z-abcd", "2026-01-01T00:00:00Z", "9.9.9", "60.0 s"):
        assert text in html
    # 6 checks × 2 exchanges, one shared per 3 checks: 2 + 6 = 8 requests of 5 tokens each.
    assert "40 tok · 8 req" in html


def test_provider_text_cannot_break_out_of_the_data_block() -> None:
    data = synthetic_run(1, 2)
    evil = Result(provider="prov00", model="model-0", check=data.checks[0]["id"],
                  behavior=data.checks[0]["behavior"], outcome="fail",
                  message=f"got {HOSTILE}", duration_ms=1,
                  evidence={"exchanges": [exchange("evil", body=HOSTILE)], "note": HOSTILE})
    data.results[0] = evil
    html = render_matrix(data)
    # Exactly the two closing tags of the page's own scripts; no injected markup anywhere.
    assert html.count("</script") == 2
    assert "<script>window.PWNED" not in html  # escaped in the cell's title attribute
    assert "<b>bold</b>" not in html and "<!-- " not in html
    embedded = payload(html)
    assert embedded["exchanges"]["evil"]["response"]["body"] == HOSTILE
    assert embedded["results"][0]["m"] == f"got {HOSTILE}"
    assert embedded["results"][0]["e"] == {"note": HOSTILE}


def test_shared_exchanges_are_embedded_once() -> None:
    data = synthetic_run(2, 9)
    html = render_matrix(data)
    embedded = payload(html)
    # 9 checks per provider: 3 shared + 9 own exchanges each.
    assert len(embedded["exchanges"]) == 2 * (3 + 9)
    assert html.count('"answer own-0-4"') == 1
    first = embedded["results"][0]
    assert first["x"] == ["shared-0-0", "own-0-0"]
    first_column = [r for r in embedded["results"] if r["p"] == 0]
    assert {r["x"][0] for r in first_column[:3]} == {"shared-0-0"}


def test_twenty_providers_by_a_hundred_checks_stays_compact() -> None:
    data = synthetic_run(20, 100, pad=400)
    unique = {x["id"]: x for r in data.results for x in r.evidence["exchanges"]}
    evidence_size = len(json.dumps(list(unique.values()), ensure_ascii=False))
    started = time.perf_counter()
    html = render_matrix(data)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"rendering took {elapsed:.1f} s"
    assert len(cell_classes(html)) == 2000
    # The evidence once, plus a bounded overhead per cell (markup and index), not per use.
    assert len(html.encode()) < evidence_size + 2000 * 600, len(html.encode())


def test_overlong_evidence_is_cut_in_the_page_only() -> None:
    data = synthetic_run(1, 1)
    huge = "y" * 200_000
    data.results[0] = Result(**{**data.results[0].to_json(),
                                "evidence": {"exchanges": [exchange("big", body=huge)]}})
    html = render_matrix(data)
    body = payload(html)["exchanges"]["big"]["response"]["body"]
    assert len(body) < 70_000 and body.endswith("more characters in results.json]")


def test_overlong_evidence_already_encoded_is_cut_too() -> None:
    """A record whose JSON text is short is embedded without a walk (matrix._short); one
    whose text is long is still walked and cut, strings and event lists alike."""
    from conformance.report.matrix import MAX_EVENTS, _Exchanges
    from conformance.results import sanitized

    table = _Exchanges()
    small = sanitized(exchange("small", body="ok"), 1)
    big = sanitized(exchange("big", body="y" * 200_000), 1)
    many = sanitized({"id": "many", "response": {"events": [{}] * (MAX_EVENTS + 5)}}, 1)
    for record in (small, big, many):
        table.add(record)
    assert table.table["small"] is small
    assert table.table["big"]["response"]["body"].endswith("more characters in results.json]")
    assert len(table.table["many"]["response"]["events"]) == MAX_EVENTS
    assert table.table["many"]["response"]["events_cut"] == 5


def test_families_collapse_only_when_the_table_is_large() -> None:
    small = render_matrix(synthetic_run(1, 20))
    assert 'data-expanded="false"' not in small
    all_pass = synthetic_run(1, 80, outcomes={})
    all_pass.results = [Result(**{**r.to_json(), "outcome": "pass"}) for r in all_pass.results]
    large = render_matrix(all_pass)
    assert 'data-expanded="true"' not in large  # nothing to look at: start folded
    mixed = render_matrix(synthetic_run(1, 80))
    assert 'data-expanded="true"' in mixed


def test_incomplete_run_says_so(tmp_path: Path) -> None:
    data = synthetic_run(1, 3)
    data.complete = False
    assert "did not finish" in render_matrix(data)
    assert "did not finish" in render_summary_md(data)


def test_killed_run_rerenders_from_jsonl(tmp_path: Path) -> None:
    data = synthetic_run(2, 4)
    with (tmp_path / "results.jsonl").open("w") as fh:
        for r in data.results[:5]:
            fh.write(json.dumps(r.to_json()) + "\n")
    loaded = load_run(tmp_path)
    paths = write_reports(tmp_path, loaded)
    assert {p.name for p in paths} == {"results.json", "junit.xml", "matrix.html",
                                       "summary.md"}
    assert len(cell_classes((tmp_path / "matrix.html").read_text())) == 5


def interrupted_run() -> RunData:
    """Two providers × four checks planned; the run ended after five results (Ctrl-C)."""
    data = synthetic_run(2, 4)
    data.planned = [(r.check, r.provider) for r in data.results]
    data.results = data.results[:5]
    return data


def test_interrupted_run_lists_what_did_not_run_in_every_report(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    data = interrupted_run()
    missing = data.planned[5:] if data.planned else []
    assert data.complete and data.incomplete and data.not_run == missing
    write_reports(tmp_path, data)
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["run"]["incomplete"] == {"planned": 8, "finished": 5,
                                           "not_run": [list(p) for p in missing]}
    assert {"id", "started_at", "finished_at", "suite_version", "outcomes"} <= \
        set(stored["run"])
    root = ET.fromstring((tmp_path / "junit.xml").read_text().split("\n", 1)[1])
    assert (root.get("tests"), root.get("errors")) == ("8", str(
        3 + sum(r.outcome == "error" for r in data.results)))
    prov01 = next(s for s in root.findall("testsuite") if s.get("name") == "prov01")
    cases = {c.get("name"): c for c in prov01.findall("testcase")}
    for check, _ in missing:
        error = cases[check].find("error")
        assert error is not None and error.get("message") == "not run: the run did not finish"
    summary = render_summary_md(data)
    assert summary.splitlines()[2] == ("> **Incomplete run: 5 of 8 checks finished**; not run: "
                                       "prov01 3. The run did not finish: only the checks "
                                       "that finished are counted.")
    html = render_matrix(data)
    assert "Incomplete run: 5 of 8 checks finished" in html
    assert html.count('title="not run: the run did not finish"') == 3
    assert "Incomplete run: 5 of 8 checks finished; not run: prov01 3" in render_summary(data)
    # Re-rendered from its own results.json, it is still incomplete, with the same gaps.
    again = load_run(tmp_path)
    assert again.incomplete and again.not_run == missing and again.progress() == (5, 8)
    write_reports(tmp_path, again)
    assert json.loads((tmp_path / "results.json").read_text())["run"]["incomplete"] == \
        stored["run"]["incomplete"]


def test_complete_run_has_no_incomplete_key(tmp_path: Path) -> None:
    data = synthetic_run(2, 4)
    data.planned = [(r.check, r.provider) for r in data.results]
    write_reports(tmp_path, data)
    assert "incomplete" not in json.loads((tmp_path / "results.json").read_text())["run"]
    assert "Incomplete" not in (tmp_path / "summary.md").read_text()
    assert "Incomplete" not in (tmp_path / "matrix.html").read_text()
    assert 'type="not-run"' not in (tmp_path / "junit.xml").read_text()


def test_killed_run_of_an_older_version_still_loads_and_says_incomplete(tmp_path: Path) -> None:
    """run.json without ``planned`` (written by earlier versions) and results.jsonl: loads;
    how many checks were planned is unknown, but the reports say the run did not finish."""
    data = synthetic_run(1, 4)
    (tmp_path / "run.json").write_text(json.dumps({
        "format": "conformance-run/1", "run": {**data.run, "finished_at": None},
        "providers": data.providers, "checks": data.checks}))
    with (tmp_path / "results.jsonl").open("w") as fh:
        for r in data.results[:3]:
            fh.write(json.dumps(r.to_json()) + "\n")
    loaded = load_run(tmp_path)
    assert loaded.planned is None and loaded.incomplete and loaded.progress() == (3, None)
    write_reports(tmp_path, loaded)
    note = "Incomplete run: 3 checks finished (how many were planned is unknown)"
    assert note in (tmp_path / "summary.md").read_text()
    assert note in (tmp_path / "matrix.html").read_text()
    junit = (tmp_path / "junit.xml").read_text()
    assert 'tests="4"' in junit and "the run did not finish: 3 checks finished" in junit
    stored = json.loads((tmp_path / "results.json").read_text())
    assert stored["run"]["incomplete"] == {"planned": None, "finished": 3, "not_run": []}
    assert load_run(tmp_path).incomplete  # and from its results.json too


def test_merge_keeps_what_no_input_finished() -> None:
    first = interrupted_run()
    retry = synthetic_run(2, 4)
    retry.results = [r for r in retry.results if r.provider == "prov01"][:2]  # 1 new
    merged, _ = merge_runs([first, retry], "m")
    assert merged.incomplete and merged.progress() == (6, 8)
    assert merged.not_run == (first.planned or [])[6:]


def test_diff_counts_what_an_unfinished_run_did_not_run_as_regressions() -> None:
    before = synthetic_run(2, 4)
    after = interrupted_run()
    passed = {(r.provider, r.check) for r in before.results if r.outcome == "pass"}
    diff = diff_runs(Snapshot.from_run(before), Snapshot.from_run(after))
    lost = {(p, c) for c, p in after.not_run} & passed
    assert lost
    assert {(c.provider, c.check) for c in diff.regressions} == lost
    assert {c.message for c in diff.regressions} == {"not run: the run did not finish"}
    assert diff.removed_providers == []
    # The same through a stored baseline.json of the unfinished run.
    stored = Snapshot.from_json(json.loads(json.dumps(Snapshot.from_run(after).to_json())))
    assert {(c.provider, c.check) for c in diff_runs(Snapshot.from_run(before),
                                                     stored).regressions} == lost


# -- secrets ---------------------------------------------------------------------------------

def test_no_configured_secret_reaches_any_artefact(tmp_path: Path) -> None:
    """A run of a provider whose key, secret header and a secret in its URL's path are configured
    (credentials in a URL, user:password@, are refused by the config): the
    evidence went through the transport's redactor (as every result does) and still holds
    secret-looking text the provider made up; no renderer may re-introduce a secret."""
    key, header_secret, password = ("sk-planted-" + "k" * 24, "hdr-planted-" + "h" * 20,
                                    "pw-planted-" + "p" * 16)
    config_file = tmp_path / "providers.yaml"
    config_file.write_text(
        "providers:\n"
        "  - name: leaky\n"
        "    base_url: https://relay.example/${PLANTED_PW}/v1\n"
        "    api_key: ${PLANTED_KEY}\n"
        "    model: gpt-4o-mini\n"
        "    headers: {X-Relay-Token: '${PLANTED_HDR}'}\n")
    env = {"PLANTED_KEY": key, "PLANTED_HDR": header_secret, "PLANTED_PW": password}
    provider = load_providers(config_file, env).providers[0]
    assert key in provider.secrets
    redactor = Redactor(provider.secrets)
    echoed = f"Incorrect API key provided: {key}; token {header_secret}; pw {password}"
    raw_evidence = {"exchanges": [{
        **exchange("leak", body={"error": {"message": echoed}}, status=401),
        "request": {"method": "POST", "url": f"https://relay.example/{password}/v1/chat",
                    "headers": {"authorization": f"Bearer {key}",
                                "x-relay-token": header_secret},
                    "body": {"model": "gpt-4o-mini", "note": json.dumps(key)}},
    }], "echo": echoed}
    result = Result(provider="leaky", model="gpt-4o-mini", check="auth.wrong_key",
                    behavior="auth", outcome="fail", message=redactor.text(echoed),
                    duration_ms=3, evidence=redactor.data(raw_evidence))
    data = RunData(run={"id": "r1", "started_at": "x", "finished_at": "y",
                        "suite_version": "0"},
                   providers=[provider_entry(provider)],
                   checks=[{"id": "auth.wrong_key", "behavior": "auth", "title": "t",
                            "spec": "s", "proves": "p"}],
                   results=[result])
    report = tmp_path / "report"
    write_reports(report, data, Snapshot.from_run(data))
    texts = [p.read_text(encoding="utf-8") for p in report.iterdir()]
    texts.append(render_summary(data))
    texts += [sse_text(x) or "" for x in result.evidence["exchanges"]]
    for secret in (key, header_secret, password):
        for text in texts:
            assert secret not in text
            assert json.dumps(secret)[1:-1] not in text
    assert "***" in (report / "matrix.html").read_text()


# -- summary.md ------------------------------------------------------------------------------

def test_summary_md_lists_providers_scores_and_deviations() -> None:
    data = synthetic_run(2, 10)
    text = render_summary_md(data)
    assert text.startswith("## Conformance matrix — run `20260101T000000Z-abcd`")
    assert "**Overall compatibility:" in text and "pass ÷ (pass + fail)" in text
    assert "| prov00 | model-0 |" in text and "| prov01 | model-1 |" in text
    deviations = [r for r in data.results if r.outcome in ("fail", "error", "unsupported")]
    assert f"### Deviations ({len(deviations)})" in text
    for r in deviations:
        assert r.message in text


def test_summary_md_escapes_provider_text() -> None:
    data = synthetic_run(1, 1)
    data.results[0] = Result(**{**data.results[0].to_json(), "outcome": "fail",
                                "message": "got | pipe <script>x</script>\nnext"})
    text = render_summary_md(data)
    row = next(line for line in text.splitlines() if "pipe" in line)
    assert "\\|" in row and "<script>" not in text and "&lt;script&gt;" in row


# -- diff ------------------------------------------------------------------------------------

def snapshot(outcomes: dict[tuple[str, str], str], run_id: str,
             checks: list[str] | None = None) -> Snapshot:
    return Snapshot(run={"id": run_id}, providers=list(dict.fromkeys(p for p, _ in outcomes)),
                    checks=checks or list(dict.fromkeys(c for _, c in outcomes)),
                    outcomes={k: (v, f"{v} msg") for k, v in outcomes.items()})


def test_diff_classifies_every_kind_of_change() -> None:
    old = snapshot({("a", "x.one"): "pass", ("a", "x.two"): "fail", ("a", "x.three"): "pass",
                    ("a", "x.four"): "unsupported", ("a", "x.gone"): "pass",
                    ("b", "x.one"): "pass", ("old", "x.one"): "pass"}, "old")
    new = snapshot({("a", "x.one"): "fail", ("a", "x.two"): "pass", ("a", "x.three"): "pass",
                    ("a", "x.four"): "error", ("a", "x.new"): "pass", ("b", "x.one"): "skip",
                    ("c", "x.one"): "pass", ("b", "x.two"): "fail"}, "new")
    diff = diff_runs(old, new)
    kinds = {(c.provider, c.check): c.kind for c in diff.changes}
    assert kinds == {("a", "x.one"): "regression", ("b", "x.one"): "regression",
                     ("old", "x.one"): "regression",  # its provider is missing now
                     ("a", "x.two"): "fix", ("a", "x.four"): "changed",
                     ("b", "x.two"): "added"}
    assert diff.new_checks == ["x.new"] and diff.removed_checks == ["x.gone"]
    assert diff.new_providers == ["c"] and diff.removed_providers == ["old"]
    assert diff.headline().startswith("3 regressions, 1 fix, 1 other change, 1 newly run")
    assert diff.headline().endswith("1 missing provider")
    text = render_text(diff)
    assert "x.one  [a]  ✓ pass → ✗ fail  fail msg" in text
    assert "new checks: x.new" in text and "providers missing from the new run: old" in text
    md = render_markdown(diff)
    assert "**3 regressions**" in md and "| ↓ regression | `x.one` | a |" in md


def test_diff_of_run_dirs_counts_a_missing_provider_as_regressions(tmp_path: Path) -> None:
    """Last night prov00 and prov01 ran; tonight prov01's job did not (and one check was
    removed from the catalogue): what passed for prov01 is a regression, the removed check
    is only reported as removed, and ``conformance diff`` exits 1."""
    from tests.conftest import run_cli

    old = synthetic_run(2, 6, outcomes={("prov01", "chat.check_001"): "fail"})
    new = synthetic_run(2, 6)
    gone = new.checks.pop()["id"]
    new.results = [r for r in new.results if r.provider == "prov00" and r.check != gone]
    new.run = {**new.run, "id": "tonight"}
    write_reports(tmp_path / "old", old)
    write_reports(tmp_path / "new", new)
    passed = {r.check for r in old.results if r.provider == "prov01" and r.outcome == "pass"}
    assert passed - {gone} and len(passed) < 6  # some passed, some did not

    proc = run_cli(["diff", str(tmp_path / "old"), str(tmp_path / "new"), "--format", "json"],
                   cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    changes = json.loads(proc.stdout)["changes"]
    regressions = {(c["provider"], c["check"]): c for c in changes if c["kind"] == "regression"}
    assert set(regressions) == {("prov01", c) for c in passed - {gone}}
    for change in regressions.values():
        assert change["old"] == "pass" and change["new"] is None
        assert change["message"] == "not run: provider prov01 missing from the new run"
    assert [c for c in changes if c["kind"] != "regression"] == []
    text = run_cli(["diff", str(tmp_path / "old"), str(tmp_path / "new")], cwd=tmp_path)
    assert text.returncode == 1
    assert f"removed checks: {gone}" in text.stdout
    assert "providers missing from the new run: prov01" in text.stdout
    assert "→ · not run  not run: provider prov01 missing from the new run" in text.stdout


def test_identical_runs_have_no_changes() -> None:
    data = synthetic_run(2, 8)
    diff = diff_runs(Snapshot.from_run(data), Snapshot.from_run(data))
    assert diff.changes == [] and diff.headline() == "0 regressions, 0 fixes, 0 other changes"


def test_matrix_and_summary_mark_changes_since_the_baseline(tmp_path: Path) -> None:
    data = synthetic_run(2, 8)
    target = next(r for r in data.results if r.outcome == "pass")
    before = Snapshot.from_run(data)
    before.outcomes[(target.provider, target.check)] = ("pass", "")
    data.results = [Result(**{**r.to_json(), "outcome": "fail", "message": "broke"})
                    if r is target else r for r in data.results]
    paths = write_reports(tmp_path, data, before)
    html = (tmp_path / "matrix.html").read_text()
    assert "1 regression" in html and 'class="mark m-regression"' in html
    marked = [r for r in payload(html)["results"] if r.get("k")]
    assert [(m["k"], m["b"][0], m["m"]) for m in marked] == [("regression", "pass", "broke")]
    assert (tmp_path / "baseline.json").exists() and tmp_path / "summary.md" in paths
    summary = (tmp_path / "summary.md").read_text()
    assert "### Since baseline" in summary and f"`{target.check}`" in summary


# -- merge -----------------------------------------------------------------------------------

def test_merge_unites_providers_and_later_input_wins() -> None:
    one, two = synthetic_run(1, 4), synthetic_run(2, 4)
    two.run = {**two.run, "id": "second", "started_at": "2026-01-01T00:00:30Z",
               "duration_ms": 90_000}
    merged, notes = merge_runs([one, two], "merged-1")
    assert merged.run["id"] == "merged-1"
    assert [p["name"] for p in merged.providers] == ["prov00", "prov01"]
    assert len(merged.results) == 8
    assert notes == [f"4 results of run {one.run['id']} (provider prov00) replaced by run second"]
    assert merged.run["started_at"] == "2026-01-01T00:00:00Z"
    assert merged.run["duration_ms"] == 90_000
    assert [m["id"] for m in merged.run["merged_from"]] == [one.run["id"], "second"]


def test_merge_notes_one_line_per_pair_of_inputs() -> None:
    """Three runs over the same providers: the second replaces the first, the third both."""
    runs = [synthetic_run(2, 5), synthetic_run(2, 5), synthetic_run(1, 5)]
    for i, data in enumerate(runs):
        data.run = {**data.run, "id": f"r{i}"}
    runs[1].results = runs[1].results[:7]  # prov00's 5 results and 2 of prov01's
    merged, notes = merge_runs(runs, "m", ["dir/a", "dir/b", "dir/c"])
    assert notes == [
        "7 results of run r0 from dir/a (providers prov00, prov01) replaced by run r1 from dir/b",
        "5 results of run r1 from dir/b (provider prov00) replaced by run r2 from dir/c",
    ]
    assert len(merged.results) == 10


def test_terminal_summary_still_renders() -> None:
    text = render_summary(synthetic_run(2, 6))
    assert "conformance matrix" in text and "prov01" in text


@pytest.mark.parametrize("n", [0, 1])
def test_score_rounds_down_and_handles_nothing_judged(n: int) -> None:
    assert score({"pass": 999, "fail": n}) == ("99%" if n else "100%")
    assert score({"pass": 0, "fail": 0, "skip": 3}) == "—"


def test_junit_has_one_suite_per_provider_and_maps_outcomes() -> None:
    import xml.etree.ElementTree as ET

    from conformance.report.junit import render_junit

    data = synthetic_run(2, 12)
    root = ET.fromstring(render_junit(data).split("\n", 1)[1])
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["prov00", "prov01"]
    for suite in suites:
        results = {r.check: r for r in data.results if r.provider == suite.get("name")}
        for case in suite.findall("testcase"):
            result = results[str(case.get("name"))]
            kinds = [child.tag for child in case if child.tag != "properties"]
            expected = {"pass": [], "fail": ["failure"], "error": ["error"],
                        "skip": ["skipped"], "unsupported": ["skipped"]}[result.outcome]
            assert kinds == expected, (result.check, result.outcome)
            if result.outcome == "unsupported":
                skipped = case.find("skipped")
                assert skipped is not None
                assert skipped.get("message", "").startswith("unsupported: ")
    assert int(root.get("failures", "0")) == sum(r.outcome == "fail" for r in data.results)


def test_the_matrix_is_written_as_it_is_encoded() -> None:
    """matrix.html comes in parts (matrix_parts): the embedded data is encoded member by
    member, never as one string (100 providers: ~180 MB of the encoder's pieces for 25 MB of
    text), and the page is the same as render_matrix's, its data what build() made, with
    strings that look like a script end escaped."""
    from conformance.report.matrix import build, matrix_parts, render_matrix

    data = synthetic_run(6, 30)
    data.results[0] = replace(data.results[0], message="</script><!-- & \u2028")
    parts = list(matrix_parts(data))
    page = "".join(parts)
    embedded = payload(page)
    assert len(embedded["results"]) == len(data.results)
    assert max(len(p) for p in parts) < len(page) // 4  # no part holds the data block
    assert embedded == payload(render_matrix(data))
    assert embedded["results"][0]["m"] == "</script><!-- & \u2028"
    assert "</script><!--" not in page.split('id="conformance-data">', 1)[1].split(
        "</script>", 1)[0]
    assert json.loads(json.dumps(build(data)["payload"].value)) == embedded


def test_a_results_json_text_is_its_entry_with_shared_records_encoded_once() -> None:
    """Result.json_text() is the results[] entry (the same JSON as to_json()), the text of a
    shared exchange record made once (Sanitized.json_text) and reused by every result."""
    from conformance.exchange import RECORD_DEPTH
    from conformance.results import Sanitized, sanitized

    record = sanitized(exchange("shared-1", stream=True), RECORD_DEPTH)
    assert isinstance(record, Sanitized)
    first = Result("p", "m", "streaming.a", "streaming", "fail", "cut \ud800 short", 5,
                   {"exchanges": [record, exchange("own-1")], "event": {"exchange": 0,
                                                                        "index": 2}})
    second = replace(first, check="streaming.b", evidence={"exchanges": [record]},
                     runs=({"outcome": "pass", "message": "ok", "duration_ms": 1},),
                     flaky=False)
    bare = replace(first, check="chat.c", evidence={})
    for result in (first, second, bare):
        assert json.loads(result.json_text()) == json.loads(json.dumps(result.to_json()))
        result.json_text().encode("utf-8")  # no lone surrogate left
    shared = [x for x in second.evidence["exchanges"] if isinstance(x, Sanitized)]
    assert shared and shared[0].json_text() is shared[0].json_text()  # made once
