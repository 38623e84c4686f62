"""junit.xml: one <testsuite> per provider, one <testcase> per check (classname = family).

``fail`` → <failure>, ``error`` → <error>, ``skip`` and ``unsupported`` → <skipped> (the latter
with an "unsupported:" message prefix), as CI dashboards expect.  A planned check without a
result (the run was killed, interrupted or stopped by ``-x``) is an <error> "not run: the run
did not finish"; a killed run that did not record its plan gets one <error> testcase saying
so.  An unfinished run never reads as a green one.  With ``--repeat K`` every testcase carries
``repeat`` ("2/3") and ``flaky`` properties; a flaky pass (some runs passed, some did not) is
a passed testcase — not a failure — whose <system-out> names the runs that did not pass.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict

from conformance.i18n import RUN_UNFINISHED
from conformance.report.common import ran_providers
from conformance.results import Result, RunData, printable
from conformance.stability import label

NOT_RUN = RUN_UNFINISHED
#: What XML 1.0 forbids in a document (after :func:`printable` only U+FFFE and U+FFFF remain).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """``text`` as XML 1.0 can hold it: control characters shown as their escape (``\\x1b``),
    lone surrogates and the non-characters U+FFFE/U+FFFF as U+FFFD."""
    return _NOT_XML.sub("\ufffd", printable(str(text)))


def _clean(element: ET.Element) -> None:
    """Make every attribute and text under ``element`` XML 1.0 (a provider's text is in
    messages and names; one ESC or NUL would make the whole file unreadable)."""
    for node in element.iter():
        for key, value in node.attrib.items():
            node.set(key, xml_text(value))
        if node.text is not None:
            node.text = xml_text(node.text)


def render_junit(data: RunData) -> str:
    by_provider: dict[str, list[Result]] = defaultdict(list)
    for result in data.results:
        by_provider[result.provider].append(result)
    not_run: dict[str, list[str]] = defaultdict(list)
    for check, provider in data.not_run:
        not_run[provider].append(check)
    behavior = {str(c.get("id")): str(c.get("behavior", "")) for c in data.checks}
    root = ET.Element("testsuites", name=f"conformance {data.run.get('id', '')}".strip())
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for provider in [str(p["name"]) for p in ran_providers(data)]:
        results = by_provider[provider]
        missing = not_run[provider]
        counts = {
            "tests": len(results) + len(missing),
            "failures": sum(r.outcome == "fail" for r in results),
            "errors": sum(r.outcome == "error" for r in results) + len(missing),
            "skipped": sum(r.outcome in ("skip", "unsupported") for r in results),
        }
        for key, value in counts.items():
            totals[key] += value
        suite = ET.SubElement(root, "testsuite", {
            "name": provider,
            "time": f"{sum(r.duration_ms for r in results) / 1000:.3f}",
            **{k: str(v) for k, v in counts.items()},
        })
        for result in results:
            case = ET.SubElement(
                suite, "testcase", classname=f"{provider}.{result.behavior}", name=result.check,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="model", value=result.model)
            ET.SubElement(props, "property", name="outcome", value=result.outcome)
            if result.runs:
                ET.SubElement(props, "property", name="repeat", value=label(result))
                ET.SubElement(props, "property", name="flaky",
                              value="true" if result.flaky else "false")
                if result.flaky:
                    ET.SubElement(case, "system-out").text = (
                        f"flaky: passed {label(result)} runs; " + "; ".join(
                            f"run {i} {run['outcome']}: {run['message']}"
                            for i, run in enumerate(result.runs, 1) if run["outcome"] != "pass"))
            if result.outcome == "fail":
                ET.SubElement(case, "failure", message=result.message, type="fail").text = (
                    result.message
                )
            elif result.outcome == "error":
                ET.SubElement(case, "error", message=result.message, type="error").text = (
                    result.message
                )
            elif result.outcome == "unsupported":
                ET.SubElement(case, "skipped", message=f"unsupported: {result.message}")
            elif result.outcome == "skip":
                ET.SubElement(case, "skipped", message=result.message)
        for check in missing:
            family = behavior.get(check) or check.split(".")[0]
            case = ET.SubElement(suite, "testcase", classname=f"{provider}.{family}",
                                 name=check, time="0.000")
            props = ET.SubElement(case, "properties")
            ET.SubElement(props, "property", name="outcome", value="not run")
            ET.SubElement(case, "error", message=NOT_RUN, type="not-run").text = NOT_RUN
    if data.incomplete and data.planned is None:
        # A killed run that did not record its plan: one error says the rest is unknown.
        message = (f"the run did not finish: {len(data.results)} checks finished, which "
                   "others were planned is unknown")
        suite = ET.SubElement(root, "testsuite", name="conformance", tests="1", failures="0",
                              errors="1", skipped="0", time="0.000")
        case = ET.SubElement(suite, "testcase", classname="conformance", name="run",
                             time="0.000")
        ET.SubElement(case, "error", message=message, type="not-run").text = message
        totals["tests"] += 1
        totals["errors"] += 1
    for key, value in totals.items():
        root.set(key, str(value))
    _clean(root)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
