"""The peers' command lines (``scripts/local-peer``, ``scripts/litellm-peer``): ``run`` hands
everything after it to ``conformance run``, options included and in order, without a ``--``
separator (which pytest would take as the end of its options)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from conformance import litellm_peer, localpeer

PARSERS: dict[str, Callable[[], argparse.ArgumentParser]] = {
    "local-peer": localpeer.build_parser, "litellm-peer": litellm_peer.build_parser}


@pytest.mark.parametrize("peer", sorted(PARSERS))
@pytest.mark.parametrize(("argv", "passed"), [
    (["run"], []),
    (["run", "--report-dir", "out", "-q"], ["--report-dir", "out", "-q"]),
    (["run", "-k", "stop", "--report-dir", "out"], ["-k", "stop", "--report-dir", "out"]),
    (["run", "tests", "-x", "--lang", "zh-CN"], ["tests", "-x", "--lang", "zh-CN"]),
    (["run", "--", "--report-dir", "out"], ["--report-dir", "out"]),
    (["run", "--", "-k", "--", "x"], ["-k", "--", "x"]),
    (["--venv", "run", "run", "-q"], ["-q"]),
    (["--venv=/v", "run", "--strict"], ["--strict"]),
])
def test_run_passes_the_rest_of_the_line_as_given(peer: str, argv: list[str],
                                                  passed: list[str]) -> None:
    args = localpeer.parse_peer_args(PARSERS[peer](), argv)
    assert args.command == "run" and args.args == passed


@pytest.mark.parametrize("peer", sorted(PARSERS))
def test_venv_is_read_before_run(peer: str) -> None:
    args = localpeer.parse_peer_args(PARSERS[peer](), ["--venv", "/v", "run", "-q"])
    assert args.venv == Path("/v") and args.args == ["-q"]


@pytest.mark.parametrize("peer", sorted(PARSERS))
def test_other_commands_refuse_unknown_options(peer: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        localpeer.parse_peer_args(PARSERS[peer](), ["stop", "--report-dir", "x"])
    assert info.value.code == 2
    assert "unrecognized arguments: --report-dir x" in capsys.readouterr().err
