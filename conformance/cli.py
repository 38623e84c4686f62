"""The ``conformance`` command (docs/CONTRACT.md, "Command line").

``run`` is a thin front over pytest; ``serve-reference`` serves the reference provider;
``report`` re-renders a run directory; ``diff`` compares two runs; ``merge`` combines runs (one
CI job per provider) into one; ``checks`` lists the catalogue.  Exit codes: 0 the run
completed, 1 ``--strict`` and a ``fail``, or ``--baseline`` and a regression (a check that
passed in the baseline and does not now), 2 bad configuration or arguments (one line, no
traceback), 3 an internal error, 130 interrupted with Ctrl-C (partial results are kept).
When the reader of stdout goes away early (``conformance checks | head``), the rest of the
output is discarded and the command ends as usual, without a BrokenPipeError.
"""

from __future__ import annotations

import argparse
import contextlib
import gettext as gettext_module
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TextIO
from urllib.parse import urlsplit

from conformance import __version__, gcpolicy
from conformance.errors import ConfigError
from conformance.i18n import N_, LanguageError, _, activate, check_text, resolve_lang
from conformance.i18n import active as active_language

if TYPE_CHECKING:
    from conformance.report.diff import RunDiff, Snapshot
    from conformance.results import RunData

EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG, EXIT_INTERNAL = 0, 1, 2, 3
#: Ctrl-C: the shell's convention for SIGINT (128 + 2), an extension of the contract's codes.
EXIT_INTERRUPTED = 130


def _package_dir() -> Path:
    return Path(__file__).resolve().parent


def _die(message: str, code: int = EXIT_CONFIG) -> int:
    print(f"conformance: {message}", file=sys.stderr)
    return code


def cmd_run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    import pytest

    from conformance.config import load_providers
    from conformance.pytest_args import plugin_args
    from conformance.pytest_support import DEFAULT_PROVIDERS, RunWatch, packaged_providers
    from conformance.report.diff import save_baseline
    from conformance.run import new_run_id

    if args.repeat is not None:
        from conformance.stability import parse_repeat

        try:
            args.repeat = parse_repeat(args.repeat)
        except ValueError as exc:
            return _die(str(exc))
    providers_path = args.providers
    if args.base_url is not None:
        try:
            providers_path = str(_one_provider_file(args))
        except _BadInput as exc:
            return _die(str(exc))
    elif args.api_key_env or args.name or args.vision_model:
        return _die(_("--api-key-env, --name and --vision-model go with --base-url"))
    if providers_path is None:
        providers_path = DEFAULT_PROVIDERS if Path(DEFAULT_PROVIDERS).exists() else str(
            packaged_providers())
    try:
        config = load_providers(providers_path, os.environ)
        if args.provider:
            config.select(args.provider)
    except ConfigError as exc:
        return _die(exc.one_line())
    baseline: Snapshot | None = None
    if args.baseline:
        try:
            baseline = _load_baseline(args.baseline)
        except _BadInput as exc:
            return _die(str(exc))
        if args.provider:  # the other providers were left out on purpose, not lost
            baseline = baseline.only(args.provider)
    run_id = new_run_id()
    report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_id
    argv = [str(_package_dir()), "--providers", str(providers_path), "--report-dir",
            str(report_dir), "--conformance-run-id", run_id,
            # Only the plugins the run needs, no assertion rewriting (conformance/pytest_args.py).
            *plugin_args(pytest_args),
            # The language chosen here (--lang, CONFORMANCE_LANG, the locale) for the summary.
            "--conformance-lang", args.lang]
    if baseline is not None:
        # Stored before the run, so that an interrupted run re-renders against it too.
        save_baseline(report_dir, baseline)
        argv.append("--conformance-keep-baseline")
    if not any(arg == "--rootdir" or arg.startswith("--rootdir=") for arg in pytest_args):
        # As for `pytest conformance` run here: pytest's cache (--lf, --ff) and node ids are
        # the working directory's, not derived from where the package is installed.
        argv += ["--rootdir", os.getcwd()]
    for name in args.provider or []:
        argv += ["--provider", name]
    if args.max_tokens is not None:
        argv += ["--max-tokens", str(args.max_tokens)]
    if args.repeat is not None:
        argv += ["--repeat", str(args.repeat)]
    if args.model is not None and args.base_url is None:
        argv += ["--model", args.model]
    argv += pytest_args
    watch = RunWatch()
    results = report_dir / "results.json"
    earlier = _stamp(results)  # an earlier run's (--collect-only leaves it in place)
    with _noting_sigint() as sigint:
        code = pytest.main(argv, plugins=[watch])
    if sigint.seen:
        return _die(watch.interrupted_line(), EXIT_INTERRUPTED)
    written = results.exists() and _stamp(results) != earlier
    if not written:
        print(_("report: no check ran, nothing written"))
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        exit_code = EXIT_OK
        if args.strict and written:
            data = json.loads(results.read_text(encoding="utf-8"))
            if any(r["outcome"] == "fail" for r in data["results"]):
                exit_code = EXIT_FINDINGS
        if written:
            if baseline is not None or args.history:
                if _compare(report_dir, baseline, _history(args.history),
                            flaky_is_regression=args.flaky_is_regression):
                    exit_code = EXIT_FINDINGS
            elif _in_github_actions():  # the run read back only to annotate it
                _annotate(None, _load_run_dir(str(report_dir)))
        return exit_code
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        return _die(_("no checks selected (check -k/-m/--provider)"))
    if code == pytest.ExitCode.USAGE_ERROR:
        return EXIT_CONFIG
    return EXIT_INTERNAL


class _SigintSeen:
    seen = False


@contextlib.contextmanager
def _noting_sigint() -> Iterator[_SigintSeen]:
    """Note whether Ctrl-C (SIGINT) arrived; it still raises KeyboardInterrupt, which pytest
    turns into its 'interrupted' exit (as do other stops, e.g. xdist's after ``-x``)."""
    state = _SigintSeen()

    def note(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True  # pytest shows where the run was, not this handler
        state.seen = True
        signal.default_int_handler(signum, frame)

    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # ignored (nohup, a background job)
        yield state
        return
    signal.signal(signal.SIGINT, note)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_serve_reference(args: argparse.Namespace) -> int:
    from conformance.reference.server import serve
    from conformance.reference.vision import is_loopback

    if not is_loopback(args.host) and not args.api_key:
        return _die(_("serve-reference: --host {host} is reachable from other machines; give it "
                      "an --api-key (its records and controls would be open to anyone)").format(
                          host=args.host))
    if args.api_key is None:
        print(_("reference provider: no --api-key given, authentication is disabled"),
              file=sys.stderr)
    try:
        serve(args.host, args.port, args.api_key)
    except OSError as exc:
        return _die(_("cannot listen on {address}: {error}").format(
            address=f"{args.host}:{args.port}", error=exc.strerror or exc))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


class _BadInput(Exception):
    """A run directory or baseline that cannot be read (exit 2, one line)."""


def _load_run_dir(path: str) -> RunData:
    from conformance.results import load_run

    directory = Path(path)
    if not directory.is_dir():
        raise _BadInput(_("{path}: not a directory").format(path=directory))
    try:
        return load_run(directory)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise _BadInput(str(exc).strip("'\"")) from None


def _load_baseline(path: str) -> Snapshot:
    """A baseline: a run directory, or the baseline.json a ``--baseline`` run stored."""
    from conformance.report.diff import load_snapshot

    target = Path(path)
    if not target.exists():
        raise _BadInput(_("{path}: no such baseline directory").format(path=target))
    try:
        return load_snapshot(target)
    except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:
        raise _BadInput(f"baseline {str(exc).strip(chr(39) + chr(34))}") from None


def _history(paths: list[str] | None) -> list[RunData]:
    """The earlier runs of ``--history``; each directory that cannot be read is said in one
    line on stderr and left out (the reports still render)."""
    from conformance.report.history import load_history

    runs, problems = load_history(paths or [])
    for problem in problems:
        print(f"conformance: {problem}", file=sys.stderr)
    return runs


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells one version of a file from another (None when there is none)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def _in_github_actions() -> bool:
    from conformance.report.ci import in_github_actions

    return in_github_actions(os.environ)


def _annotate(diff: RunDiff | None, data: RunData | None) -> None:
    """Inside GitHub Actions: one ``::error`` line per regression, lost provider and security
    failure (:mod:`conformance.report.ci`)."""
    from conformance.report.ci import annotation_lines, in_github_actions

    if in_github_actions(os.environ):
        for line in annotation_lines(diff, data):
            print(line)


def _compare(report_dir: Path, baseline: Snapshot | None,
             history: list[RunData] | None = None, *, flaky_is_regression: bool = False
             ) -> bool:
    """Re-render ``report_dir`` against ``baseline`` (and ``history``), print the diff and
    annotate it in GitHub Actions; True on a regression (or a provider of the baseline lost;
    a flaky pass of a --repeat run is a regression only with ``flaky_is_regression``)."""
    from conformance.report import write_reports
    from conformance.report.diff import Snapshot, diff_runs, render_text
    from conformance.results import load_run

    data = load_run(report_dir)
    write_reports(report_dir, data, baseline, history or [],
                  flaky_is_regression=flaky_is_regression)
    if baseline is None:
        _annotate(None, data)
        return False
    diff = diff_runs(baseline, Snapshot.from_run(data, source=str(report_dir)),
                     flaky_is_regression=flaky_is_regression)
    print(_("conformance: compared with baseline {id}").format(id=baseline.id))
    print(render_text(diff), end="")
    if diff.regressions:
        print(_("conformance: {n} regression(s) since the baseline").format(
            n=len(diff.regressions)))
    if diff.lost_providers:
        print(_("conformance: provider(s) missing from this run: {names}").format(
            names=", ".join(diff.lost_providers)))
    _annotate(diff, data)
    return diff.regressed


def cmd_report(args: argparse.Namespace) -> int:
    from conformance.report import write_reports
    from conformance.report.diff import stored_baseline
    from conformance.report.terminal import render_summary

    try:
        data = _load_run_dir(args.dir)
        baseline = (_load_baseline(args.baseline) if args.baseline
                    else stored_baseline(Path(args.dir)))
    except (_BadInput, ValueError) as exc:
        return _die(str(exc))
    paths = write_reports(Path(args.dir), data, baseline, _history(args.history),
                          flaky_is_regression=args.flaky_is_regression)
    print(render_summary(data, width=100), end="")
    print(_("wrote {paths}").format(paths=", ".join(str(p) for p in paths)))
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    from conformance.report.diff import diff_runs, render_markdown, render_text

    try:
        old, new = _load_baseline(args.old), _load_baseline(args.new)
    except _BadInput as exc:
        return _die(str(exc))
    diff = diff_runs(old, new, flaky_is_regression=args.flaky_is_regression)
    if args.format == "markdown":
        print(render_markdown(diff, heading="##"), end="")
    elif args.format == "json":
        print(json.dumps(diff.to_json(), ensure_ascii=False, indent=1))
    else:
        print(render_text(diff), end="")
    newer: RunData | None = None
    if Path(args.new).is_dir():  # its security failures are annotated too
        with contextlib.suppress(_BadInput):
            newer = _load_run_dir(args.new)
    _annotate(diff, newer)
    return EXIT_FINDINGS if diff.regressed else EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from conformance.report import write_reports
    from conformance.report.merge import merge_runs
    from conformance.report.terminal import render_summary
    from conformance.results import ResultLog
    from conformance.run import new_run_id

    out = Path(args.out)
    try:
        inputs = [_load_run_dir(d) for d in args.inputs]
        baseline = _load_baseline(args.baseline) if args.baseline else None
    except _BadInput as exc:
        return _die(str(exc))
    if out.resolve() in {Path(d).resolve() for d in args.inputs}:
        return _die(_("{path}: the output directory must not be one of the inputs").format(
            path=out))
    merged, notes = merge_runs(inputs, args.run_id or new_run_id(), args.inputs)
    for note in notes:
        print(_("note: {note}").format(note=note), file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    # A reused output dir: nothing of an earlier merge may leak into this one.
    for stale in ("results.jsonl", "baseline.json"):
        (out / stale).unlink(missing_ok=True)
    log = ResultLog(out / "results.jsonl")
    for result in merged.results:
        log.append(result)
    history = _history(args.history)
    paths = write_reports(out, merged, baseline, history,
                          flaky_is_regression=args.flaky_is_regression)
    print(render_summary(merged, width=100), end="")
    print(_("wrote {paths}").format(paths=", ".join(str(p) for p in paths)))
    return EXIT_FINDINGS if _compare(
        out, baseline, history, flaky_is_regression=args.flaky_is_regression) else EXIT_OK


def starter_file(lang: str) -> Path:
    """The commented starter providers.yaml in ``lang``: the packaged providers.yaml (English)
    or its translation under ``locale/<ll_CC>/`` (the same providers, comments translated)."""
    from conformance.i18n import CATALOGUES, LOCALE_DIR
    from conformance.pytest_support import packaged_providers

    code = CATALOGUES.get(lang)
    translated = LOCALE_DIR / code / "providers.yaml" if code else None
    return translated if translated is not None and translated.is_file() else \
        packaged_providers()


def cmd_init(args: argparse.Namespace) -> int:
    """Write the commented starter providers.yaml, in the chosen language, to ``args.path``
    (never over a file)."""
    target = Path(args.path)
    if target.exists():
        return _die(_("{path}: already exists (not overwritten; remove it or name another "
                      "path)").format(path=target))
    try:
        with target.open("x", encoding="utf-8") as out:
            out.write(starter_file(active_language()).read_text(encoding="utf-8"))
    except OSError as exc:
        return _die(_("{path}: cannot write: {error}").format(path=target,
                                                             error=exc.strerror or exc))
    print(_("wrote {path}: set the keys it names (e.g. export APIYI_API_KEY=...), then run "
            "`conformance run`").format(path=target))
    return EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    from conformance.checks.registry import all_checks

    checks = all_checks()
    if args.markdown:
        print(_("| check | family | severity | what it proves |"))
        print("|---|---|---|---|")
        for c in checks:
            print(f"| `{c.id}` | {c.behavior} | {c.severity} | {check_text(c.id, c.proves)} |")
    else:
        width = max(len(c.id) for c in checks)
        for c in checks:
            print(f"{c.id:<{width}}  {check_text(c.id, c.title)}")
    return EXIT_OK


def _one_provider_file(args: argparse.Namespace) -> Path:
    """A providers file for ``run --base-url``: one provider whose key is ``${VAR}`` (the key
    itself is never written), validated like any other file."""
    import tempfile

    import yaml

    if not args.model:
        raise _BadInput(_("--base-url needs --model (the model your key may use)"))
    if args.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.api_key_env):
        # Never echoed: users do paste the key itself here.
        raise _BadInput(_("--api-key-env takes the name of an environment variable (e.g. "
                          "MY_RELAY_KEY), not the key itself"))
    if args.api_key_env and not os.environ.get(args.api_key_env):
        raise _BadInput(_("--api-key-env: {variable} is not set (export it first)").format(
            variable=args.api_key_env))
    host = urlsplit(args.base_url).hostname or "provider"
    name = args.name or re.sub(r"[^a-z0-9._-]+", "-", host.lower()).strip("-") or "provider"
    entry: dict[str, object] = {"name": name, "base_url": args.base_url, "model": args.model}
    if args.api_key_env:
        entry["api_key"] = "${" + args.api_key_env + "}"
    if args.vision_model:
        entry["models"] = {"vision": args.vision_model}
    folder = Path(tempfile.mkdtemp(prefix="conformance-"))
    path = folder / "providers.yaml"
    path.write_text("# written by conformance run --base-url\n"
                    + yaml.safe_dump({"providers": [entry]}, sort_keys=False), encoding="utf-8")
    return path


LANG_HELP = N_("language of the output: en or zh-CN (default: $CONFORMANCE_LANG, else the "
               "locale's, e.g. LANG=zh_CN.UTF-8, else en)")


def _positive(text: str) -> int:
    """An argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


HISTORY_HELP = N_("earlier runs' report dirs: add each provider's trend (score and median "
                  "latency over the runs) to matrix.html and summary.md")


def _flaky_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--flaky-is-regression", action="store_true",
                        help=_("compared with a baseline, a check that passed there and is "
                        "flaky now (--repeat: some runs failed) is a regression (default: a "
                        "change)"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conformance",
        description=_("Conformance suite for OpenAI-compatible chat APIs."),
    )
    parser.add_argument("--version", action="version", version=f"conformance {__version__}")
    parser.add_argument("--lang", metavar="LANG", default=None, help=_(LANG_HELP))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help=_("run the checks (extra arguments go to pytest)"),
        description=_("Run the suite through pytest; unknown arguments (-k, -m, -n auto, -x, "
        "--alluredir ...) are passed to pytest."),
    )
    run.add_argument("--providers", metavar="PATH",
                     help=_("providers file (default: ./providers.yaml, else the packaged one)"))
    run.add_argument("--provider", metavar="NAME", action="append",
                     help=_("run only this provider (repeatable)"))
    run.add_argument("--report-dir", metavar="DIR", help=_("default: reports/<run-id>"))
    run.add_argument("--strict", action="store_true", help=_("exit 1 when any check fails"))
    one = run.add_argument_group(
        _("one provider without a providers file"),
        _("conformance run --base-url URL --api-key-env VAR --model M: the key is read from "
          "the environment variable VAR, never given on the command line"))
    one.add_argument("--base-url", metavar="URL", help=_("the API root, e.g. https://host/v1"))
    one.add_argument("--api-key-env", metavar="VAR",
                     help=_("the environment variable holding the key (omit for a keyless server)"))
    one.add_argument("--model", metavar="M", help=_("the model to test; with a providers file "
                     "it overrides every selected provider's model"))
    one.add_argument("--name", metavar="N", help=_("the provider's name in reports (default: "
                     "the URL's host)"))
    one.add_argument("--vision-model", metavar="M2", help=_("the model for the vision checks"))
    run.add_argument("--max-tokens", metavar="N", type=_positive,
                     help=_("run budget: once N tokens (as the providers report them) are spent, "
                     "start no more checks; finished results are kept, the rest skip"))
    run.add_argument("--baseline", metavar="DIR",
                     help=_("a previous run's report dir: mark changes in matrix.html and "
                     "summary.md, print them, exit 1 when a check that passed there does not "
                     "now"))
    run.add_argument("--repeat", metavar="K",
                     help=_("run each check K times (1-20; requests are not shared across "
                     "repeats): cells show passes/K, runs that disagree are flaky; the cost "
                     "(K × one run) is printed first"))
    _flaky_option(run)
    run.add_argument("--history", metavar="DIR", nargs="+", help=_(HISTORY_HELP))

    serve = sub.add_parser(
        "serve-reference", help=_("serve the reference provider"),
        description=_("Serve the reference provider: the OpenAI API on http://HOST:PORT/v1 "
        "(faults under /variant/<spec>/v1), recording what it receives and answers for a relay "
        "put in front of it (GET /__conformance/records, POST /__conformance/arm, both behind "
        "the key)."),
        epilog=_("On a loopback host (the default) it downloads the image URLs of vision "
        "requests. On any other host (e.g. 0.0.0.0, for a relay on another machine) it needs "
        "--api-key, and it never fetches anything but its own /assets/ (read locally): other "
        "image URLs are refused with 400 invalid_image_url."))
    serve.add_argument("--host", default="127.0.0.1",
                       help=_("address to listen on (default 127.0.0.1; any other needs "
                       "--api-key)"))
    serve.add_argument("--port", type=int, default=8800)
    serve.add_argument("--api-key", default=None,
                       help=_("require this key (Bearer, or x-api-key on /v1/messages)"))

    report = sub.add_parser("report", help=_("(re)render matrix.html etc. from a run directory"))
    report.add_argument("dir", metavar="DIR")
    report.add_argument("--baseline", metavar="DIR",
                        help=_("mark changes since this run (default: the baseline.json a "
                        "--baseline run stored in DIR)"))
    _flaky_option(report)
    report.add_argument("--history", metavar="DIR", nargs="+", help=_(HISTORY_HELP))

    diff = sub.add_parser(
        "diff", help=_("regressions, fixes, new/removed checks, new/missing providers between "
        "two runs"),
        description=_("Compare two run directories (or baseline.json files). Exits 1 when a "
        "check that passed in OLD does not pass in NEW (also when its provider is missing "
        "from NEW; a flaky pass of a --repeat run still passes unless --flaky-is-regression) "
        "or a provider judged in OLD is missing from NEW, else 0. In GitHub Actions "
        "(GITHUB_ACTIONS=true) each regression, missing provider and security failure is "
        "also printed as an ::error annotation."))
    diff.add_argument("old", metavar="OLD_DIR")
    diff.add_argument("new", metavar="NEW_DIR")
    diff.add_argument("--format", choices=("text", "markdown", "json"), default="text",
                      help=_("output format (markdown suits $GITHUB_STEP_SUMMARY)"))
    _flaky_option(diff)

    merge = sub.add_parser(
        "merge", help=_("combine several runs (e.g. one CI job per provider) into one run dir"),
        description=_("Write results.json, junit.xml, matrix.html and summary.md for the union "
        "of the input runs into OUT_DIR. A result present in several inputs is taken from the "
        "last one."))
    merge.add_argument("out", metavar="OUT_DIR")
    merge.add_argument("inputs", metavar="IN_DIR", nargs="+")
    merge.add_argument("--baseline", metavar="DIR",
                       help=_("mark and print changes since this run; exit 1 on a regression"))
    merge.add_argument("--run-id", metavar="ID", help=_("id of the merged run (default: new)"))
    _flaky_option(merge)
    merge.add_argument("--history", metavar="DIR", nargs="+", help=_(HISTORY_HELP))

    checks = sub.add_parser("checks", help=_("list the checks"))
    checks.add_argument("--markdown", action="store_true", help=_("as a Markdown table"))

    init = sub.add_parser("init", help=_("write a commented starter providers.yaml (the five "
                          "relays and the reference provider)"))
    init.add_argument("path", nargs="?", default="providers.yaml", metavar="PATH",
                      help=_("where to write it (default: ./providers.yaml; never overwritten)"))
    for command in sub.choices.values():
        # On every command too (`conformance checks --lang zh-CN`); given there, it wins.
        command.add_argument("--lang", metavar="LANG", default=argparse.SUPPRESS,
                             help=_(LANG_HELP))
    return parser


def _stdout_fd_to_devnull(fd: int) -> None:
    """Point ``fd`` at /dev/null, so the interpreter's final flush of stdout cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class QuietStdout:
    """``sys.stdout`` for the command: once its reader has gone (a closed pipe, as in
    ``conformance checks | head``), everything further is discarded instead of raising
    ``BrokenPipeError``, so the command still does its work (a run still writes its report)
    and exits with its own status (Python docs, "Note on SIGPIPE")."""

    def __init__(self, stream: TextIO) -> None:
        self._stream: TextIO = stream
        self.fd: int | None
        try:
            self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self.fd = None
        self.reader_gone = False

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()

    def _discard(self) -> None:
        self.reader_gone = True
        self.redirect_fd()
        self._stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115

    def redirect_fd(self) -> None:
        """Point the real stdout descriptor at /dev/null (again: pytest's capture restores
        the descriptor it saved when it ends)."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                _stdout_fd_to_devnull(self.fd)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    original = sys.stdout
    quiet = QuietStdout(original)
    sys.stdout = quiet
    spoken = active_language()  # restored: an in-process caller keeps its own language
    try:
        code = _main(argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Output written past the guard (a stream captured before it was installed).
        quiet.reader_gone = True
        return EXIT_OK
    finally:
        activate(spoken)
        sys.stdout = original
        if quiet.reader_gone:
            quiet.redirect_fd()


def console() -> NoReturn:
    """The ``conformance`` command (and ``python -m conformance``): :func:`main`, then the
    process ends without finalising the interpreter.  Tearing down a run's objects one by one
    cost 0.1-0.4 s at every exit (``make bench``); the run has closed its files by then, and
    the standard streams are flushed here.  In-process callers use :func:`main`."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def _early_lang(argv: Sequence[str]) -> str:
    """The language the help texts are written in, read before parsing (``--lang X`` or
    ``--lang=X`` anywhere, else the environment); an unknown one is reported after parsing."""
    chosen: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            chosen = argv[i + 1]
        elif arg.startswith("--lang="):
            chosen = arg.split("=", 1)[1]
    try:
        return resolve_lang(chosen)
    except LanguageError:
        return "en"


#: argparse's own words (it looks them up with the standard library's gettext when it writes
#: help and usage): marked here for the catalogue, looked up in the active language.
ARGPARSE_WORDS = (N_("usage: "), N_("options"), N_("positional arguments"),
                  N_("show this help message and exit"), N_("%(prog)s: error: %(message)s\n"),
                  N_("the following arguments are required: %s"))


def _argparse_speaks(lang: str) -> None:
    """argparse's headings and ``-h`` help in ``lang`` (its module-level ``_`` is the
    standard library's ``gettext``; English keeps it)."""
    argparse._ = _ if lang != "en" else gettext_module.gettext  # type: ignore[attr-defined]


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    activate(_early_lang(argv))
    _argparse_speaks(active_language())
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        args.lang = resolve_lang(args.lang)
    except LanguageError as exc:
        return _die(str(exc))
    activate(args.lang)
    try:
        if args.command == "run":
            # From here, not only once pytest configures the suite: the imports and the
            # collection allocate too (conformance.gcpolicy).
            before = gcpolicy.relax()
            try:
                return cmd_run(args, rest)
            finally:
                gcpolicy.restore(before)
        if args.command == "serve-reference":
            return cmd_serve_reference(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "diff":
            return cmd_diff(args)
        if args.command == "merge":
            return cmd_merge(args)
        if args.command == "init":
            return cmd_init(args)
        return cmd_checks(args)
    except KeyboardInterrupt:
        return _die(_("interrupted"), EXIT_INTERRUPTED)
