"""junit.xml: one <testsuite> per provider, one <testcase> per check (classname = family).

``fail`` → <failure>, ``error`` → <error>, ``skip`` and ``unsupported`` → <skipped> (the latter
with an "unsupported:" message prefix), as CI dashboards expect.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from conformance.results import Result, RunData


def render_junit(data: RunData) -> str:
    by_provider: dict[str, list[Result]] = defaultdict(list)
    for result in data.results:
        by_provider[result.provider].append(result)
    root = ET.Element("testsuites", name=f"conformance {data.run.get('id', '')}".strip())
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for provider in [p["name"] for p in data.providers if p["name"] in by_provider]:
        results = by_provider[provider]
        counts = {
            "tests": len(results),
            "failures": sum(r.outcome == "fail" for r in results),
            "errors": sum(r.outcome == "error" for r in results),
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
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
