"""``--repeat K``: each check K times, nothing shared across repeats, flaky cells apart.

The end-to-end tests run ``conformance run --repeat 3`` in a subprocess against a reference
server of their own on 127.0.0.1 (so that the requests it receives can be counted from its
recording): the faithful API, and the ``flaky_third`` variant, which answers every third
chat completion with a 500.  The rules that fold K runs into one result are tested directly.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conformance.checks.registry import all_checks
from conformance.config import load_providers
from conformance.cost_table import CHAINS, COSTS
from conformance.estimate import cost_line, estimate
from conformance.reference.faults import FAULTS, UNSTABLE
from conformance.reference.recording import MAX_RECORDS
from conformance.reference.server import ReferenceServer
from conformance.report import write_reports
from conformance.report.diff import Snapshot, diff_runs
from conformance.report.flaky import score_of
from conformance.results import Result, RunData, load_run
from conformance.stability import fold, judged_counts, parse_repeat, pass_fraction
from tests.conftest import (
    KEY_ENV,
    REPO,
    SELFTEST_KEY,
    RunOutput,
    external,
    judged,
    run_cli,
    run_pytest,
    run_suite,
    write_providers,
)

# -- folding K runs into one result ---------------------------------------------------------


def runs(*outcomes: str) -> list[dict[str, Any]]:
    return [{"outcome": o, "message": f"{o} #{i}", "duration_ms": 5}
            for i, o in enumerate(outcomes, 1)]


@pytest.mark.parametrize(("outcomes", "outcome", "flaky"), [
    (("pass", "pass", "pass"), "pass", False),
    (("fail", "fail", "fail"), "fail", False),
    (("pass", "fail", "pass"), "pass", True),
    (("fail", "pass", "fail"), "pass", True),
    (("pass", "unsupported", "pass"), "pass", True),
    (("unsupported", "unsupported"), "unsupported", False),
    (("fail", "unsupported", "fail"), "fail", False),
    (("pass", "error", "pass"), "pass", False),
    (("error", "fail", "error"), "fail", False),
    (("pass", "skip", "skip"), "pass", False),
    (("error", "error", "error"), "error", False),
    (("skip", "error"), "error", False),
    (("skip", "skip"), "skip", False),
])
def test_fold_rules(outcomes: tuple[str, ...], outcome: str, flaky: bool) -> None:
    folded = fold(runs(*outcomes))
    assert (folded.outcome, folded.flaky) == (outcome, flaky)
    assert outcomes[folded.representative] in (outcome, "fail", "unsupported")


def test_fold_messages_name_the_runs() -> None:
    flaky = fold(runs("pass", "fail", "pass"))
    assert flaky.message == "flaky: passed 2 of 3 runs; run 2 fail: fail #2"
    steady = fold(runs("pass", "pass", "pass"))
    assert steady.message == "pass #1"
    with_error = fold(runs("pass", "error", "pass"))
    assert with_error.message == "pass #1 (run 2 error: error #2)"
    assert fold(runs("fail")).message == "fail #1"  # a single run is said as it came


@pytest.mark.parametrize("text", ["0", "21", "-1", "two", "1.5", ""])
def test_repeat_must_be_1_to_20(text: str) -> None:
    with pytest.raises(ValueError, match="--repeat takes a whole number from 1 to 20"):
        parse_repeat(text)
    assert parse_repeat("20") == 20 and parse_repeat(" 3 ") == 3


def _result(outcome: str, *outcomes: str, flaky: bool = False, check: str = "chat.basic",
            provider: str = "p") -> Result:
    return Result(provider, "m", check, "chat", outcome, "msg", 10,  # type: ignore[arg-type]
                  runs=tuple(runs(*outcomes)), flaky=flaky)


def test_result_fields_only_when_repeated() -> None:
    single = Result("p", "m", "chat.basic", "chat", "pass", "ok", 1)
    assert set(single.to_json()) == {"provider", "model", "check", "behavior", "outcome",
                                     "message", "duration_ms", "evidence"}
    repeated = _result("pass", "pass", "fail", "pass", flaky=True)
    data = repeated.to_json()
    assert (data["repeat"], data["passes"], data["flaky"]) == (3, 2, True)
    assert [r["outcome"] for r in data["runs"]] == ["pass", "fail", "pass"]
    assert Result.from_json(json.loads(json.dumps(data))) == repeated


def test_a_flaky_cell_scores_passes_over_verdicts() -> None:
    flaky = _result("pass", "pass", "fail", "pass", flaky=True)
    assert pass_fraction(flaky) == pytest.approx(2 / 3)
    assert pass_fraction(_result("pass", "pass", "error", "pass")) == 1.0
    assert pass_fraction(_result("unsupported", "unsupported")) is None
    steady = _result("pass", "pass", "pass", "pass", check="chat.multi_turn")
    counts = judged_counts([flaky, steady])
    assert counts == pytest.approx({"pass": 5 / 3, "fail": 1 / 3})
    assert score_of([flaky, steady]) == "83%"
    assert score_of([steady]) == "100%"


# -- conformance diff ------------------------------------------------------------------------


def _snapshot(results: list[Result]) -> Snapshot:
    checks = [{"id": r.check, "behavior": r.behavior, "title": r.check, "spec": ""}
              for r in results]
    return Snapshot.from_run(RunData(run={"id": "x"}, providers=[{"name": "p"}],
                                     checks=checks, results=results))


def test_diff_a_flake_is_a_change_unless_asked() -> None:
    old = _snapshot([_result("pass", "pass", "pass", "pass"),
                     _result("pass", "pass", "fail", "pass", flaky=True, check="chat.multi")])
    new = _snapshot([_result("pass", "pass", "fail", "pass", flaky=True),
                     _result("fail", "fail", "fail", "fail", check="chat.multi")])
    lenient = {c.check: c.kind for c in diff_runs(old, new).changes}
    assert lenient == {"chat.basic": "changed", "chat.multi": "regression"}
    strict = {c.check: c.kind for c in diff_runs(old, new, flaky_is_regression=True).changes}
    assert strict == {"chat.basic": "regression", "chat.multi": "changed"}
    back = {c.check: c.kind for c in diff_runs(new, old, flaky_is_regression=True).changes}
    assert back["chat.basic"] == "fix"
    # the flaky mark survives baseline.json
    again = Snapshot.from_json(json.loads(json.dumps(new.to_json())))
    assert again.flaky == {("p", "chat.basic"): "2/3"}


# -- the cost estimate -----------------------------------------------------------------------


def test_cost_table_covers_the_registry() -> None:
    """Every check has figures (``python scripts/cost_table.py`` writes them), its chain of
    requests among them (the engine starts the longest first)."""
    assert set(COSTS) == set(CHAINS) == {c.id for c in all_checks()}
    assert CHAINS["responses_api.store_false"] == max(CHAINS.values())  # 5 in a row


def test_cost_table_adds_up_to_the_readme() -> None:
    """The README's "98 checks … about 2,040 tokens in 79 requests" is the table's sum for a
    provider without ``upstream:`` and with a model without a public tokenizer."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"a full run of the (\d+) checks of the families a provider answers "
                      r"for itself costs the\s+reference provider about ([\d,]+) tokens in "
                      r"(\d+) requests", readme)
    assert found, "the README's cost sentence moved"
    core = [c for c in COSTS if c.split(".")[0] not in ("fidelity", "billing")]
    assert len(core) == int(found.group(1))
    assert round(sum(COSTS[c][0] for c in core)) == int(found.group(3))
    tokens = sum(COSTS[c][1] for c in core)
    assert abs(tokens - int(found.group(2).replace(",", ""))) <= 10, tokens


def test_cost_line_per_provider(tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        {"name": "a", "base_url": "http://127.0.0.1:9/v1", "model": "ref-1"},
        {"name": "b", "base_url": "http://127.0.0.1:9/v1", "model": "ref-1"},
        {"name": "nokey", "base_url": "http://127.0.0.1:9/v1", "model": "ref-1",
         "api_key": "${CONFORMANCE_UNSET_KEY_FOR_TEST}"},
    ])
    config = load_providers(path, {})
    ids = [c.id for c in all_checks()]
    pairs = [(c, p) for p in ("a", "b", "nokey") for c in ids]
    line = cost_line(pairs, config.providers, 3)
    single = estimate(ids, config.providers[0])
    assert line is not None and line.startswith(
        f"--repeat 3: ~{round(single.requests * 3)} requests, ")
    assert "per provider" in line and "nokey" not in line
    assert estimate(ids, config.providers[2]).requests == 0  # no key: nothing sent
    budget = cost_line(pairs, config.providers, 3, max_tokens=100)
    assert budget is not None and "more than --max-tokens 100" in budget


# -- end to end ------------------------------------------------------------------------------


@dataclass
class Runs:
    server: ReferenceServer
    single: RunOutput
    repeated: RunOutput
    sent: dict[str, dict[str, int]]  # run → variant ("" faithful) → requests received


#: Records the module's reference keeps: every request of its runs (four runs of ~100-300
#: requests each; the default ring buffer of 1,000 would drop the oldest and skew the counts).
RECORDS = 10_000


def _received(server: ReferenceServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in server.recorder.records(limit=RECORDS):
        key = str(record.get("variant") or "")
        counts[key] = counts.get(key, 0) + 1
    return counts


def _delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if after[k] != before.get(k)}


@pytest.fixture(scope="module")
def repeat_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    base = tmp_path_factory.mktemp("repeat")
    with ReferenceServer(api_key=SELFTEST_KEY, record_limit=RECORDS) as server:
        plain = write_providers(base / "plain.yaml", [external("reference", server.base_url)])
        before = _received(server)
        single = run_suite(plain, base / "single")
        middle = _received(server)
        both = write_providers(base / "both.yaml", [
            external("reference", server.base_url),
            external("flaky", server.variant_url(["flaky_third"]))])
        repeated = run_suite(both, base / "repeated", "--repeat", "3",
                             "--alluredir", str(base / "allure"))
        after = _received(server)
        assert len(server.recorder.records(limit=MAX_RECORDS)) < MAX_RECORDS
        yield Runs(server, single, repeated,
                   {"single": _delta(before, middle), "repeated": _delta(middle, after)})


def by_pair(out: RunOutput) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["provider"], r["check"]): r for r in out.data["results"]}


def test_reference_is_3_of_3_everywhere(repeat_runs: Runs) -> None:
    out = repeat_runs.repeated
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.data["run"]["repeat"] == 3
    ref = {c: r for (p, c), r in by_pair(out).items() if p == "reference"}
    verdicts = judged({c: (r["outcome"], r["message"]) for c, r in ref.items()})
    assert verdicts and {c: v for c, v in verdicts.items() if v[0] != "pass"} == {}
    for check_id in verdicts:
        result = ref[check_id]
        assert (result["repeat"], result["passes"], result["flaky"]) == (3, 3, False), result
        assert [r["outcome"] for r in result["runs"]] == ["pass"] * 3


def resends(out: RunOutput) -> int:
    """The streams ``streaming.real_time`` sent again (only when its client stalled while
    reading a stream, as on a loaded machine): in its evidence and no other check's."""
    results = by_pair(out)
    others = {x["id"] for (p, c), r in results.items() if p == "reference"
              and c != "streaming.real_time" for x in r["evidence"].get("exchanges", [])}
    mine = results[("reference", "streaming.real_time")]["evidence"].get("exchanges", [])
    return len({x["id"] for x in mine} - others)


def test_repeats_send_three_times_the_requests(repeat_runs: Runs) -> None:
    """Counted where they arrive: the reference's own recording (less the streams
    ``streaming.real_time`` sends again only when the loaded client stalled)."""
    single = repeat_runs.sent["single"][""] - resends(repeat_runs.single)
    assert repeat_runs.sent["repeated"][""] - resends(repeat_runs.repeated) == 3 * single
    # ... and the estimate printed before the run is what a run sends
    ids = [c.id for c in all_checks()]
    config = load_providers(repeat_runs.repeated.report_dir.parent / "both.yaml",
                            {KEY_ENV: SELFTEST_KEY})
    assert round(estimate(ids, config.providers[0]).requests) == single
    line = next(ln for ln in repeat_runs.repeated.stdout.splitlines() if "--repeat 3:" in ln)
    assert f"~{3 * single} requests" in line and "per provider" in line, line
    tokens = repeat_runs.single.data["run"]["tokens"]["reference"]
    spent = tokens["prompt"] + tokens["completion"]
    assert abs(estimate(ids, config.providers[0]).tokens - spent) <= 0.05 * spent


def test_requests_are_not_shared_across_repeats(repeat_runs: Runs) -> None:
    """The nine streaming checks judge one stream per repeat: three streams, each with its
    own id, and within one repeat the checks share it as in a single run."""
    results = by_pair(repeat_runs.repeated)
    seen: dict[int, set[str]] = {}
    for check in ("streaming.done_sentinel", "streaming.chunk_schema"):
        exchanges = results[("reference", check)]["evidence"]["exchanges"]
        assert sorted({x["repeat"] for x in exchanges}) == [1, 2, 3]
        for x in exchanges:
            seen.setdefault(x["repeat"], set()).add(x["id"])
    assert all(len(ids) == 1 for ids in seen.values()), seen
    assert len(set().union(*seen.values())) == 3


def flaky_of(out: RunOutput) -> dict[str, dict[str, Any]]:
    return {c: r for (p, c), r in by_pair(out).items() if p == "flaky" and r.get("flaky")}


def test_flaky_variant_shows_flaky_cells(repeat_runs: Runs) -> None:
    out = repeat_runs.repeated
    flaky = flaky_of(out)
    assert len(flaky) >= 5, sorted(flaky)
    for result in flaky.values():
        outcomes = [r["outcome"] for r in result["runs"]]
        assert result["outcome"] == "pass" and 1 <= result["passes"] <= 2, result
        assert "pass" in outcomes and "fail" in outcomes
        assert result["message"].startswith(f"flaky: passed {result['passes']} of 3 runs")
    assert any("flaky_third" in r["message"] for r in flaky.values())
    assert out.data["run"]["flaky"] == len(flaky)
    # the terminal
    assert f"flaky: {len(flaky)} checks passed some of their 3 runs" in out.stdout
    # summary.md: its own section, not among the deviations
    summary = (out.report_dir / "summary.md").read_text(encoding="utf-8")
    section = summary.split(f"### Flaky ({len(flaky)})", 1)[1].split("###", 1)[0]
    for check in flaky:
        assert f"`{check}` | flaky |" in section
    deviations = summary.split("### Deviations", 1)[-1]
    assert not any(f"`{c}` | flaky | ✓ pass" in deviations for c in flaky)
    # matrix.html
    matrix = (out.report_dir / "matrix.html").read_text(encoding="utf-8")
    assert matrix.count('class="c o-pass flaky"') == len(flaky)
    assert '<span class="o flaky"' in matrix


def test_allure_tags_exactly_the_flaky_cells(repeat_runs: Runs) -> None:
    out = repeat_runs.repeated
    flaky = flaky_of(out)
    tagged: set[str] = set()
    seen = 0
    for path in (out.report_dir.parent / "allure").glob("*-result.json"):
        result = json.loads(path.read_text(encoding="utf-8"))
        seen += 1
        tags = [label["value"] for label in result["labels"] if label["name"] == "tag"]
        if "flaky" in tags:
            check, _, provider = result["name"].rstrip("]").partition("[")
            assert provider == "flaky", result["name"]
            tagged.add(check)
    assert seen == len(out.data["results"])
    assert flaky and tagged == set(flaky)


def test_junit_a_flaky_pass_is_a_passed_testcase(repeat_runs: Runs) -> None:
    out = repeat_runs.repeated
    flaky = flaky_of(out)
    root = ET.parse(out.report_dir / "junit.xml").getroot()
    suite = next(s for s in root.iter("testsuite") if s.get("name") == "flaky")
    for case in suite.iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["repeat"].endswith("/3")
        if case.get("name") in flaky:
            assert case.find("failure") is None and case.find("error") is None
            assert props["flaky"] == "true"
            assert props["repeat"] == f"{flaky[case.get('name')]['passes']}/3"
            assert "flaky: passed" in (case.findtext("system-out") or "")
    assert int(suite.get("failures") or 0) == sum(
        r["outcome"] == "fail" for (p, _), r in by_pair(out).items() if p == "flaky")


def test_pytest_items_are_not_multiplied(repeat_runs: Runs) -> None:
    out = repeat_runs.repeated
    final = next(ln for ln in reversed(out.stdout.splitlines())
                 if re.search(r"\d+ passed.* in [\d.]+s", ln))
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)\b",
                                               final)}
    assert sum(counts.values()) == len(out.data["results"]) == 2 * len(all_checks())


def test_diff_of_a_flaky_run(repeat_runs: Runs, tmp_path: Path) -> None:
    """The same run with its flaky cells made steady is the baseline: a flake is a change,
    a regression only with --flaky-is-regression."""
    new_dir = repeat_runs.repeated.report_dir
    data = load_run(new_dir)
    steady = [replace(r, flaky=False, runs=tuple({**run, "outcome": "pass"} for run in r.runs))
              for r in data.results]
    old_dir = tmp_path / "old"
    write_reports(old_dir, replace(data, results=steady))
    flaky = flaky_of(repeat_runs.repeated)
    lenient = run_cli(["diff", str(old_dir), str(new_dir)], cwd=tmp_path)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert f"0 regressions, 0 fixes, {len(flaky)} other changes" in lenient.stdout
    assert "✓ pass → ✓ pass (flaky " in lenient.stdout
    strict = run_cli(["diff", str(old_dir), str(new_dir), "--flaky-is-regression"],
                     cwd=tmp_path)
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert f"{len(flaky)} regressions" in strict.stdout


def test_budget_holds_across_repeats(tmp_path: Path) -> None:
    """--max-tokens stops starting runs once spent: the later repeats skip, and the printed
    estimate says the budget is smaller than the run."""
    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        providers = write_providers(tmp_path / "p.yaml", [external("reference",
                                                                   server.base_url)])
        out = run_suite(providers, tmp_path / "r", "--repeat", "3", "--max-tokens", "60",
                        "-k", "chat", "-p", "no:xdist")
        received = len(server.recorder.records(limit=MAX_RECORDS))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "more than --max-tokens 60" in out.stdout
    skipped = [run for r in out.data["results"] for run in r.get("runs", [])
               if run["outcome"] == "skip" and "run budget" in run["message"]]
    assert skipped
    ran = sum(len(r.get("runs", [])) for r in out.data["results"]) - len(skipped)
    assert received <= ran + 1  # + the preflight


def test_bad_repeat_is_one_line(tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "p.yaml", [external("x", "http://127.0.0.1:9/v1")])
    out = run_cli(["run", "--providers", str(providers), "--repeat", "0"], cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == ("conformance: --repeat takes a whole number from 1 to 20, "
                                  "got 0")
    plain = run_pytest(["conformance", "--providers", str(providers), "--repeat", "x",
                        "-p", "no:cacheprovider"], cwd=tmp_path)
    assert plain.returncode == 4
    assert "--repeat takes a whole number from 1 to 20, got 'x'" in plain.stderr
    assert "Traceback" not in plain.stderr + plain.stdout


def test_xdist_gives_the_serial_results(repeat_runs: Runs, tmp_path: Path) -> None:
    server = repeat_runs.server
    plain = write_providers(tmp_path / "plain.yaml", [external("reference", server.base_url)])
    before = _received(server)
    parallel = run_suite(plain, tmp_path / "parallel", "--repeat", "3", "-n", "2")
    sent = _delta(before, _received(server))
    assert parallel.returncode == 0, parallel.stdout[-3000:] + parallel.stderr[-3000:]
    serial = {c: (r["outcome"], r.get("passes"), r.get("flaky"))
              for (p, c), r in by_pair(repeat_runs.repeated).items() if p == "reference"}
    xdist = {c: (r["outcome"], r.get("passes"), r.get("flaky"))
             for (p, c), r in by_pair(parallel).items()}
    assert xdist == serial
    assert sent[""] - resends(parallel) == (repeat_runs.sent["repeated"][""]
                                            - resends(repeat_runs.repeated))


def test_flaky_third_is_kept_out_of_the_one_run_fault_tests() -> None:
    assert "flaky_third" in UNSTABLE and "flaky_third" not in FAULTS


# -- the matrix in a browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium as in tests/test_browser.py (skips without it, unless CI requires
    it)."""
    import os

    from tests import test_browser as tb

    reason = tb._missing()
    if reason:
        if os.environ.get("CONFORMANCE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser tests required here: {reason}")
        pytest.skip(reason)
    options = tb.webdriver.ChromeOptions()
    options.binary_location = tb.BROWSER
    for flag in tb.CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-repeat')}")
    options.add_argument("--window-size=1400,900")
    driver = tb.webdriver.Chrome(service=tb.Service(executable_path=tb.DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_browser_shows_flaky_cells(repeat_runs: Runs, browser: Any) -> None:
    """Opened from file://: the flaky cells read "2/3" (or "1/3"), are coloured apart from
    both passes and fails, and the legend names them."""
    from tests import test_browser as tb

    out = repeat_runs.repeated
    flaky = flaky_of(out)
    browser.get((out.report_dir / "matrix.html").resolve().as_uri())
    browser.find_element(tb.By.ID, "expand-all").click()
    cells = browser.find_elements(tb.By.CSS_SELECTOR, "td.c.flaky")
    assert len(cells) == len(flaky)
    providers = [p["name"] for p in out.data["providers"]]
    for cell in cells:
        row = cell.find_element(tb.By.XPATH, "./ancestor::tr[1]").get_attribute("data-check")
        column = providers[int(cell.get_attribute("data-col") or -1)]
        assert column == "flaky" and row in flaky
        assert cell.is_displayed()
        assert cell.text.replace("\n", "") == f"≈{flaky[row]['passes']}/3"

    def background(selector: str) -> str:
        element = browser.find_element(tb.By.CSS_SELECTOR, selector)
        return str(browser.execute_script(
            "return getComputedStyle(arguments[0]).backgroundImage + ' ' + "
            "getComputedStyle(arguments[0]).backgroundColor", element))

    shaded = background("td.c.flaky")
    assert shaded != background("td.c.o-pass:not(.flaky)")
    steady = browser.find_element(tb.By.CSS_SELECTOR, "td.c.o-pass:not(.flaky)")
    assert steady.get_attribute("data-repeat") == "3/3"
    legend = browser.find_element(tb.By.CSS_SELECTOR, ".legend .flaky")
    assert "flaky" in legend.text and str(len(flaky)) in legend.text
    # the evidence panel of a flaky cell says which run failed
    browser.execute_script("arguments[0].click()", cells[0].find_element(tb.By.TAG_NAME,
                                                                         "button"))
    panel = tb.WebDriverWait(browser, 10).until(
        lambda d: d.find_element(tb.By.ID, "panel") if d.find_element(
            tb.By.ID, "panel").is_displayed() else False)
    assert "flaky: passed" in panel.text
    # each exchange says which of the three runs it belongs to
    summaries = [e.text for e in panel.find_elements(tb.By.CSS_SELECTOR, "details.ex > summary")]
    assert {f"run {n}" for n in (1, 2, 3)} <= {s.split(" · ")[0].split(" ", 1)[-1]
                                               for s in summaries}, summaries
    # "only deviations" keeps the rows with a flaky cell (and hides the steady ones)
    browser.execute_script("document.getElementById('f-dev').click()")
    rows = browser.find_elements(tb.By.CSS_SELECTOR, "tr.chk")
    shown = {r.get_attribute("data-check") for r in rows if r.is_displayed()}
    assert set(flaky) <= shown and len(shown) < len(rows)
