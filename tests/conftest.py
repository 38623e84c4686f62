"""Shared fixtures: a real reference server on 127.0.0.1 and helpers to run the suite."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

import conformance
from conformance.checks.fidelity import NO_UPSTREAM
from conformance.config import ProviderConfig
from conformance.reference.server import ReferenceServer

PACKAGE_DIR = Path(conformance.__file__).resolve().parent
REPO = PACKAGE_DIR.parent
#: The configured key of the self-test providers; it must never reach an artefact.
#: The tests read English output: whatever the developer's locale or CONFORMANCE_LANG, the suite
#: and its subprocesses speak English unless a test asks for another language.
os.environ["CONFORMANCE_LANG"] = "en"

#: Random per test run, the same in every xdist worker of it: a run one worker made against its
#: reference server (tests/test_report_cli.py's shared_runs) is replayed by another (curl).
SELFTEST_KEY = "sk-selftest-" + (
    hashlib.sha256(os.environ["PYTEST_XDIST_TESTRUNUID"].encode()).hexdigest()[:32]
    if os.environ.get("PYTEST_XDIST_TESTRUNUID") else secrets.token_hex(16))
KEY_ENV = "CONFORMANCE_SELFTEST_KEY"


@pytest.fixture(scope="session")
def reference_server() -> Iterator[ReferenceServer]:
    with ReferenceServer(api_key=SELFTEST_KEY) as server:
        yield server


def provider_config(base_url: str, api_key: str, **overrides: Any) -> ProviderConfig:
    """A ProviderConfig built directly (transport tests), with the key as its only secret."""
    values: dict[str, Any] = {
        "name": "t", "base_url": base_url, "api_key": api_key, "model": "m",
        "models": MappingProxyType({}), "headers": MappingProxyType({}), "secrets": (api_key,),
    }
    values.update(overrides)
    return ProviderConfig(**values)


def write_providers(path: Path, providers: Sequence[Mapping[str, Any]],
                    defaults: Mapping[str, Any] | None = None) -> Path:
    document: dict[str, Any] = {"providers": [dict(p) for p in providers]}
    if defaults:
        document["defaults"] = dict(defaults)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def external(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """A provider entry pointing at a URL with the self-test key from the environment; a
    reference URL also gets the reference's own red image as its ``vision_url``."""
    entry = {"name": name, "base_url": url, "api_key": "${" + KEY_ENV + "}", "model": "ref-1"}
    if url.startswith("http://127.0.0.1:") and "/v1" in url:
        entry["vision_url"] = url.split("/v1")[0].split("/variant/")[0] + "/assets/color/red.png"
    return {**entry, **extra}


def not_for_this_provider(verdict: tuple[str, str]) -> bool:
    """A family that does not apply to the provider: fidelity without ``upstream:`` (judged
    only behind a relay), billing for a model without a public tokenizer (e.g. ref-1)."""
    return verdict == ("skip", NO_UPSTREAM) or (
        verdict[0] == "skip" and verdict[1].startswith("no public tokenizer for "))


def judged(verdicts: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``verdicts`` (check → (outcome, message)) without the families that do not apply to
    the provider (:func:`not_for_this_provider`)."""
    return {c: v for c, v in verdicts.items() if not not_for_this_provider(v)}


def expectation_mismatches(out: RunOutput,
                           expected: Mapping[str, Mapping[str, Mapping[str, str]]]) -> list[str]:
    """How a real server's verdicts differ from its committed expectations (``peers/*.yaml``:
    provider → check → outcome and a message fragment; a check not listed must pass, unless
    its family does not apply to the provider)."""
    mismatches = []
    for (provider, check_id), (outcome, message) in sorted(out.outcomes().items()):
        entry = expected.get(provider, {}).get(check_id)
        if entry is None and not_for_this_provider((outcome, message)):
            continue
        want = entry["outcome"] if entry else "pass"
        if outcome != want:
            mismatches.append(f"{provider} {check_id}: expected {want}, got {outcome}: {message}")
        elif entry and entry["message"] not in message:
            mismatches.append(f"{provider} {check_id}: message changed: {message!r} does not "
                              f"contain {entry['message']!r}")
    return mismatches


@dataclass
class RunOutput:
    returncode: int
    stdout: str
    stderr: str
    report_dir: Path

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        """results.json, read once (the run of every fault writes ~30,000 results: each of
        its ~200 tests reading it again cost ~2 s)."""
        loaded: dict[str, Any] = json.loads(
            (self.report_dir / "results.json").read_text(encoding="utf-8"))
        return loaded

    @functools.cached_property
    def _outcomes(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {(r["provider"], r["check"]): (r["outcome"], r["message"])
                for r in self.data["results"]}

    def outcomes(self) -> dict[tuple[str, str], tuple[str, str]]:
        """(provider, check) → (outcome, message)."""
        return dict(self._outcomes)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a suite subprocess: the self-test key set, English output, xdist's
    and the test run's pytest settings removed."""
    inherited = {name: value for name, value in os.environ.items()
                 if name not in ("CONFORMANCE_LANG", "LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    # English unless a test asks for another language (the tests read the English output).
    full_env = {**inherited, KEY_ENV: SELFTEST_KEY, "CONFORMANCE_LANG": "en", **(env or {})}
    full_env.pop("PYTEST_XDIST_WORKER", None)
    full_env.pop("PYTEST_ADDOPTS", None)
    return full_env


def run_cli(args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args], cwd=cwd, env=child_env(env),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


#: Plugins of the self-tests' own dependencies, kept out of the pytest runs they start.
OTHER_PLUGINS_OFF = ("-p", "no:hypothesispytest", "-p", "no:anyio")


def run_pytest(args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Plain ``python -m pytest ARGS`` in a subprocess, as a user would run it (less the
    test environment's hypothesis and anyio plugins, which cost ~1 s of CPU per start and have
    nothing to do with the suite)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", *OTHER_PLUGINS_OFF, *args], cwd=cwd,
        env=child_env(env),
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def run_suite(providers_file: Path, report_dir: Path, *extra: str,
              env: Mapping[str, str] | None = None) -> RunOutput:
    """``conformance run`` in a subprocess, as a user would run it."""
    proc = run_cli(
        ["run", "--providers", str(providers_file), "--report-dir", str(report_dir),
         "-p", "no:cacheprovider", "-q", *extra],
        cwd=providers_file.parent, env=env,
    )
    return RunOutput(proc.returncode, proc.stdout, proc.stderr, report_dir)


#: The modules whose tests take longest (each runs the suite several times; see `make test`'s
#: `--durations`), heaviest first. Collected first, so that under `-n 2 --dist loadfile` they
#: start at once and the short modules fill the gaps, instead of one of them running alone at
#: the end.
HEAVY_FIRST = ("test_plugin", "test_verdicts", "test_report_cli", "test_faults",
               "test_hostile_limits", "test_hostile_reports", "test_one_line_run",
               "test_hostile_secrets", "test_cli", "test_fidelity")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable
