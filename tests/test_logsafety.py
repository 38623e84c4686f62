"""Loggers created by other threads during a run never cost an item its result
(conformance.logsafety): pytest's logging plugin walks the logger table at every test phase."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import logsafety
from conformance.reference.server import ReferenceServer
from tests.conftest import external, run_suite, write_providers


@pytest.fixture
def guarded() -> Iterator[None]:
    done = logsafety.guard()
    try:
        yield
    finally:
        logsafety.restore(done)


def test_a_run_keeps_every_result_while_threads_create_loggers(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    providers = write_providers(tmp_path / "providers.yaml",
                                [external("reference", reference_server.base_url)])
    out = run_suite(providers, tmp_path / "report", "-p", "tests.logger_churn_plugin")
    assert "dictionary changed size" not in out.stdout + out.stderr
    assert out.returncode == 0, out.stdout[-3000:]
    checks = {c["id"] for c in out.data["checks"]}
    assert {check for (_, check) in out.outcomes()} == checks
    assert len(checks) > 100


def test_an_item_whose_setup_failed_first_keeps_its_result(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """Whatever fails in pytest's setup before the suite's own: the item is pytest's error,
    and the check the engine judged is in the result files all the same."""
    providers = write_providers(tmp_path / "providers.yaml",
                                [external("reference", reference_server.base_url)])
    out = run_suite(providers, tmp_path / "report", "-p", "tests.setup_fault_plugin",
                    "-k", "chat")
    assert "ERROR checks/chat.py::chat.basic[reference] - RuntimeError: a plugin's setup" \
        in out.stdout, out.stdout[-3000:]
    outcomes = out.outcomes()
    assert outcomes[("reference", "chat.basic")][0] == "pass"
    chat = {c["id"] for c in out.data["checks"] if c["id"].startswith("chat.")}
    assert {check for (_, check) in outcomes} >= chat
    assert len(out.data["results"]) == len(outcomes)  # recorded once
    lines = (tmp_path / "report" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert sum('"check":"chat.basic"' in line for line in lines) == 1


def test_the_guarded_table_reads_a_snapshot(guarded: None) -> None:
    table = logging.Logger.manager.loggerDict
    assert isinstance(table, logsafety.SnapshotDict)
    before = len(table)
    walked = 0
    for _ in table.values():  # a logger added mid-walk: no RuntimeError
        if walked == 0:
            logging.getLogger("tests.logsafety.added-mid-walk")
        walked += 1
    assert walked == before
    assert "tests.logsafety.added-mid-walk" in table
    for view in (table.keys(), table.items()):
        for _ in view:
            logging.getLogger(f"tests.logsafety.added-{len(table)}")
            break
    assert set(table.keys()) >= {"tests.logsafety.added-mid-walk"}
    assert logsafety.guard() is False  # already guarded: the nested call changes nothing
    assert logging.Logger.manager.loggerDict is table


def test_restore_gives_back_a_plain_table_with_the_loggers_made_meanwhile() -> None:
    done = logsafety.guard()
    assert done is True
    made = logging.getLogger("tests.logsafety.while-guarded")
    logsafety.restore(done)
    table = logging.Logger.manager.loggerDict
    assert type(table) is dict
    assert table["tests.logsafety.while-guarded"] is made
    assert logging.getLogger("tests.logsafety.while-guarded") is made
    logsafety.restore(False)  # nothing to undo
    assert logging.Logger.manager.loggerDict is table
