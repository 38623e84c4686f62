"""The pytest side: collection of check items and the session hooks' implementation.

Each module of :mod:`conformance.checks` becomes a :class:`CheckFile`; each (check, provider)
pair a :class:`CheckItem` named ``<check id>[<provider>]`` and marked with its family, so
``-k``, ``-m``, ``-x``, ``-n`` and ``--alluredir`` work as usual.  An item's setup waits for its
result from the engine; the outcome maps onto pytest's: ``fail`` → failed (a
:class:`~conformance.errors.Failure`, an ``AssertionError``), ``unsupported``/``skip`` → skipped
(``unsupported:`` prefix), ``error`` → error in setup.  :mod:`conformance.plugin` wires these in.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Generator, Iterator, Reversible
from pathlib import Path
from typing import Any

import pytest
from _pytest._code.code import ReprFileLocation, TerminalRepr
from _pytest._io import TerminalWriter
from xdist.scheduler import LoadGroupScheduling

from conformance import gcpolicy, logsafety
from conformance.checks.registry import Check, all_checks
from conformance.config import FAMILIES, ProvidersConfig, load_providers
from conformance.errors import ConfigError, Failure, Finding, SuiteError
from conformance.estimate import cost_line
from conformance.i18n import LanguageError, _, activate, localize, resolve_lang
from conformance.i18n import active as active_language
from conformance.report.allure import annotate as allure_annotate
from conformance.report.allure import description as allure_description
from conformance.report.allure import static_labels as allure_labels
from conformance.report.terminal import render_summary
from conformance.results import Result, clear_run_files, printable, read_jsonl
from conformance.run import Run, new_run_id
from conformance.stability import label, parse_repeat

RUN_KEY = pytest.StashKey[Run]()
DEFAULT_PROVIDERS = "providers.yaml"


class CheckOutcomeError(SuiteError):
    """Raised in setup for an ``error`` outcome, so pytest reports the item as an error."""


class OneLineRepr(TerminalRepr):
    """A finding shown as its one-line message, with a crash location pointing at the check
    (so pytest's short summary reads ``FAILED <id> - <message>``)."""

    def __init__(self, text: str, message: str, path: Path, lineno: int) -> None:
        self.text = text
        self.reprcrash = ReprFileLocation(str(path), lineno + 1, message)

    def toterminal(self, tw: TerminalWriter) -> None:
        tw.line(self.text, red=True)


def allure_active(config: pytest.Config) -> bool:
    """Whether allure-pytest writes results (``--alluredir``) in this process."""
    return bool(getattr(config.option, "allure_report_dir", None))


def packaged_providers() -> Path:
    """The providers.yaml shipped with the package (or the repo's, in a checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_data" / "providers.yaml", here.parent / "providers.yaml"):
        if candidate.exists():
            return candidate
    return here.parent / "providers.yaml"


def targets_suite(config: pytest.Config, args: list[str] | None = None) -> bool:
    """Whether this pytest invocation is a conformance run.

    True when ``--providers`` is given or a command-line argument (``args``, default
    ``config.args``) points at a conformance package directory (``pytest conformance``,
    ``pytest --pyargs conformance``) or into it.  The plugin is installed for every pytest run
    in the environment, so it must stay inert otherwise.
    """
    if config.getoption("conformance_providers"):
        return True
    base = config.invocation_params.dir
    for arg in config.args if args is None else args:
        target = arg.split("::", 1)[0]
        if config.getoption("pyargs") and target.split(".")[0] == "conformance":
            return True
        path = (base / target).resolve()
        for candidate in (path, *path.parents[:2]):
            if (candidate / "checks" / "registry.py").exists():
                return True
    return False


def installed_suite_args(args: list[str], invocation_dir: Path) -> list[str]:
    """``args`` with ``conformance`` (or a path below it, e.g. ``conformance/checks/stop.py``)
    pointing at this package when no such path exists where pytest was started: after
    ``pip install .``, ``pytest conformance`` means the installed suite."""
    package = Path(__file__).resolve().parent
    out = []
    for arg in args:
        target, sep, rest = arg.partition("::")
        parts = Path(target).parts
        if parts and parts[0] == "conformance" and not (invocation_dir / target).exists():
            installed = package.joinpath(*parts[1:])
            if installed.exists():
                arg = f"{installed}{sep}{rest}"
        out.append(arg)
    return out


def is_check_module(path: Path) -> bool:
    return (
        path.suffix == ".py"
        and path.parent.name == "checks"
        and (path.parent / "registry.py").exists()
        and path.stem in {c.module for c in all_checks()}
    )


def language(config: pytest.Config) -> str:
    """The run's language: ``--lang``/``--conformance-lang``, else the ``conformance_lang``
    ini value, else ``CONFORMANCE_LANG`` or the locale (:func:`conformance.i18n.resolve_lang`);
    an unknown one is a usage error in one line."""
    chosen = config.getoption("conformance_lang", None) or config.getini("conformance_lang")
    try:
        return resolve_lang(str(chosen) if chosen else None)
    except LanguageError as exc:
        raise pytest.UsageError(str(exc)) from None


def load_config(config: pytest.Config) -> ProvidersConfig:
    given = config.getoption("conformance_providers")
    resolved = Path(given or DEFAULT_PROVIDERS)
    if not resolved.is_absolute() and not resolved.exists():
        # Messages name the file as the user wrote it; resolve only when the cwd differs.
        resolved = config.invocation_params.dir / resolved
    if not given and not resolved.exists():
        resolved = packaged_providers()
    try:
        providers = load_providers(resolved, os.environ)
        names = config.getoption("conformance_provider")
        selected = providers.select(names) if names else providers
        model = config.getoption("conformance_model", None)
        if model:
            selected = selected.with_model(model)
        return selected
    except ConfigError as exc:
        raise pytest.UsageError(exc.one_line()) from None


class CheckItem(pytest.Item):
    """One check against one provider."""

    def __init__(self, *, check: Check, provider: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.provider = provider
        self.result: Result | None = None
        self.add_marker(check.behavior)
        # The group of `--dist loadgroup`; ProviderScheduling keeps it under plain -n too.
        self.add_marker(pytest.mark.xdist_group(provider))
        self.user_properties.append(("check", check.id))
        self.user_properties.append(("provider", provider))
        if allure_active(self.config):
            for label_type, value in allure_labels(check.id, check.behavior, provider):
                self.add_marker(pytest.mark.allure_label(value, label_type=label_type))
            self.add_marker(pytest.mark.allure_description(
                allure_description(check.title, check.proves, check.spec)))

    @property
    def run(self) -> Run:
        return self.config.stash[RUN_KEY]

    def setup(self) -> None:
        try:
            result = self.run.result(self.check, self.provider)
        except Exception as exc:  # never a raw traceback for pytest to format
            raise CheckOutcomeError(
                f"suite fault: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            ) from None
        self.result = result
        self.run.record(result)
        self.user_properties.append(("outcome", result.outcome))
        if result.runs:  # --repeat K: "2/3", and whether the runs disagreed
            self.user_properties.append(("repeat", label(result)
                                         + (" flaky" if result.flaky else "")))
        if allure_active(self.config):
            allure_annotate(result)
        if result.provider_problem:
            # A dead host or a rejected key is said once, in the conformance summary, not as
            # one ERROR per check; the session still ends unsuccessfully (see sessionfinish).
            raise pytest.skip.Exception(_("not run: {message}").format(
                message=localize(result.message)), _use_item_location=True)
        if result.outcome == "error":
            raise CheckOutcomeError(result.message)

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        if result.outcome == "fail":
            raise Failure(result.message)
        if result.outcome in ("unsupported", "skip"):
            prefix = "unsupported: " if result.outcome == "unsupported" else ""
            # Reported at the check's own source line, not here.
            raise pytest.skip.Exception(prefix + localize(result.message),
                                        _use_item_location=True)

    def one_line(self, error: BaseException) -> OneLineRepr:
        return OneLineRepr(f"{self.check.id} [{self.provider}]: {error}", str(error),
                           self.path, self.reportinfo()[1])

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, Finding | SuiteError):
            return self.one_line(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Location of the check function, so reports point at its source."""
        line = self.check.func.__code__.co_firstlineno - 1
        return self.path, line, f"{self.check.id}[{self.provider}]"


class CheckFile(pytest.File):
    """A module of conformance.checks: yields its checks × the selected providers."""

    def collect(self) -> Iterator[CheckItem]:
        run = self.config.stash[RUN_KEY]
        for check in all_checks():
            if check.module != self.path.stem:
                continue
            for provider in run.config.names():
                name = f"{check.id}[{provider}]"
                # The node id given as text, so pytest >= 9 parses it as <name>[<params>]
                # like the ids it reads back from its cache; derived from the parent it would
                # be one opaque name, and --lf/--ff would never match it.
                yield CheckItem.from_parent(self, name=name, nodeid=f"{self.nodeid}::{name}",
                                            check=check, provider=provider)


class ConformanceSession:
    """Session-level hooks of an active conformance run (registered by the plugin)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.spoken = active_language()
        activate(language(config))
        providers = load_config(config)
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.worker: str | None = workerinput["workerid"] if workerinput else None
        if workerinput and "conformance_run_id" in workerinput:
            run_id = workerinput["conformance_run_id"]
            report_dir = Path(workerinput["conformance_report_dir"])
            started = workerinput["conformance_started_at"]
        else:
            run_id = config.getoption("conformance_run_id") or new_run_id()
            option = config.getoption("conformance_report_dir")
            report_dir = Path(option) if option else Path("reports") / run_id
            if not report_dir.is_absolute():
                report_dir = config.invocation_params.dir / report_dir
            started = None
        budget = config.getoption("conformance_max_tokens", None)
        if budget is not None and workerinput:
            budget = max(1, budget // int(workerinput.get("workercount", 1)))
        try:
            repeat = parse_repeat(config.getoption("conformance_repeat", None) or 1)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.run = Run(providers, report_dir, run_id, worker=self.worker, started_at=started,
                       max_tokens=budget, repeat=repeat)
        self._cost_said = False
        #: Items an xdist worker has handed to the engine (their ``id``s; items live as long
        #: as the session).
        self._submitted: set[int] = set()
        #: Indices of the items this xdist worker has found in its queue so far.
        self._queued: set[int] = set()
        self.worker_results: list[Result] = []
        #: Checks selected for this run (known once collected; set by the controller).
        self.planned: int | None = None
        self.interrupted = False
        config.stash[RUN_KEY] = self.run
        #: The collector's thresholds before this run raised them (:mod:`conformance.gcpolicy`).
        self._gc_before = gcpolicy.relax()
        #: Whether this run made the logger table safe to walk (:mod:`conformance.logsafety`).
        self._logs_guarded = logsafety.guard()

    @property
    def finished(self) -> int:
        """Checks with a result in this run's files."""
        return len(self.run.data.results) if self.run.data else 0

    # -- collection -----------------------------------------------------------------------
    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> CheckFile | None:
        if is_check_module(file_path):
            return CheckFile.from_parent(parent, path=file_path)
        return None

    # -- running --------------------------------------------------------------------------
    def _say_workers(self) -> None:
        """Say it when ``-n auto`` started fewer workers than xdist would (:func:`auto_workers`)."""
        chosen = self.config.stash.get(AUTO_WORKERS_KEY, None)
        if chosen is None:
            return
        option, count, workers = chosen
        if workers == 0:
            line = _("{option}: one provider, so its checks run in this process (a provider's "
                     "checks all run in one worker)").format(option=option)
        else:
            line = _("{option}: {workers} workers, one per provider (xdist would start "
                     "{count})").format(option=option, workers=workers, count=count)
        _say(self.config, f"conformance: {line}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        if self.worker is not None or session.config.option.collectonly:
            return
        self._say_workers()
        self._clear_earlier_run(session.config)
        items = [item for item in session.items if isinstance(item, CheckItem)]
        if items:  # under xdist the controller collects nothing: XdistHooks counts
            self.planned = len(items)
        self.say_cost([(item.check.id, item.provider) for item in items])
        self.run.submit((item.check, item.provider) for item in items)

    def say_cost(self, pairs: list[tuple[str, str]]) -> None:
        """Before anything is sent, what the run will cost (:mod:`conformance.estimate`):
        with ``--repeat K`` or a ``--max-tokens`` budget, once per run."""
        run = self.run
        if self._cost_said or (run.repeat == 1 and run.max_tokens is None):
            return
        self._cost_said = True
        line = cost_line(pairs, run.providers, run.repeat, run.max_tokens)
        if line is not None:
            _say(self.config, f"conformance: {line}")

    def _clear_earlier_run(self, config: pytest.Config) -> None:
        """A reused --report-dir: remove the earlier run's files (before any worker writes)."""
        directory = self.run.report_dir
        removed = clear_run_files(
            directory, keep_baseline=config.getoption("conformance_keep_baseline"))
        if removed:
            _say(config, "conformance: " + _("{directory} held an earlier run; removed its "
                                             "{files}").format(
                directory=f"{_display(directory)}{os.sep}", files=", ".join(removed)))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None
                                ) -> Generator[None, object, object]:
        if self.worker is not None and isinstance(item, CheckItem):
            pending = [item, *_worker_pending(item.session, self._queued)]
            if isinstance(nextitem, CheckItem):
                pending.append(nextitem)
            # Each item once: the worker's queue is read again at every item.
            fresh = [i for i in pending if id(i) not in self._submitted]
            self._submitted.update(id(i) for i in fresh)
            if fresh:
                self.run.submit((i.check, i.provider) for i in fresh)
        outcome = yield
        if isinstance(item, CheckItem) and item.result is None:
            self._keep_unasked(item)
        return outcome

    def _keep_unasked(self, item: CheckItem) -> None:
        """The item ran but its setup never asked for its result: something before it in
        pytest's setup (another plugin's hook, pytest's own code) raised first.  The engine
        judged the check all the same, so its result is recorded — every verdict paid for is
        kept, as after Ctrl-C — and the item keeps pytest's error.  A check whose result is a
        suite fault has none to keep."""
        try:
            result = self.run.result(item.check, item.provider)
        except Exception:
            return
        item.result = result
        self.run.record(result)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if isinstance(item, CheckItem) and report.failed and call.excinfo is not None:
            value = call.excinfo.value
            if isinstance(value, Finding | SuiteError):
                report.longrepr = item.one_line(value)
        return report

    # -- finishing ------------------------------------------------------------------------
    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True

    # trylast: after xdist has shut its workers down, so their files are complete.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            if self.interrupted:
                self.run.record_finished()
            if self.worker is not None:
                self._hand_over(session.config)
            else:
                if self.interrupted:
                    self._read_worker_files()
                data = self.run.finish(self.worker_results)
                if data is not None and session.exitstatus == pytest.ExitCode.OK and any(
                        r.provider_problem for r in data.results):
                    session.exitstatus = pytest.ExitCode.TESTS_FAILED
        finally:
            self.run.close()

    def _hand_over(self, config: pytest.Config) -> None:
        """A worker's results for the controller: the name of its results.<worker>.jsonl when
        the controller runs on this host and the file holds every result (the controller reads
        it with the C parser), else the results themselves (execnet's pure-Python
        serialisation of every result's evidence cost the controller ~40 % of its CPU)."""
        output: dict[str, Any] = getattr(config, "workeroutput", {})
        workerinput: dict[str, Any] = getattr(config, "workerinput", {})
        log = self.run.log
        if workerinput.get("conformance_host") == socket.gethostname() and \
                log.written == len(self.run.results) and log.path.is_file():
            output["conformance_results_file"] = str(log.path)
            output["conformance_results_count"] = log.written
        else:
            output["conformance_results"] = [r.to_json(plain=True) for r in self.run.results]

    def _read_worker_files(self) -> None:
        """After Ctrl-C xdist may not deliver the workers' output: take the results their
        ``results.<worker>.jsonl`` files hold."""
        known = {(r.check, r.provider) for r in self.worker_results}
        for path in sorted(self.run.report_dir.glob("results.*.jsonl")):
            for result in read_jsonl(path):
                if (result.check, result.provider) not in known:
                    known.add((result.check, result.provider))
                    self.worker_results.append(result)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        activate(self.spoken)  # an in-process pytest run leaves its caller's language alone
        gcpolicy.restore(self._gc_before)  # and its garbage collector's thresholds
        logsafety.restore(self._logs_guarded)  # and the logging module's table

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        data = self.run.data
        if self.worker is not None or data is None:
            return
        tw = terminalreporter._tw
        terminalreporter.write_sep("=", "conformance")
        try:
            summary = render_summary(data, width=tw.fullwidth, color=tw.hasmarkup)
        except Exception as exc:  # a renderer's bug: one line, and the run's exit status stands
            error = printable(" ".join(str(exc).split()))[:300]
            summary = _("conformance: could not show the summary: {error}").format(
                error=f"{type(exc).__name__}: {error}") + "\n"
        terminalreporter.write(summary)
        partial = ""
        if self.interrupted:
            partial = _(" (partial: interrupted, {finished}{of} checks finished)").format(
                finished=self.finished, of=_(" of {planned}").format(planned=self.planned)
                if self.planned else "")
        terminalreporter.write_line(_("report: {path}").format(
            path=f"{_display(self.run.report_dir)}{os.sep}") + partial)


class ProviderScheduling(LoadGroupScheduling):  # type: ignore[misc]  # xdist is untyped
    """xdist's ``loadgroup`` where a check's group is its provider: each provider's checks
    run in one worker, so the requests they share (``share=True``) are sent once, as in a
    serial run.  The group is read from the node id: xdist 3.8 adds its ``@group`` suffix
    by setting ``item._nodeid``, which pytest 9 no longer reads."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        #: Unfinished checks of each unit (by scope), counted once and kept as they complete.
        self._left: dict[str, int] = {}
        #: Each worker's collection: node id -> index.
        self._indices: dict[Any, dict[str, int]] = {}

    def schedule(self) -> None:
        """xdist's first distribution gives each worker one provider and the next only when
        it has almost nothing left, so a worker's providers would run one after another.  The
        engine of a worker runs its providers side by side: hand every provider out at once,
        each to the worker with the fewest checks so far."""
        first = self.collection is None
        super().schedule()
        if not first:
            return
        while self.workqueue:
            open_nodes = [node for node in self.nodes if not node.shutting_down]
            if not open_nodes:
                return
            node = min(open_nodes, key=lambda n: sum(
                len(unit) for unit in self.assigned_work[n].values()))
            self._assign_work_unit(node)

    # xdist's loadscope counts a worker's unfinished checks by walking every check it was
    # given, and finds each check's index with list.index: after every report, so quadratic
    # in the checks (0.9 s of the controller's CPU at 32 providers).  Here the count of each
    # unit (a provider's checks) is kept as checks complete, and the indices are a dict.

    def _unit_left(self, scope: str, unit: dict[str, bool]) -> int:
        if scope not in self._left:
            self._left[scope] = sum(1 for done in unit.values() if not done)
        return self._left[scope]

    def _pending_of(self, workload: dict[str, dict[str, bool]]) -> int:
        return sum(self._unit_left(scope, unit) for scope, unit in workload.items())

    def mark_test_complete(self, node: Any, item_index: int, duration: float = 0) -> None:
        nodeid = self.registered_collections[node][item_index]
        scope = self._split_scope(nodeid)
        unit = self.assigned_work[node][scope]
        if not unit[nodeid]:
            self._left[scope] = self._unit_left(scope, unit) - 1
            unit[nodeid] = True
        self._reschedule(node)

    def _assign_work_unit(self, node: Any) -> None:
        scope, unit = self.workqueue.popitem(last=False)
        self.assigned_work.setdefault(node, {})[scope] = unit
        index = self._indices.get(node)
        if index is None:
            index = self._indices[node] = {}
            for i, nodeid in enumerate(self.registered_collections[node]):
                index.setdefault(nodeid, i)  # the first, as list.index
        node.send_runtest_some([index[nodeid] for nodeid, done in unit.items() if not done])

    def _split_scope(self, nodeid: str) -> str:
        scope: str = super()._split_scope(nodeid)  # a group suffix, where xdist added one
        if scope != nodeid:
            return scope
        pair = check_and_provider(nodeid)
        return f"provider {pair[1]}" if pair else nodeid


_CHECK_ITEM_NODEID = re.compile(r"::([a-z_]+\.[a-z0-9_]+)\[([a-z0-9._-]+)\]$")


def check_and_provider(nodeid: str) -> tuple[str, str] | None:
    """(check id, provider) of a CheckItem's node id (``.../stop.py::stop.list[apiyi]``), or
    None for any other item."""
    match = _CHECK_ITEM_NODEID.search(nodeid)
    return (match.group(1), match.group(2)) if match else None


def groups_by_provider(config: pytest.Config) -> bool:
    """Whether ``-n`` runs with :class:`ProviderScheduling`: under ``--dist loadgroup``, and
    under xdist's default ``load`` when the user chose no ``--dist`` (nor ``-d``)."""
    dist = config.getoption("dist", None)
    asked = config.known_args_namespace
    chosen = getattr(asked, "dist", "no") != "no" or getattr(asked, "distload", False)
    return dist == "loadgroup" or (dist == "load" and not chosen)


class XdistHooks:
    """Controller-side xdist wiring: hand the run id to workers, collect their results, keep
    each provider's checks in one worker."""

    def __init__(self, session: ConformanceSession) -> None:
        self.session = session

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        return ProviderScheduling(config, log) if groups_by_provider(config) else None

    def pytest_configure_node(self, node: Any) -> None:
        run = self.session.run
        node.workerinput["conformance_run_id"] = run.run_id
        node.workerinput["conformance_report_dir"] = str(run.report_dir)
        node.workerinput["conformance_started_at"] = run.started_at
        # A worker on this host hands its results over as its results file's name.
        node.workerinput["conformance_host"] = socket.gethostname()

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """The controller does not submit under xdist: its plan is the workers' collection
        (each worker collects the same items)."""
        self.session.planned = len(ids)
        if self.session.run.planned is None and not self.session.config.option.collectonly:
            known = {c.id for c in all_checks()}
            pairs = [check_and_provider(nodeid) for nodeid in ids]
            planned = [p for p in pairs if p is not None and p[0] in known]
            self.session.say_cost(planned)
            self.session.run.plan(planned)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        for data in output.get("conformance_results", []):
            self.session.worker_results.append(Result.from_json(data, made_safe=True))
        named = output.get("conformance_results_file")
        if isinstance(named, str):
            results = read_jsonl(Path(named), made_safe=True)
            expected = output.get("conformance_results_count")
            if len(results) != expected:  # never expected: said, and what was read is kept
                sys.stderr.write(f"conformance: {named}: {expected} results written, "
                                 f"{len(results)} read\n")
            self.session.worker_results.extend(results)


def _worker_pending(session: pytest.Session, seen: set[int]) -> list[CheckItem]:
    """Items queued on this xdist worker since the last call (best effort: xdist's queue is
    internal).  The controller appends to the queue's end and the worker takes from its
    front, so only the end is read, back to the first index already ``seen`` (which it
    extends): reading the whole queue at every item was quadratic in the worker's items."""
    for plugin in session.config.pluginmanager.get_plugins():
        if type(plugin).__name__ == "WorkerInteractor":
            try:
                with plugin.torun.lock() as queue:
                    indices = new_in_queue(queue, seen)
            except Exception:
                return []
            items = [session.items[i] for i in indices if i < len(session.items)]
            return [item for item in items if isinstance(item, CheckItem)]
    return []


def new_in_queue(queue: Reversible[object], seen: set[int]) -> list[int]:
    """The item indices at the end of ``queue`` not in ``seen``, in queue order, read from
    the end back to the first one seen; ``seen`` is extended with them."""
    indices: list[int] = []
    for index in reversed(queue):
        if isinstance(index, int):
            if index in seen:
                break
            indices.append(index)
    seen.update(indices)
    indices.reverse()
    return indices


#: ``-n auto`` chose fewer workers than xdist would have: (the option as written, xdist's
#: count, the run's).
AUTO_WORKERS_KEY = pytest.StashKey[tuple[str, int, int]]()


def auto_workers(config: pytest.Config) -> int | None:
    """The number of xdist workers for ``-n auto`` / ``-n logical`` in a conformance run:
    xdist's own count (its CPU count, or ``PYTEST_XDIST_AUTO_NUM_WORKERS``), but no more than
    there are providers — a provider's checks all run in one worker (:class:`ProviderScheduling`),
    so another worker would only start and wait — and none for one provider: the run stays in
    this process (it saves each worker's start, ~1 s of CPU).  An explicit ``-n N`` is the
    user's and is kept.  None (xdist decides) for any other pytest run, and when the providers
    cannot be read yet: their error comes at configure, in one line, as without ``-n``."""
    if not targets_suite(config, installed_suite_args(config.args,
                                                      config.invocation_params.dir)):
        return None
    try:
        providers = len(load_config(config).names())
    except Exception:  # said at configure, as the run's first and only error
        return None
    from xdist.plugin import pytest_xdist_auto_num_workers as xdist_count

    count = int(xdist_count(config))
    chosen = min(count, providers) if providers > 1 else 0
    if chosen < count:
        config.stash[AUTO_WORKERS_KEY] = (f"-n {config.option.numprocesses}", count, chosen)
    return chosen


class RunWatch:
    """Handed to ``pytest.main`` by ``conformance run``, which reads the session from it
    afterwards (checks selected and finished, the report dir)."""

    def __init__(self) -> None:
        self.session: ConformanceSession | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        plugin = session.config.pluginmanager.get_plugin("conformance-session")
        self.session = plugin if isinstance(plugin, ConformanceSession) else None

    def interrupted_line(self) -> str:
        """What an interrupted run finished and where its partial report is, in one line."""
        session = self.session
        if session is None or session.planned is None:
            return _("interrupted before any check started")
        done = _("{finished} of {planned} checks finished").format(
            finished=session.finished, planned=session.planned)
        if not session.finished:
            return _("interrupted: {done}; nothing written").format(done=done)
        return _("interrupted: {done}; partial report in {path}").format(
            done=done, path=f"{_display(session.run.report_dir)}{os.sep}")


def _say(config: pytest.Config, line: str) -> None:
    """One line on the terminal (pytest's, when it has one)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(line)
    else:
        print(line, file=sys.stderr)


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def register_markers(config: pytest.Config) -> None:
    for family in FAMILIES:
        config.addinivalue_line("markers", f"{family}: conformance checks of the {family} family")
    if not config.pluginmanager.hasplugin("xdist"):  # `-p no:xdist` with --strict-markers
        config.addinivalue_line("markers", "xdist_group: the provider of a conformance check")
