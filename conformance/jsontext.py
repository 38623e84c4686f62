"""JSON text as RFC 8259 defines it, for everything a provider sends.

Python's :mod:`json` reads and writes ``NaN``, ``Infinity`` and ``-Infinity``, which are not
JSON (RFC 8259 §6: "Numeric values that cannot be represented [...] such as Infinity and NaN
are not permitted"): a browser's ``JSON.parse``, the official Node SDK, Go's
``encoding/json`` and jq refuse such a body. A provider that writes them (a server dumping a
``-inf`` log probability with Python's defaults does) breaks those clients, so the suite reads
every provider body, event and argument string with :func:`loads`, which refuses them like any
other invalid JSON; and nothing read this way can carry them into a result file or the matrix's
embedded data.  Arrays and objects nested deeper than :data:`MAX_DEPTH` are refused too (RFC
8259 §9: "An implementation may set limits on the maximum depth of nesting"): a hostile
provider's ``[[[[…`` would otherwise end a check in a RecursionError, here or in any later
recursive reading of the value.  A leaf module of the wire layer (standard library only).
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

#: The deepest nesting of arrays and objects read.  OpenAI's answers nest about ten levels;
#: structured outputs allow a schema five (``json_schema``) — far below this.
MAX_DEPTH = 64


class NonFiniteNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` where a JSON value was expected."""


class TooDeep(ValueError):
    """Arrays and objects nested deeper than :data:`MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels, the limit RFC 8259 §9 lets "
                         "a parser set")


def _refuse(name: str) -> NoReturn:
    raise NonFiniteNumber(f"{name} is not a JSON value, RFC 8259 §6")


_DECODER = json.JSONDecoder(parse_constant=_refuse)


def loads(text: str) -> Any:
    """``json.loads(text)`` without Python's extensions: :class:`ValueError` (a
    :class:`NonFiniteNumber` for NaN/Infinity, :class:`TooDeep`) for anything RFC 8259 does
    not call JSON or this parser does not read."""
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise TooDeep() from None
    # Only a text with more brackets than MAX_DEPTH can nest deeper (a C-speed count).
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise TooDeep()
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth + 1 > limit:
            return True
        stack.extend((child, depth + 1) for child in item
                     if isinstance(child, (dict, list)))
    return False


def explain(exc: BaseException) -> str:
    """`` (NaN is not a JSON value, RFC 8259 §6)`` for a :class:`NonFiniteNumber` or a
    :class:`TooDeep`, else ``""``: what a verdict adds to "is not JSON", since a snippet of
    the text does not show why Python's own parser would have taken it."""
    return f" ({exc})" if isinstance(exc, (NonFiniteNumber, TooDeep)) else ""


def reason(text: str) -> str:
    """:func:`explain` of why ``text`` fails :func:`loads` (``""`` when it does not)."""
    try:
        loads(text)
    except ValueError as exc:
        return explain(exc)
    return ""
