"""JSON text as RFC 8259 defines it, for everything a provider sends.

Python's :mod:`json` reads and writes ``NaN``, ``Infinity`` and ``-Infinity``, which are not
JSON (RFC 8259 §6: "Numeric values that cannot be represented [...] such as Infinity and NaN
are not permitted"): a browser's ``JSON.parse``, the official Node SDK, Go's
``encoding/json`` and jq refuse such a body. A provider that writes them (a server dumping a
``-inf`` log probability with Python's defaults does) breaks those clients, so the suite reads
every provider body, event and argument string with :func:`loads`, which refuses them like any
other invalid JSON; and nothing read this way can carry them into a result file or the matrix's
embedded data. A leaf module of the wire layer (standard library only).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn


class NonFiniteNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` where a JSON value was expected."""


def _refuse(name: str) -> NoReturn:
    raise NonFiniteNumber(f"{name} is not a JSON value, RFC 8259 §6")


_DECODER = json.JSONDecoder(parse_constant=_refuse)


def loads(text: str) -> Any:
    """``json.loads(text)`` without Python's extensions: :class:`ValueError` (a
    :class:`NonFiniteNumber` for NaN/Infinity) for anything RFC 8259 does not call JSON."""
    return _DECODER.decode(text)


def explain(exc: BaseException) -> str:
    """`` (NaN is not a JSON value, RFC 8259 §6)`` for a :class:`NonFiniteNumber`, else
    ``""``: what a verdict adds to "is not JSON", since a snippet of the text does not show
    why Python's own parser would have taken it."""
    return f" ({exc})" if isinstance(exc, NonFiniteNumber) else ""


def reason(text: str) -> str:
    """:func:`explain` of why ``text`` fails :func:`loads` (``""`` when it does not)."""
    try:
        loads(text)
    except (ValueError, RecursionError) as exc:
        return explain(exc)
    return ""
