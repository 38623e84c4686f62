"""The ``conformance`` command (CONTRACT.md, "Command line").

``run`` is a thin front over pytest; ``serve-reference`` serves the reference provider;
``report`` re-renders a run directory; ``checks`` lists the catalogue.  Exit codes: 0 the run
completed, 1 ``--strict`` and a ``fail``, 2 bad configuration or arguments (one line, no
traceback), 3 an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import __version__
from conformance.errors import ConfigError

EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG, EXIT_INTERNAL = 0, 1, 2, 3


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _die(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"conformance: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    import pytest

    from conformance.config import load_providers
    from conformance.pytest_support import DEFAULT_PROVIDERS, packaged_providers
    from conformance.run import new_run_id

    providers_path = args.providers
    if providers_path is None:
        providers_path = DEFAULT_PROVIDERS if Path(DEFAULT_PROVIDERS).exists() else str(
            packaged_providers())
    try:
        config = load_providers(providers_path, os.environ)
        if args.provider:
            config.select(args.provider)
    except ConfigError as exc:
        return _die(exc.one_line())
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / new_run_id()
    argv = [str(_package_dir()), "--providers", str(providers_path), "--report-dir",
            str(report_dir),
            # This process imported the plugin (and httpx's anyio) before pytest could
            # rewrite their asserts; they have none worth rewriting.
            "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    for name in args.provider or []:
        argv += ["--provider", name]
    argv += pytest_args
    code = pytest.main(argv)
    results = report_dir / "results.json"
    if not results.exists():
        print("report: no check ran, nothing written")
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        if args.strict and results.exists():
            data = json.loads(results.read_text(encoding="utf-8"))
            if any(r["outcome"] == "fail" for r in data["results"]):
                return EXIT_FINDINGS
        return EXIT_OK
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _die("no checks selected (check -k/-m/--provider)")
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_CONFIG
    return EXIT_INTERNAL


def cmd_serve_reference(args: argparse.Namespace) -> int:
    from conformance.reference.server import serve

    if args.api_key is None:
        print("reference provider: no --api-key given, authentication is disabled",
              file=sys.stderr)
    try:
        serve(args.host, args.port, args.api_key)
    except OSError as exc:
        return _die(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from conformance.report import write_reports
    from conformance.report.terminal import render_summary
    from conformance.results import load_run

    directory = Path(args.dir)
    if not directory.is_dir():
        return _die(f"{directory}: not a directory")
    try:
        data = load_run(directory)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return _die(str(exc).strip("'\""))
    paths = write_reports(directory, data)
    print(render_summary(data, width=100), end="")
    print("wrote " + ", ".join(str(p) for p in paths))
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    from conformance.checks.registry import all_checks

    checks = all_checks()
    if args.markdown:
        print("| check | family | what it proves |")
        print("|---|---|---|")
        for c in checks:
            print(f"| `{c.id}` | {c.behavior} | {c.proves} |")
    else:
        width = max(len(c.id) for c in checks)
        for c in checks:
            print(f"{c.id:<{width}}  {c.title}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description="Conformance suite for OpenAI-compatible chat APIs.",
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run the checks (extra arguments go to pytest)",
        description="Run the suite through pytest; unknown arguments (-k, -m, -n auto, -x, "
        "--alluredir ...) are passed to pytest.",
    )
    run.add_argument("--providers", metavar="PATH",
                     help="providers file (default: ./providers.yaml, else the packaged one)")
    run.add_argument("--provider", metavar="NAME", action="append",
                     help="run only this provider (repeatable)")
    run.add_argument("--report-dir", metavar="DIR", help="default: reports/<run-id>")
    run.add_argument("--strict", action="store_true", help="exit 1 when any check fails")

    serve = sub.add_parser("serve-reference", help="serve the reference provider")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8800)
    serve.add_argument("--api-key", default=None, help="require this bearer key")

    report = sub.add_parser("report", help="(re)render matrix.html etc. from a run directory")
    report.add_argument("dir", metavar="DIR")

    checks = sub.add_parser("checks", help="list the checks")
    checks.add_argument("--markdown", action="store_true", help="as a Markdown table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        if args.command == "run":
            return cmd_run(args, rest)
        if args.command == "serve-reference":
            return cmd_serve_reference(args)
        if args.command == "report":
            return cmd_report(args)
        return cmd_checks(args)
    except KeyboardInterrupt:
        return _die("interrupted", EXIT_INTERNAL)
