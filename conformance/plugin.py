"""The pytest plugin (entry point ``pytest11: conformance``): wiring only.

Options and markers are always registered; everything else is activated only when the run
targets the suite (``pytest conformance``, ``--providers``), so other pytest runs in the same
environment are unaffected.  The work happens in :mod:`conformance.pytest_support`.
"""

from __future__ import annotations

import argparse

import pytest

from conformance import norewrite  # noqa: F401  # first: the suite's modules stay unrewritten
from conformance.pytest_support import (
    ConformanceSession,
    XdistHooks,
    auto_workers,
    installed_suite_args,
    register_markers,
    targets_suite,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "OpenAI-compatibility conformance suite")
    group.addoption("--providers", dest="conformance_providers", metavar="PATH", default=None,
                    help="providers file (default: ./providers.yaml, else the packaged one)")
    group.addoption("--provider", dest="conformance_provider", metavar="NAME", action="append",
                    default=[], help="run only this provider (repeatable)")
    group.addoption("--report-dir", dest="conformance_report_dir", metavar="DIR", default=None,
                    help="where result files go (default: reports/<run-id>)")
    group.addoption("--model", dest="conformance_model", metavar="M", default=None,
                    help="test this model instead of each selected provider's own")
    group.addoption("--max-tokens", dest="conformance_max_tokens", metavar="N", type=int,
                    default=None, help="run budget: start no check once N tokens are spent "
                    "(the rest skip; with -n each worker gets its share)")
    group.addoption("--repeat", dest="conformance_repeat", metavar="K", default=None,
                    help="run each check K times (1-20; requests are not shared across "
                    "repeats): a cell shows passes/K and is flaky when the runs disagree")
    group.addoption("--lang", "--conformance-lang", dest="conformance_lang", metavar="LANG",
                    default=None, help="language of the conformance summary: en or zh-CN "
                    "(default: conformance_lang ini, $CONFORMANCE_LANG, the locale, en)")
    parser.addini("conformance_lang", "language of the conformance summary (en, zh-CN)",
                  default="")
    # Set by `conformance run` only: the run id it named the report dir after, and that the
    # run writes its own baseline.json (--baseline), so the one in the dir is not stale.
    group.addoption("--conformance-run-id", dest="conformance_run_id", default=None,
                    help=argparse.SUPPRESS)
    group.addoption("--conformance-keep-baseline", dest="conformance_keep_baseline",
                    action="store_true", default=False, help=argparse.SUPPRESS)


def pytest_configure(config: pytest.Config) -> None:
    register_markers(config)
    # config.args holds only the positional arguments (the raw args of
    # pytest_load_initial_conftests also hold option values such as `--report-dir conformance`),
    # and the session collects from it after this hook.
    if not config.option.pyargs:
        config.args[:] = installed_suite_args(config.args, config.invocation_params.dir)
    if not targets_suite(config):
        return
    session = ConformanceSession(config)
    config.pluginmanager.register(session, "conformance-session")
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(XdistHooks(session), "conformance-xdist")


# optionalhook: xdist's hook, unknown when xdist is not loaded (`-p no:xdist`).
@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return auto_workers(config)
