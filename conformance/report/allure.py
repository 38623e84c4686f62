"""allure labels and attachments for a check item (used only when ``--alluredir`` is given).

Labels: epic = behaviour family, feature = check id, suite = provider (under parent suite
"conformance", sub-suite = family), parameters ``provider`` and ``model``; tag ``unsupported``
on a declined feature (pytest reports it as skipped with an ``unsupported:`` reason).  Every
exchange of the evidence is attached as JSON (already redacted) and, for a stream, as SSE
text rebuilt from the recorded events with their timing as SSE comments.  Status mapping is
pytest's: ``fail`` is an ``AssertionError`` (allure "failed"), ``error`` is raised in setup
(allure "broken").

allure-pytest derives a result's ``historyId`` (what allure matches across runs, and treats as
retries within one) from the item's full name — module and check id, not the provider — and
its parameters; the ``provider`` parameter keeps one check on two providers with the same model
apart.

This module imports ``allure`` lazily and never imports pytest; the pytest layer turns
:func:`static_labels` into markers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from conformance.results import Result


def static_labels(check_id: str, family: str, provider: str) -> list[tuple[str, str]]:
    """(label type, value) pairs known at collection time."""
    return [("epic", family), ("feature", check_id), ("parentSuite", "conformance"),
            ("suite", provider), ("subSuite", family)]


def description(title: str, proves: str, spec: str) -> str:
    """The allure description of a check (Markdown)."""
    return f"**{title}**\n\n{proves}\n\nSpec: {spec}"


def sse_text(exchange: Mapping[str, Any]) -> str | None:
    """The stream of an exchange as SSE text (``: +13.0 ms`` comments give each event's time
    since the request), or None when it was not a stream."""
    response = exchange.get("response")
    events = response.get("events") if isinstance(response, dict) else None
    if not isinstance(events, list):
        return None
    out: list[str] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        out.append(f": +{event.get('t_ms', '?')} ms")
        if event.get("event"):
            out.append(f"event: {event['event']}")
        for line in str(event.get("data", "")).split("\n"):
            out.append(f"data: {line}")
        out.append("")
    return "\n".join(out) + "\n"


def exchange_name(exchange: Mapping[str, Any], index: int) -> str:
    request = exchange.get("request") or {}
    response = exchange.get("response") or {}
    path = urlsplit(str(request.get("url", ""))).path or str(request.get("url", ""))
    status = response.get("status")
    tail = f"HTTP {status}" if status is not None else "no response"
    return f"#{index + 1} {request.get('method', '')} {path} → {tail}"


def annotate(result: Result) -> None:
    """Add the provider and model parameters, the unsupported and flaky tags and the evidence
    to the running test."""
    import allure

    allure.dynamic.parameter("provider", result.provider)
    allure.dynamic.parameter("model", result.model)
    if result.outcome == "unsupported":
        allure.dynamic.tag("unsupported")  # type: ignore[no-untyped-call]
    if result.flaky:  # --repeat K: the runs disagreed (the test itself passes)
        allure.dynamic.tag("flaky")  # type: ignore[no-untyped-call]
    exchanges = result.evidence.get("exchanges") or []
    for index, exchange in enumerate(exchanges if isinstance(exchanges, list) else []):
        if not isinstance(exchange, Mapping):
            continue
        name = exchange_name(exchange, index)
        allure.attach(json.dumps(exchange, ensure_ascii=False, indent=2), name=name,
                      attachment_type=allure.attachment_type.JSON)
        text = sse_text(exchange)
        if text is not None:
            allure.attach(text, name=f"{name} (SSE)", attachment_type=allure.attachment_type.TEXT)
    extra = {k: v for k, v in result.evidence.items() if k != "exchanges"}
    if extra:
        allure.attach(json.dumps(extra, ensure_ascii=False, indent=2), name="evidence",
                      attachment_type=allure.attachment_type.JSON)
