"""diff, --baseline, merge, report and allure on real runs of the reference provider.

Run 1 is the faithful reference; run 2 is the same provider name pointed at the reference's
``ignore_stop`` fault variant, so exactly the stop checks regress.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.cli import build_parser
from conformance.reference.server import ReferenceServer
from tests.conftest import (
    REPO,
    SELFTEST_KEY,
    RunOutput,
    external,
    run_cli,
    run_suite,
    write_providers,
)

#: Families the regression runs cover (quick, and they include the broken stop checks).
FAMILIES = "stop or chat"


def shared_runs(tmp_path_factory: pytest.TempPathFactory, name: str,
                build: Callable[[Path], dict[str, RunOutput]]) -> dict[str, RunOutput]:
    """``build(dir)`` once per test session, even across xdist workers: the first worker to
    get here builds under a lock, the others read what it left (workers share the parent of
    their base temp dirs and the test run's uid)."""
    uid = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not uid:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / f"shared-{uid[:16]}"
    root.mkdir(exist_ok=True)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = root / f"{name}.json"
        if done.exists():
            return {key: RunOutput(v["returncode"], v["stdout"], v["stderr"],
                                   Path(v["report_dir"]))
                    for key, v in json.loads(done.read_text()).items()}
        (root / name).mkdir()
        outputs = build(root / name)
        done.write_text(json.dumps({key: {**asdict(v), "report_dir": str(v.report_dir)}
                                    for key, v in outputs.items()}))
        return outputs


@dataclass
class Runs:
    base: RunOutput       # "relay" = the faithful reference
    broken: RunOutput     # "relay" = ignore_stop, run with --baseline base
    broken_config: Path
    tmp: Path


@pytest.fixture(scope="module")
def runs(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    def build(tmp: Path) -> dict[str, RunOutput]:
        good = write_providers(tmp / "good.yaml", [
            external("relay", reference_server.base_url)])
        bad = write_providers(tmp / "bad.yaml", [
            external("relay", reference_server.variant_url(["ignore_stop"]))])
        base = run_suite(good, tmp / "base", "-m", FAMILIES)
        broken = run_suite(bad, tmp / "broken", "-m", FAMILIES, "-n", "2",
                           "--baseline", str(tmp / "base"))
        return {"base": base, "broken": broken}

    out = shared_runs(tmp_path_factory, "regress", build)
    base = out["base"]
    assert base.returncode == 0, base.stdout[-2000:] + base.stderr[-2000:]
    tmp = base.report_dir.parent
    return Runs(base, out["broken"], tmp / "bad.yaml", tmp)


@pytest.fixture(scope="module")
def other(runs: Runs, reference_server: ReferenceServer,
          tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    """A second provider ("other" = the reject_stop variant), run with the base as baseline."""
    def build(tmp: Path) -> dict[str, RunOutput]:
        config = write_providers(tmp / "other.yaml", [
            external("other", reference_server.variant_url(["reject_stop"]))])
        return {"other": run_suite(config, tmp / "other", "-m", FAMILIES, "--baseline",
                                   str(runs.base.report_dir))}

    return shared_runs(tmp_path_factory, "other", build)["other"]


def regressed(runs: Runs) -> set[str]:
    before = {c for (_, c), (o, _) in runs.base.outcomes().items() if o == "pass"}
    return {c for (_, c), (o, _) in runs.broken.outcomes().items() if o != "pass"} & before


def test_baseline_run_exits_1_and_names_the_regressions(runs: Runs) -> None:
    out = runs.broken
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    lost = regressed(runs)
    assert {"stop.string", "stop.list"} <= lost
    assert all(c.startswith("stop.") for c in lost)
    assert "compared with baseline" in out.stdout
    for check in lost:
        assert f"{check}" in out.stdout
    assert f"{len(lost)} regression(s) since the baseline" in out.stdout


def test_baseline_marks_matrix_and_summary(runs: Runs, tmp_path: Path) -> None:
    report = tmp_path / "broken"  # a copy, as a downloaded artefact would be
    shutil.copytree(runs.broken.report_dir, report)
    html = (report / "matrix.html").read_text()
    assert f"{len(regressed(runs))} regressions" in html
    assert html.count('class="mark m-regression"') == len(regressed(runs))
    summary = (report / "summary.md").read_text()
    assert "### Since baseline" in summary and "| ↓ regression | `stop.string` |" in summary
    assert json.loads((report / "baseline.json").read_text())["format"] == \
        "conformance-baseline/1"
    # Re-rendering later (e.g. from a copied artefact) keeps the marks.
    (report / "matrix.html").unlink()
    proc = run_cli(["report", str(report)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert 'class="mark m-regression"' in (report / "matrix.html").read_text()


def test_baseline_with_its_provider_missing_exits_1(other: RunOutput, runs: Runs) -> None:
    """Another provider measured against the base run: the base's provider did not run, so
    none of what passed for it is known to pass now — each is a regression, and the run
    exits 1."""
    passed = {c for (_, c), (o, _) in runs.base.outcomes().items() if o == "pass"}
    assert other.returncode == 1, other.stdout[-2000:]
    assert f"{len(passed)} regressions, 0 fixes, 0 other changes" in other.stdout
    assert re.search(r"stop\.string +\[relay\]  ✓ pass → · not run  not run: provider relay "
                     r"missing from the new run\n", other.stdout)
    assert "new providers: other" in other.stdout
    assert "providers missing from the new run: relay" in other.stdout


def test_baseline_of_a_selected_provider_ignores_the_others(
        other: RunOutput, runs: Runs, reference_server: ReferenceServer, tmp_path: Path) -> None:
    """A nightly job runs one provider (--provider) against the merged baseline of all: the
    providers it did not select are not missing, so nothing regressed."""
    merged = tmp_path / "merged-for-select"
    assert run_cli(["merge", str(merged), str(runs.base.report_dir), str(other.report_dir)],
                   cwd=tmp_path).returncode == 0
    # This worker's own reference (the shared runs may come from another xdist worker, whose
    # reference has another key).
    good = write_providers(tmp_path / "good.yaml", [external("relay", reference_server.base_url)])
    out = run_suite(good, tmp_path / "select", "-m", FAMILIES,
                    "--provider", "relay", "--baseline", str(merged))
    assert out.returncode == 0, out.stdout[-2000:]
    assert "0 regressions" in out.stdout and "missing from the new run" not in out.stdout


def test_run_json_records_the_plan_serially_and_under_xdist(runs: Runs) -> None:
    """run.json lists every (check, provider) pair the run set out to judge, also when the
    controller leaves the running to xdist workers (the broken run used -n 2)."""
    for out in (runs.base, runs.broken):
        planned = json.loads((out.report_dir / "run.json").read_text())["planned"]
        assert sorted(map(tuple, planned)) == sorted(
            (r["check"], r["provider"]) for r in out.data["results"])
        assert len(planned) == 8 and "incomplete" not in out.data["run"]


def test_diff_command(runs: Runs) -> None:
    base, broken = str(runs.base.report_dir), str(runs.broken.report_dir)
    forward = run_cli(["diff", base, broken], cwd=runs.tmp)
    assert forward.returncode == 1
    assert "↓ regressions (passed in the baseline, not now): " \
        f"{len(regressed(runs))}" in forward.stdout
    assert "stop.string  [relay]  ✓ pass → ✗ fail  stop='7' ignored" in forward.stdout
    backward = run_cli(["diff", broken, base], cwd=runs.tmp)
    assert backward.returncode == 0
    assert f"{len(regressed(runs))} fixes" in backward.stdout
    md = run_cli(["diff", base, broken, "--format", "markdown"], cwd=runs.tmp)
    assert md.stdout.startswith("## Since baseline") and "| ↓ regression |" in md.stdout
    as_json = json.loads(run_cli(["diff", base, broken, "--format", "json"],
                                 cwd=runs.tmp).stdout)
    assert {c["check"] for c in as_json["changes"] if c["kind"] == "regression"} == \
        regressed(runs)


def test_diff_and_baseline_reject_missing_dirs_in_one_line(runs: Runs) -> None:
    proc = run_cli(["diff", str(runs.tmp / "nope"), str(runs.base.report_dir)], cwd=runs.tmp)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    out = run_suite(runs.broken_config, runs.tmp / "never", "--baseline", str(runs.tmp / "no"))
    assert out.returncode == 2 and "no such baseline" in out.stderr
    assert not (runs.tmp / "never").exists()


def test_nightly_merge_then_diff_against_last_night(runs: Runs, other: RunOutput) -> None:
    """What the nightly workflow's merge job does: one run dir per provider job, merged, then
    compared with the previous night's merged matrix."""
    other_run = other
    night1, night2 = runs.tmp / "night1", runs.tmp / "night2"
    first = run_cli(["merge", str(night1), str(runs.base.report_dir),
                     str(other_run.report_dir)], cwd=runs.tmp)
    assert first.returncode == 0, first.stderr
    data = json.loads((night1 / "results.json").read_text())
    assert [p["name"] for p in data["providers"]] == ["relay", "other"]
    assert len(data["results"]) == len(runs.base.data["results"]) * 2
    assert {"matrix.html", "summary.md", "junit.xml", "results.jsonl"} <= {
        p.name for p in night1.iterdir()}
    second = run_cli(["merge", str(night2), str(runs.broken.report_dir),
                      str(other_run.report_dir), "--baseline", str(night1)], cwd=runs.tmp)
    assert second.returncode == 1, second.stdout[-2000:] + second.stderr
    assert "stop.string  [relay]  ✓ pass → ✗ fail" in second.stdout
    summary = (night2 / "summary.md").read_text()
    assert "**" + f"{len(regressed(runs))} regressions**" in summary
    html = (night2 / "matrix.html").read_text()
    assert 'class="mark m-regression"' in html and ">other<" in html
    diff = run_cli(["diff", str(night1), str(night2)], cwd=runs.tmp)
    assert diff.returncode == 1


def test_merge_of_overlapping_runs_prints_one_note(runs: Runs) -> None:
    """Two runs of the same provider: every result of the first is replaced, in one line."""
    proc = run_cli(["merge", str(runs.tmp / "overlap"), str(runs.base.report_dir),
                    str(runs.broken.report_dir)], cwd=runs.tmp)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("note:")]
    total = len(runs.broken.data["results"])
    assert notes == [
        f"note: {total} results of run {runs.base.data['run']['id']} from "
        f"{runs.base.report_dir} (provider relay) replaced by run "
        f"{runs.broken.data['run']['id']} from {runs.broken.report_dir}"]
    assert len(proc.stderr.splitlines()) == 1


# -- allure -----------------------------------------------------------------------------------

def _allure_results(directory: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in directory.glob("*-result.json"):
        data = json.loads(path.read_text())
        out[data["name"]] = data
    return out


def _labels(result: dict[str, Any]) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for label in result["labels"]:
        labels.setdefault(label["name"], []).append(label["value"])
    return labels


def test_allure_results_carry_labels_status_and_evidence(reference_server: ReferenceServer,
                                                         tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = write_providers(tmp_path / "providers.yaml", [
        external("ok", reference_server.base_url),
        external("broken", reference_server.variant_url(["ignore_stop"])),
        external("declines", reference_server.variant_url(["reject_stop"])),
        external("down", f"http://127.0.0.1:{port}/v1", retries=0,
                 timeouts={"connect": 2, "read": 2, "total": 5, "stall": 2}),
    ])
    alluredir = tmp_path / "allure"
    out = run_suite(config, tmp_path / "report", "-m", "stop", "-n", "2",
                    "--alluredir", str(alluredir))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    results = _allure_results(alluredir)
    assert len(results) == 3 * 4
    string_ok = results["stop.string[ok]"]
    labels = _labels(string_ok)
    assert labels["epic"] == ["stop"] and labels["feature"] == ["stop.string"]
    assert labels["suite"] == ["ok"] and labels["parentSuite"] == ["conformance"]
    assert {"name": "model", "value": "'ref-1'"} in [
        {k: p[k] for k in ("name", "value")} for p in string_ok["parameters"]]
    assert "stop '7'" in string_ok["description"] or "Counting" in string_ok["description"]
    assert string_ok["status"] == "passed"
    assert results["stop.string[broken]"]["status"] == "failed"
    assert "stop='7' ignored" in results["stop.string[broken]"]["statusDetails"]["message"]
    declined = results["stop.string[declines]"]
    assert declined["status"] == "skipped"
    assert "unsupported:" in declined["statusDetails"]["message"]
    assert "unsupported" in _labels(declined)["tag"]
    # An unreachable provider is said once, not as one broken test per check: its checks are
    # skipped with the reason (results.json keeps them as `error`).
    down = results["stop.string[down]"]
    assert down["status"] == "skipped"
    assert "not run: provider unreachable" in down["statusDetails"]["message"]
    # Evidence: the exchange as JSON and, for the streamed check, the SSE text.
    names = {a["name"]: a for a in results["stop.stream[ok]"]["attachments"]}
    assert any(n.endswith("→ HTTP 200") for n in names), names
    sse = next(a for n, a in names.items() if n.endswith("(SSE)"))
    text = (alluredir / sse["source"]).read_text()
    assert text.startswith(": +") and "data: [DONE]" in text
    exchange = json.loads((alluredir / next(
        a["source"] for n, a in names.items() if n.endswith("→ HTTP 200"))).read_text())
    assert exchange["request"]["headers"]["authorization"] == "Bearer ***"
    # No configured key in any file of the run: allure results, attachments, reports.
    for path in [*alluredir.iterdir(), *out.report_dir.iterdir()]:
        assert SELFTEST_KEY not in path.read_text(errors="replace"), path


def test_allure_history_id_tells_providers_apart_and_is_stable(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """Two providers serving the same model (like apiyi and ezmodel, both gpt-4o-mini): each
    check's historyId differs between them (allure would show one as a retry of the other)
    and stays the same from one run to the next (serial, then under xdist)."""
    config = write_providers(tmp_path / "providers.yaml", [
        external("apiyi", reference_server.base_url),
        external("ezmodel", reference_server.base_url)])
    history: list[dict[str, str]] = []
    for run, extra in (("one", ()), ("two", ("-n", "2"))):
        out = run_suite(config, tmp_path / run, "-m", "stop",
                        "--alluredir", str(tmp_path / f"allure-{run}"), *extra)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        results = _allure_results(tmp_path / f"allure-{run}")
        assert len(results) == 3 * 2
        history.append({name: r["historyId"] for name, r in results.items()})
    first, second = history
    for check in ("stop.string", "stop.list", "stop.stream"):
        assert first[f"{check}[apiyi]"] != first[f"{check}[ezmodel]"], check
    assert len(set(first.values())) == 6
    assert first == second
    assert {p["name"]: p["value"] for p in results["stop.list[ezmodel]"]["parameters"]} == \
        {"provider": "'ezmodel'", "model": "'ref-1'"}


def test_without_alluredir_nothing_allure_is_written(runs: Runs) -> None:
    """The runs above (one of them under -n 2) had no --alluredir."""
    assert runs.broken.returncode == 1 and runs.broken.outcomes()
    assert not list(runs.tmp.rglob("*-result.json"))


# -- the nightly workflow -----------------------------------------------------------------------

def _commands(workflow: dict[str, Any]) -> list[list[str]]:
    """Every ``conformance ...`` command line of the workflow's run steps."""
    out = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for raw in str(step.get("run", "")).splitlines():
                line = re.sub(r"\$\{\{.*?\}\}", "EXPR", raw.strip())
                if line.startswith("conformance "):
                    words = []
                    for word in line.split()[1:]:
                        if word.startswith("#") or word in ("||", "|", ">>", "&&"):
                            break
                        words.append(word.strip('"'))
                    out.append(words)
    return out


def test_nightly_workflow_shape_and_commands() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "nightly.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)
    assert triggers["schedule"][0]["cron"]
    jobs = workflow["jobs"]
    # Every provider but the demo's deliberately broken variant is tested nightly.
    providers = [p["name"] for p in yaml.safe_load((REPO / "providers.yaml").read_text())
                 ["providers"] if not p["name"].endswith("-demo")]
    matrix_job = next(j for j in jobs.values() if "strategy" in j)
    assert matrix_job["strategy"]["matrix"]["provider"] == providers
    assert matrix_job["strategy"]["fail-fast"] is False
    steps = json.dumps(matrix_job["steps"])
    assert "secrets[matrix.key]" in steps and "upload-artifact" in steps
    # Each relay's key comes from the secret named like the variable providers.yaml expands.
    config = {p["name"]: p for p in yaml.safe_load((REPO / "providers.yaml").read_text())
              ["providers"]}
    keyed = {e["provider"]: e["key"] for e in matrix_job["strategy"]["matrix"]["include"]}
    for name, entry in config.items():
        if "api_key" in entry:
            assert entry["api_key"] == "${" + keyed[name] + "}", name
    merge_job = next(j for j in jobs.values() if "needs" in j)
    merge_steps = json.dumps(merge_job["steps"])
    assert "download-artifact" in merge_steps and "GITHUB_STEP_SUMMARY" in merge_steps
    assert "upload-artifact" in merge_steps
    commands = _commands(workflow)
    assert {c[0] for c in commands} >= {"run", "merge", "diff"}
    parser = build_parser()
    for words in commands:
        args, rest = parser.parse_known_args(words)
        assert args.command == words[0]
        if args.command != "run":
            assert not rest, words
