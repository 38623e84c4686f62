"""GitHub Actions niceties: workflow annotations and the link to a run's artifacts.

When ``GITHUB_ACTIONS`` is ``true``, ``conformance run``, ``diff`` and ``merge`` print one
``::error`` workflow command per regression, per provider missing from the new run and per
failed check of severity ``security``, so they show on the workflow run's page and in the pull
request (GitHub, "Workflow commands for GitHub Actions": ``::error title={title}::{message}``;
data escapes ``%``, CR and LF, properties also ``:`` and ``,``).  summary.md links to the
run's artifacts (``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID``).
Messages are the results' own one-line messages, already redacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from conformance.report.diff import RunDiff
from conformance.results import RunData, one_line, printable

#: GitHub shows at most 10 error annotations per step and 50 per job; the rest are counted.
MAX_ANNOTATIONS = 50

_SERVER = re.compile(r"https://[A-Za-z0-9.-]+(:\d+)?")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")


def in_github_actions(environ: Mapping[str, str]) -> bool:
    return environ.get("GITHUB_ACTIONS") == "true"


def run_url(environ: Mapping[str, str]) -> str | None:
    """The Actions run's page (its artifacts are listed there), or None outside Actions or
    when the variables do not look like GitHub's."""
    if not environ.get("GITHUB_ACTIONS"):
        return None
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    repository = environ.get("GITHUB_REPOSITORY", "")
    run_id = environ.get("GITHUB_RUN_ID", "")
    if not (_SERVER.fullmatch(server) and _REPOSITORY.fullmatch(repository)
            and run_id.isdigit()):
        return None
    return f"{server}/{repository}/actions/runs/{run_id}"


def _data(text: str) -> str:
    return printable(one_line(text, 400)).replace("%", "%25").replace("\r", "%0D").replace(
        "\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def error(title: str, message: str) -> str:
    """One ``::error`` workflow command."""
    return f"::error title={_property(title)}::{_data(message)}"


def security_failures(data: RunData) -> list[tuple[str, str, str]]:
    """(provider, check, message) of every failed check of severity ``security``."""
    security = {str(c.get("id")) for c in data.checks if c.get("severity") == "security"}
    return [(r.provider, r.check, r.message) for r in data.results
            if r.outcome == "fail" and r.check in security]


def annotation_lines(diff: RunDiff | None, data: RunData | None) -> list[str]:
    """The ``::error`` lines for ``diff``'s regressions and missing providers and ``data``'s
    security failures (at most :data:`MAX_ANNOTATIONS`, then one line counting the rest)."""
    lines: list[str] = []
    if diff is not None:
        for change in diff.regressions:
            lines.append(error(
                f"Regression: {change.check} [{change.provider}]",
                f"passed in baseline {diff.old.id}, now {change.new or 'not run'}: "
                f"{change.message or change.old_message}"))
        for provider in diff.removed_providers:
            lines.append(error(f"Provider missing: {provider}",
                               f"{provider} was in baseline {diff.old.id} and is absent from "
                               "this run"))
    if data is not None:
        for provider, check, message in security_failures(data):
            lines.append(error(f"Security: {check} [{provider}]", message))
    if len(lines) > MAX_ANNOTATIONS:
        rest = len(lines) - MAX_ANNOTATIONS + 1
        lines = [*lines[:MAX_ANNOTATIONS - 1], error(
            "More findings", f"{rest} more regressions or security failures: see summary.md")]
    return lines
