"""A pytest plugin for the suite's own tests (``-p tests.setup_fault_plugin``): pytest's setup of
the ``chat.basic`` items fails before the suite's own setup asks for the result, as pytest's
logging plugin's did when another thread added a logger mid-walk (conformance.logsafety)."""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.name.startswith("chat.basic["):
        raise RuntimeError("a plugin's setup failed before the suite's")
