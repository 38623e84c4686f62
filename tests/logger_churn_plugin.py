"""A pytest plugin for the suite's own tests (``-p tests.logger_churn_plugin``): while the
run's items run, a thread keeps creating loggers, as the openai SDK's warm-up and the engine's
lazy imports do, next to a table of a few thousand (so pytest's logging plugin, which walks the
whole table at every test phase, is often in the middle of a walk when one is added;
conformance.logsafety)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

TABLE = 5_000
_stop = threading.Event()
_threads: list[threading.Thread] = []


def _churn() -> None:
    made = 0
    while not _stop.is_set():
        logging.getLogger(f"tests.churn.live.{made}")
        made += 1
        time.sleep(0.0005)


def pytest_sessionstart(session: pytest.Session) -> None:
    for number in range(TABLE):
        logging.getLogger(f"tests.churn.table.{number}")
    thread = threading.Thread(target=_churn, name="tests-logger-churn", daemon=True)
    thread.start()
    _threads.append(thread)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _stop.set()
    for thread in _threads:
        thread.join()
