"""A pytest plugin for the suite's own tests (``-p tests.other_host_plugin``): in the xdist
controller only, the host name the suite reads is another machine's, so the workers (on this
host) hand their results over inline, as a worker on a remote host must, instead of naming
their results files (conformance.pytest_support: ``XdistHooks``)."""

from __future__ import annotations

import types

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        import conformance.pytest_support as support

        support.socket = types.SimpleNamespace(  # type: ignore[assignment]
            gethostname=lambda: "the-controller-is-elsewhere")
