"""The pytest plugin under plain pytest (in-process with pytester) and under xdist."""

from __future__ import annotations

import json
import subprocess
from collections import deque
from pathlib import Path

import pytest

from conformance.pytest_support import ProviderScheduling, installed_suite_args, new_in_queue
from conformance.reference.server import ReferenceServer
from conformance.results import Result, token_totals
from tests.conftest import (
    KEY_ENV,
    PACKAGE_DIR,
    SELFTEST_KEY,
    RunOutput,
    external,
    run_cli,
    run_pytest,
    run_suite,
    write_providers,
)


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SELFTEST_KEY)


def test_outcomes_map_to_pytest_statuses(pytester: pytest.Pytester, keyed: None,
                                         reference_server: ReferenceServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # room for the message on the summary line
    providers = write_providers(pytester.path / "providers.yaml", [
        external("good", reference_server.base_url),
        external("nostop", reference_server.variant_url(["ignore_stop"])),
        external("declines", reference_server.variant_url(["reject_stop"])),
        {"name": "nokey", "base_url": "https://example.invalid/v1",
         "api_key": "${CONFORMANCE_UNSET_VARIABLE}", "model": "m"},
    ])
    result = pytester.runpytest(str(PACKAGE_DIR), "--providers", str(providers), "-m", "stop",
                                "--report-dir", str(pytester.path / "r"), "-rA",
                                "-p", "no:cacheprovider")
    # 3 stop checks × 4 providers: good passes, nostop fails, declines and nokey skip.
    result.assert_outcomes(passed=3, failed=3, skipped=6)
    result.stdout.fnmatch_lines([
        "*SKIPPED*checks/stop.py:*: unsupported: stop declined: HTTP 400*",
        "*SKIPPED*checks/stop.py:*: set CONFORMANCE_UNSET_VARIABLE*",
        "FAILED *checks/stop.py::stop.string[[]nostop[]] - stop='7' ignored: the answer *",
    ], consecutive=False)
    # A finding is reported as one line, not as a traceback into the suite.
    assert "Traceback" not in result.stdout.str()


def test_node_ids_and_family_markers(pytester: pytest.Pytester,
                                     reference_server: ReferenceServer, keyed: None) -> None:
    providers = write_providers(pytester.path / "providers.yaml", [
        external("ref", reference_server.base_url)])
    result = pytester.runpytest(str(PACKAGE_DIR), "--providers", str(providers),
                                "--collect-only", "-q", "-m", "usage", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*checks/usage.py::usage.present[[]ref[]]"])
    assert "chat.basic" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()  # nothing ran, nothing written


def test_plugin_is_inert_for_other_test_suites(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "conformance matrix" not in result.stdout.str()
    assert not (pytester.path / "reports").exists()


def test_config_error_under_plain_pytest_is_a_usage_error(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "providers.yaml"
    bad.write_text("providers:\n  - name: Bad Name\n    builtin: reference\n")
    result = pytester.runpytest(str(PACKAGE_DIR), "--providers", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*providers.yaml:2*name*"])


def spent(out: RunOutput) -> dict[str, dict[str, int]]:
    """The run's tokens without streaming.real_time's resends, which it sends only when the
    suite's own client was held up while reading the shared stream (so not the same in two
    runs); the shared stream is the first exchange of its evidence."""
    results = [Result.from_json(r) for r in out.data["results"]]
    for result in results:
        if result.check == "streaming.real_time":
            result.evidence["exchanges"] = result.evidence.get("exchanges", [])[:1]
    return token_totals(results)


def test_xdist_gives_the_same_results_as_a_serial_run(reference_server: ReferenceServer,
                                                      tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "providers.yaml", [
        external("reference", reference_server.base_url),
        external("nodone", reference_server.variant_url(["no_done"])),
        external("nousage", reference_server.variant_url(["no_usage"])),
    ])
    serial = run_suite(providers, tmp_path / "serial")
    parallel = run_suite(providers, tmp_path / "parallel", "-n", "2")
    assert serial.returncode == parallel.returncode == 0, parallel.stdout[-3000:]

    def verdicts(out: RunOutput) -> dict[tuple[str, str], str]:
        return {k: v[0] for k, v in out.outcomes().items()}

    assert verdicts(parallel) == verdicts(serial)
    # Each provider's checks run in one worker, so shared requests are not sent twice.
    assert spent(parallel) == spent(serial)
    assert any(v == "fail" for v in verdicts(serial).values())
    assert not list((tmp_path / "parallel").glob("results.gw*.jsonl"))  # merged
    lines = (tmp_path / "parallel" / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(parallel.data["results"])
    # Workers on another host than the controller's send their results inline (here the
    # controller is told its host is another): the same results, evidence included.
    inline = run_suite(providers, tmp_path / "inline", "-n", "2",
                       "-p", "tests.other_host_plugin")
    assert inline.returncode == 0, inline.stdout[-3000:]
    assert verdicts(inline) == verdicts(serial)
    assert spent(inline) == spent(serial)
    def exchanges(out: RunOutput) -> dict[tuple[str, str], list[tuple[str, object]]]:
        return {(r["check"], r["provider"]): [
            (x["request"]["method"], x["response"].get("status"))
            for x in r["evidence"].get("exchanges", [])]
            for r in out.data["results"] if r["check"] != "streaming.real_time"}

    assert exchanges(inline) == exchanges(parallel)
    assert sum(map(len, exchanges(inline).values())) > len(inline.data["results"]) // 2


def test_last_failed_reruns_only_the_failed_checks(reference_server: ReferenceServer,
                                                    tmp_path: Path) -> None:
    """--lf selects the checks that failed last time (and sends nothing else); --ff runs
    them first. pytest's cache is the working directory's, as for `pytest conformance` there,
    not the checkout's (or site-packages') that the package dir would imply."""
    providers = write_providers(tmp_path / "providers.yaml", [
        external("good", reference_server.base_url),
        external("nostop", reference_server.variant_url(["ignore_stop"]))])
    select = ["-m", "stop or chat"]

    def run(report: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        proc = run_cli(["run", "--providers", str(providers), "--report-dir", report,
                        *select, *extra], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        lines = (tmp_path / report / "results.jsonl").read_text().splitlines()
        return proc, [f"{r['check']}[{r['provider']}]" for r in map(json.loads, lines)]

    failed = ["stop.string[nostop]", "stop.list[nostop]", "stop.stream[nostop]"]
    _, first = run("first")
    assert len(first) == 16 and set(failed) <= set(first)
    assert (tmp_path / ".pytest_cache" / "v" / "cache" / "lastfailed").is_file()
    proc, again = run("again", "--lf")
    assert again == failed
    assert "rerun previous 3 failures" in proc.stdout and "3 failed" in proc.stdout
    _, ordered = run("ordered", "--ff")
    assert ordered[:3] == failed and sorted(ordered) == sorted(first)


def test_pytest_conformance_finds_the_installed_suite_from_any_directory(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """The README's `pytest conformance --providers ...` after `pip install .`, run where
    there is no `conformance` directory; `--pyargs conformance` keeps working."""
    write_providers(tmp_path / "providers.yaml", [external("ref", reference_server.base_url)])
    common = ["--providers", "providers.yaml", "-p", "no:cacheprovider"]
    for report, args, ran in (
            ("a", ["conformance", "-m", "stop"], 3),
            ("b", ["conformance/checks/stop.py::stop.list"], 1),
            ("c", ["--pyargs", "conformance", "-m", "stop"], 3)):
        proc = run_pytest([*args, *common, "--report-dir", report], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert f"{ran} passed" in proc.stdout
        data = json.loads((tmp_path / report / "results.json").read_text())
        assert len(data["results"]) == ran


def test_only_a_missing_conformance_path_means_the_installed_suite(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert installed_suite_args(
        ["conformance", "conformance/checks/stop.py::stop.list", "conformance/nope.py",
         "/abs/conformance", "tests"], elsewhere) == [
        str(PACKAGE_DIR), f"{PACKAGE_DIR / 'checks' / 'stop.py'}::stop.list",
        "conformance/nope.py", "/abs/conformance", "tests"]
    (tmp_path / "conformance").mkdir()  # the user's own directory of that name wins
    assert installed_suite_args(["conformance"], tmp_path) == ["conformance"]


def test_provider_scheduling_groups_a_providers_checks() -> None:
    scheduler = object.__new__(ProviderScheduling)  # _split_scope needs no state
    assert scheduler._split_scope("conformance/checks/stop.py::stop.list[a.b-1]") == \
        "provider a.b-1"
    assert scheduler._split_scope("checks/chat.py::chat.basic[a.b-1]") == "provider a.b-1"
    # Other tests in the same run keep one scope each; an xdist group suffix is honoured.
    assert scheduler._split_scope("tests/test_x.py::test_y") == "tests/test_x.py::test_y"
    assert scheduler._split_scope("tests/test_x.py::test_y[1]@g") == "g"


def test_a_worker_reads_only_what_was_queued_since_it_last_looked() -> None:
    """An xdist worker hands the engine what its queue holds at each item; it reads the
    queue's end back to the first index it has seen (whole-queue reads were quadratic in
    its items), and finds exactly the new ones, in order, once."""
    seen: set[int] = set()
    queue: deque[object] = deque([3, 4, 5])
    assert new_in_queue(queue, seen) == [3, 4, 5]
    queue.popleft()
    assert new_in_queue(queue, seen) == []
    queue.extend([9, 7, "SHUTDOWN"])  # the controller appends; a marker is not an item
    assert new_in_queue(queue, seen) == [9, 7]
    assert seen == {3, 4, 5, 9, 7}
    assert new_in_queue(deque(), seen) == []


class _Node:
    """What xdist's schedulers use of a worker: what it was sent, whether it shuts down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.gateway = type("Gateway", (), {"id": name})()
        self.shutting_down = False
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent.append(list(indices))

    def shutdown(self) -> None:
        self.shutting_down = True


class _Config:
    class option:  # pytest's config.option
        loadscopereorder = False

    def getvalue(self, name: str) -> list[str]:
        assert name == "tx"
        return ["2*popen"]


def _drive(scheduler_class: type, seed: int, lose_a_worker: bool) -> list[object]:
    """Two workers, 7 providers × 5 checks, checks completed in a random order (and one
    worker lost midway): every observable step of the scheduler."""
    import random

    rng = random.Random(seed)
    collection = [f"conformance/checks/chat.py::chat.c{c}[p{p}]" for p in range(7)
                  for c in range(5)]
    scheduler = scheduler_class(_Config())
    nodes = [_Node("gw0"), _Node("gw1")]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    running = {node.name: [i for batch in node.sent for i in batch] for node in nodes}
    seen: list[object] = [dict(running)]
    while any(running.values()):
        node = rng.choice([n for n in nodes if running[n.name]])
        if lose_a_worker and node.name == "gw1" and len(running["gw1"]) < 8:
            lose_a_worker = False
            sent = {n.name: len(n.sent) for n in nodes}
            seen.append(("lost gw1 at", scheduler.remove_node(node)))
            nodes.remove(node)
            running["gw1"] = []
            for other in nodes:
                running[other.name] += [i for batch in other.sent[sent[other.name]:]
                                        for i in batch]
            continue
        index = running[node.name].pop(rng.randrange(len(running[node.name])))
        before = len(node.sent)
        scheduler.mark_test_complete(node, index)
        for batch in node.sent[before:]:
            running[node.name] += batch
        seen.append((node.name, index, node.sent[before:], node.shutting_down,
                     scheduler.tests_finished, scheduler.has_pending))
    return seen


def test_provider_scheduling_counts_as_xdist_does_without_walking_everything() -> None:
    """ProviderScheduling keeps each provider's count of unfinished checks and a node-id
    index (xdist's loadscope walks every assigned check after each report and looks indices
    up with list.index: quadratic).  Same event sequence, same decisions as xdist's own
    methods, a lost worker included."""
    from xdist.scheduler.loadscope import LoadScopeScheduling

    class XdistCounting(ProviderScheduling):  # type: ignore[misc]
        _pending_of = LoadScopeScheduling._pending_of
        mark_test_complete = LoadScopeScheduling.mark_test_complete
        _assign_work_unit = LoadScopeScheduling._assign_work_unit

    for seed in range(6):
        lose = seed % 2 == 1
        ours, xdists = _drive(ProviderScheduling, seed, lose), _drive(XdistCounting, seed, lose)
        assert ours == xdists
        if not lose:  # every check reported: the run is over
            assert ours[-1][-2:] == (True, False), ours[-1]
