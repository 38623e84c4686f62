"""The command line as users and CI call it: exit codes, errors, report re-rendering."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conformance.checks.registry import all_checks
from conformance.reference.server import ReferenceServer, ThreadedServer
from conformance.results import clear_run_files
from tests.conftest import (
    KEY_ENV,
    PACKAGE_DIR,
    REPO,
    SELFTEST_KEY,
    child_env,
    external,
    not_for_this_provider,
    run_cli,
    run_pytest,
    run_suite,
    write_providers,
)


def test_default_providers_file_runs_builtin_reference_and_skips_relays(tmp_path: Path) -> None:
    """What `make demo` does: the repo's providers.yaml with no keys set."""
    shutil.copy(REPO / "providers.yaml", tmp_path / "providers.yaml")
    env = {v: "" for v in ("API51_API_KEY", "APIYI_API_KEY", "SKRELAY_API_KEY",
                           "SKRELAY_BASE_URL", "LALC_API_KEY", "EZMODEL_API_KEY")}
    proc = run_cli(["run", "-p", "no:cacheprovider"], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    reports = list((tmp_path / "reports").iterdir())
    assert len(reports) == 1
    data = json.loads((reports[0] / "results.json").read_text())
    by_provider: dict[str, set[str]] = {}
    for r in data["results"]:
        if not not_for_this_provider((r["outcome"], r["message"])) or r["provider"] != "reference":
            by_provider.setdefault(r["provider"], set()).add(r["outcome"])
    assert by_provider["reference"] == {"pass"}
    # The demo's deliberately broken variant shows a red cell with its evidence.
    broken = {r["check"] for r in data["results"]
              if r["provider"] == "reference-broken-demo" and r["outcome"] == "fail"}
    assert {"stop.string", "streaming.done_sentinel"} <= broken, broken
    for relay, var in (("51api", "API51_API_KEY"), ("apiyi", "APIYI_API_KEY"),
                       ("lalc", "LALC_API_KEY"), ("ezmodel", "EZMODEL_API_KEY")):
        assert by_provider[relay] == {"skip"}
        messages = {r["message"] for r in data["results"] if r["provider"] == relay}
        assert messages == {f"set {var}"}
    assert "conformance matrix" in proc.stdout
    assert f"report: reports/{reports[0].name}/" in proc.stdout
    # The builtin reference's random key is a secret too.
    for provider in data["providers"]:
        assert "api_key" not in provider
        if provider["name"] == "reference":
            assert provider["base_url"] == "builtin:reference"


def test_bad_providers_file_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text("providers:\n  - name: x\n    base_url: https://x.example/v1\n"
                    "    model: m\n    modle: typo\n")
    proc = run_cli(["run", "--providers", str(path)], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "providers.yaml:5" in lines[0] and "modle" in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "reports").exists()


def test_misspelled_fault_is_a_config_error_exit_2(tmp_path: Path) -> None:
    """Not an INTERNALERROR traceback when the builtin reference starts (exit 3)."""
    path = tmp_path / "providers.yaml"
    path.write_text("providers:\n  - name: reference\n    builtin: reference\n"
                    "    faults: [ignore_stop, ignor_stop]\n")
    expected = ("providers.yaml:4: providers[0].faults[1]: unknown fault 'ignor_stop'; "
                "did you mean 'ignore_stop'?")
    proc = run_cli(["run", "--providers", "providers.yaml", "-p", "no:cacheprovider"],
                   cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (2, f"conformance: {expected}\n")
    assert "INTERNALERROR" not in proc.stdout
    plain = run_pytest([str(PACKAGE_DIR), "--providers", "providers.yaml",
                        "-p", "no:cacheprovider"], cwd=tmp_path)
    assert plain.returncode == 4  # pytest's usage error
    assert plain.stderr.strip().splitlines() == [f"ERROR: {expected}"]
    assert "INTERNALERROR" not in plain.stdout and not (tmp_path / "reports").exists()


def test_unknown_provider_name_exit_2(tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [{"name": "reference",
                                                          "builtin": "reference"}])
    proc = run_cli(["run", "--providers", str(path), "--provider", "nope"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown provider 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_strict_exits_1_on_fail_and_0_without(reference_server: ReferenceServer,
                                              tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        external("broken", reference_server.variant_url(["ignore_stop"]))])
    lenient = run_suite(path, tmp_path / "a", "-k", "stop")
    assert lenient.returncode == 0, lenient.stdout[-2000:]
    strict = run_suite(path, tmp_path / "b", "-k", "stop", "--strict")
    assert strict.returncode == 1, strict.stdout[-2000:]
    assert "stop='7' ignored" in strict.stdout


def test_no_checks_selected_exit_2(tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [{"name": "reference",
                                                          "builtin": "reference"}])
    proc = run_cli(["run", "--providers", str(path), "-k", "no_such_check_anywhere"],
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "no checks selected" in proc.stderr


def test_report_rerenders_a_killed_run_from_jsonl(reference_server: ReferenceServer,
                                                  tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        external("reference", reference_server.base_url)])
    out = run_suite(path, tmp_path / "r", "-k", "chat")
    report = out.report_dir
    total = len(out.data["results"])
    # Simulate a run killed before the end: no results.json, and a torn last line.
    for name in ("results.json", "junit.xml", "matrix.html"):
        (report / name).unlink()
    with (report / "results.jsonl").open("a") as fh:
        fh.write('{"provider": "reference", "check": "chat.tor')
    proc = run_cli(["report", str(report)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((report / "results.json").read_text())
    assert len(data["results"]) == total
    html = (report / "matrix.html").read_text()
    assert "chat.basic" in html and "did not finish" in html
    assert SELFTEST_KEY not in html


@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C"])
def test_unfinished_run_reports_what_did_not_run(reference_server: ReferenceServer,
                                                 tmp_path: Path, how: str) -> None:
    """A run stopped after two of its eight checks (killed, or interrupted): its reports say
    it is incomplete and list every planned check that did not run as an error, instead of
    looking like a complete, green run."""
    path = write_providers(tmp_path / "providers.yaml", [
        external("slow", reference_server.variant_url(latency_ms=300), concurrency=1)])
    report = tmp_path / "r"
    env = {**os.environ, KEY_ENV: SELFTEST_KEY}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", "--providers", str(path), "--report-dir",
         str(report), "-m", "chat or stop", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    jsonl = report / "results.jsonl"
    deadline = time.monotonic() + 120
    while not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 2):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
    process.communicate(timeout=60)
    if how == "kill -9":
        assert not (report / "results.json").exists()
    planned = [[c.id, "slow"] for c in all_checks() if c.behavior in ("chat", "stop")]
    assert len(planned) == 8

    proc = run_cli(["report", str(report)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((report / "results.json").read_text())
    finished = {(r["check"], r["provider"]) for r in data["results"]}
    assert 2 <= len(finished) < 8
    not_run = [pair for pair in planned if tuple(pair) not in finished]
    root = ET.parse(report / "junit.xml").getroot()
    assert root.get("tests") == "8" and int(root.get("errors", "0")) >= len(not_run)
    errors = {case.get("name"): case.find("error") for case in root.iter("testcase")}
    for check, _ in not_run:
        error = errors[check]
        assert error is not None and error.get("message") == "not run: the run did not finish"
    summary = (report / "summary.md").read_text()
    assert f"Incomplete run: {len(finished)} of 8 checks finished" in summary.split("\n", 3)[2]
    assert f"Incomplete run: {len(finished)} of 8 checks finished" in \
        (report / "matrix.html").read_text()
    assert f"Incomplete run: {len(finished)} of 8 checks finished" in proc.stdout
    assert data["run"]["incomplete"] == {"planned": 8, "finished": len(finished),
                                         "not_run": not_run}
    assert json.loads((report / "run.json").read_text())["planned"] == planned


def test_report_on_missing_dir_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(["report", str(tmp_path / "nope")], cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_checks_listing_names_every_family() -> None:
    proc = run_cli(["checks", "--markdown"], cwd=REPO)
    assert proc.returncode == 0
    for family in ("models", "chat", "streaming", "stop", "max_tokens", "usage", "errors",
                   "auth"):
        assert f"| {family} |" in proc.stdout


def test_serve_reference_command_serves_with_auth(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "conformance", "serve-reference", "--port", "0", "--api-key",
         "sk-served-123456"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=tmp_path)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("reference provider listening on http://127.0.0.1:"), line
        base = line.rsplit(" ", 1)[1]
        assert httpx.get(base + "/models").status_code == 401
        ok = httpx.get(base + "/models", headers={"authorization": "Bearer sk-served-123456"})
        assert ok.status_code == 200 and ok.json()["object"] == "list"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_weak_model_makes_stop_checks_inconclusive_not_failed(tmp_path: Path) -> None:
    """A protocol-perfect server whose model cannot count: the stop checks' control shows no
    '7' without stop, so they cannot prove anything and say so (skip), instead of passing
    vacuously or failing the provider."""
    async def complete(request: Request) -> JSONResponse:
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "ref-1",
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": "I cannot count.",
                                     "refusal": None}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})

    app = Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])
    with ThreadedServer(app) as server:
        path = write_providers(tmp_path / "providers.yaml", [
            external("weak", f"{server.origin}/v1")])
        out = run_suite(path, tmp_path / "r", "-k", "stop.string or stop.list")
    outcomes = out.outcomes()
    assert set(outcomes) == {("weak", "stop.string"), ("weak", "stop.list")}
    for outcome, message in outcomes.values():
        assert outcome == "skip"
        assert message.startswith("inconclusive: without stop the answer never contains '7'")


def test_readme_check_table_lists_every_check() -> None:
    """The README's table is `conformance checks --markdown`, kept in sync."""
    proc = run_cli(["checks", "--markdown"], cwd=REPO)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- checks:start -->\n", 1)[1].split("<!-- checks:end -->", 1)[0]
    assert block == proc.stdout, "regenerate the README table with `conformance checks --markdown`"


def run_with_reader_gone(args: list[str], cwd: Path) -> tuple[int, bytes, str]:
    """``conformance ARGS | head -1``: stdout is a 4 KiB pipe whose reader takes one line
    and closes it, so any output past ~12 KiB (the pipe, plus what the reader buffered) is
    written to a closed pipe.  Returns (exit status, first line, stderr)."""
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 4096)
    env = {**os.environ, KEY_ENV: SELFTEST_KEY}
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    process = subprocess.Popen([sys.executable, "-m", "conformance", *args], cwd=cwd, env=env,
                               stdout=write_fd, stderr=subprocess.PIPE)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        first = reader.readline()
    assert process.stderr is not None
    stderr = process.stderr.read().decode(errors="replace")
    return process.wait(timeout=300), first, stderr


def test_checks_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`conformance checks --markdown | head -1`: ~25 KiB of output, most of it after the
    reader has gone."""
    code, first, stderr = run_with_reader_gone(["checks", "--markdown"], tmp_path)
    assert first == b"| check | family | severity | what it proves |\n"
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert stderr == "" and code == 0


def test_run_into_a_closed_pipe_still_writes_its_report(reference_server: ReferenceServer,
                                                        tmp_path: Path) -> None:
    """`conformance run | head -1`: the reader is gone long before the summary is printed;
    the run goes on, writes its report and exits 0."""
    path = write_providers(tmp_path / "providers.yaml", [
        external("slow", reference_server.variant_url(latency_ms=100))])
    code, first, stderr = run_with_reader_gone(
        ["run", "--providers", str(path), "--report-dir", str(tmp_path / "r"), "-m", "chat",
         "-p", "no:cacheprovider"], tmp_path)
    assert first.startswith(b"=====") and b"test session starts" in first
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr[-3000:]
    assert code == 0
    data = json.loads((tmp_path / "r" / "results.json").read_text())
    assert data["results"] and {r["outcome"] for r in data["results"]} == {"pass"}


def _builtin(tmp_path: Path, **extra: object) -> Path:
    return write_providers(tmp_path / "providers.yaml",
                           [{"name": "reference", "builtin": "reference", **extra}])


def _jsonl(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in
            (directory / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def test_default_report_dir_is_named_after_the_run_id(tmp_path: Path) -> None:
    _builtin(tmp_path)
    proc = run_cli(["run", "-k", "chat.basic", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [report] = (tmp_path / "reports").iterdir()
    data = json.loads((report / "results.json").read_text())
    meta = json.loads((report / "run.json").read_text())
    assert data["run"]["id"] == meta["run"]["id"] == report.name


def test_reused_report_dir_holds_only_the_new_run(tmp_path: Path) -> None:
    """Result files of an earlier run in --report-dir are removed when the next run starts
    (also under xdist, where only the controller may do it), so results.jsonl and a
    re-render hold one run; a stale baseline.json goes unless the run stores its own."""
    providers = _builtin(tmp_path)
    report = tmp_path / "r"

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        proc = run_cli(["run", "--providers", str(providers), "--report-dir", str(report),
                        "-p", "no:cacheprovider", *extra], cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc

    run("-k", "chat or stop", "--report-dir", str(tmp_path / "old"))
    run("-k", "chat", "--baseline", str(tmp_path / "old"))
    old_id = json.loads((tmp_path / "old" / "results.json").read_text())["run"]["id"]
    assert json.loads((report / "baseline.json").read_text())["run"]["id"] == old_id
    first_id = json.loads((report / "results.json").read_text())["run"]["id"]
    second = run("-m", "stop", "-n", "2")
    assert f"r{os.sep} held an earlier run; removed its results.jsonl, results.json, " \
        "run.json, junit.xml, matrix.html, summary.md, baseline.json" in second.stdout
    data = json.loads((report / "results.json").read_text())
    assert data["run"]["id"] != first_id
    assert {r["check"] for r in data["results"]} == {"stop.string", "stop.list", "stop.stream"}
    assert sorted(r["check"] for r in _jsonl(report)) == sorted(
        r["check"] for r in data["results"])
    assert not (report / "baseline.json").exists()
    rerendered = run_cli(["report", str(report)], cwd=tmp_path)
    assert rerendered.returncode == 0
    assert json.loads((report / "results.json").read_text()) == data


def test_a_directory_without_a_run_is_not_cleared(tmp_path: Path) -> None:
    """`--report-dir .` in a project must not delete its own summary.md or junit.xml."""
    for name in ("summary.md", "junit.xml", "baseline.json", "notes.txt"):
        (tmp_path / name).write_text("mine")
    assert clear_run_files(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 4
    (tmp_path / "results.gw0.jsonl").write_text("")
    assert clear_run_files(tmp_path, keep_baseline=True) == [
        "junit.xml", "summary.md", "results.gw0.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json", "notes.txt"]


def _interrupt(args: list[str], report: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Start ``python -m ARGS``, send SIGINT (Ctrl-C) once a few checks have finished."""
    process = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=cwd, env=child_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        # The test runner may ignore SIGINT (an xdist worker does), which a child inherits;
        # a user's shell does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        log = report / "results.jsonl"
        while not (log.exists() and len(log.read_text().splitlines()) >= 5):
            assert process.poll() is None and time.monotonic() < deadline, "no progress"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def test_ctrl_c_is_one_line_with_a_partial_report_exit_130(tmp_path: Path) -> None:
    """The builtin reference is slow (latency), so Ctrl-C comes mid-run with requests in
    flight: what finished is written, the last line says so, no server traceback."""
    providers = _builtin(tmp_path, latency_ms=150, concurrency=2)
    report = tmp_path / "r"
    proc = _interrupt(["conformance", "run", "--providers", str(providers), "--report-dir",
                       "r", "-p", "no:cacheprovider"], report, tmp_path)
    assert proc.returncode == 130, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads((report / "results.json").read_text())
    finished = len(data["results"])
    total = len(all_checks())
    assert 5 <= finished < total and len(_jsonl(report)) == finished
    assert proc.stderr == (f"conformance: interrupted: {finished} of {total} checks finished; "
                           f"partial report in r{os.sep}\n")
    assert "Traceback" not in proc.stdout
    assert f"report: r{os.sep} (partial: interrupted, {finished} of {total}" in proc.stdout


def test_ctrl_c_under_plain_pytest_keeps_pytests_handling(tmp_path: Path) -> None:
    providers = _builtin(tmp_path, latency_ms=150, concurrency=2)
    report = tmp_path / "r"
    proc = _interrupt(["pytest", str(PACKAGE_DIR), "--providers", str(providers),
                       "--report-dir", "r", "-p", "no:cacheprovider"], report, tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]  # pytest's
    assert "KeyboardInterrupt" in proc.stdout
    assert proc.stderr == ""  # no server traceback (uvicorn logged ClientDisconnect)
    data = json.loads((report / "results.json").read_text())
    assert len(_jsonl(report)) == len(data["results"]) >= 5


def test_collect_only_never_reads_an_earlier_runs_results(tmp_path: Path) -> None:
    """``--collect-only`` into a report dir that holds an earlier run with a ``fail``: nothing
    ran, so it says so, ``--strict`` finds nothing to fail on, and the earlier files stay."""
    providers = _builtin(tmp_path)
    report = tmp_path / "r"
    report.mkdir()
    earlier = {"format": "conformance-results/1", "run": {"id": "earlier"}, "providers": [],
               "checks": [], "results": [{"provider": "reference", "model": "m",
                                          "check": "chat.basic", "behavior": "chat",
                                          "outcome": "fail", "message": "earlier",
                                          "duration_ms": 1, "evidence": {}}]}
    (report / "results.json").write_text(json.dumps(earlier), encoding="utf-8")
    proc = run_cli(["run", "--providers", str(providers), "--report-dir", str(report),
                    "--strict", "--collect-only", "-q", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "no check ran, nothing written" in proc.stdout
    assert json.loads((report / "results.json").read_text(encoding="utf-8")) == earlier
