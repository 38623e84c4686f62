"""Secret redaction, applied once at the transport boundary.

Everything a check, a result file or an exception message ever sees has passed through a
:class:`Redactor`: authorisation headers are masked by name, and every configured secret (the API
key, secret header values) is replaced wherever it appears — request bodies, response bodies
(providers echo keys inside error messages), SSE text, URLs and exception messages.

A provider may echo a key in any encoding, so each secret is matched, case-insensitively, as
raw text where every character may also be written as a JSON ``\\uXXXX`` escape (with any number
of backslashes, for JSON inside JSON), a URL ``%XX`` escape or an HTML character reference; and
as lower/upper-case hex and standard/URL-safe base64 — for base64, at each of the three byte
alignments, so ``base64("Bearer " + key)`` and ``base64("user:" + key)`` are caught too.
Text is masked *before* it is cut to a size limit (:meth:`Redactor.clip`), and a key split over
several stream events is masked in each event (:meth:`Redactor.stream`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conformance import jsontext

MASK = "***"
#: Header names whose values are credentials, whatever they contain (case-insensitive).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie",
     "set-cookie"}
)
#: Secrets shorter than this are not substituted in free text (too likely to hit by accident).
MIN_SECRET_LENGTH = 6
#: Stream fragments shorter than this are not searched for in the raw stream text.
_MIN_FRAGMENT = 4


#: What matches an ASCII letter under ``re.IGNORECASE`` besides its two cases (Unicode simple
#: case folding): dotted and dotless i, the Kelvin sign, long s.
_FOLDS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}


def _char_options(char: str) -> list[tuple[str, str]]:
    """Every way the suite can foresee ``char`` being written inside echoed text, each as
    (its first character, the regular expression of the rest, case-insensitive)."""
    code = ord(char)
    options = [(char, "")]
    if code <= 0xFFFF:
        options.append(("\\", rf"\\*u{code:04x}"))
    if code < 0x100:
        options.append(("\\", rf"\\*x{code:02x}"))
    if char in "\"\\/":
        options.append(("\\", r"\\*" + re.escape(char)))
    options.append(("%", "".join(f"%{byte:02x}" for byte in char.encode())[1:]))
    if char == " ":
        options.append(("+", ""))
    options.append(("&", rf"#0*{code};"))
    options.append(("&", rf"#x0*{code:x};"))
    return options


def _char_pattern(char: str) -> str:
    """:func:`_char_options` as one regular expression (case-insensitive)."""
    return "(?:" + "|".join(re.escape(first) + rest for first, rest in _char_options(char)) + ")"


def _led_by_literal(first: str, rest: str) -> list[str]:
    """``first`` (a character, matched case-insensitively) then ``rest`` (case-insensitive),
    as branches that each begin with one literal character of exact case.  A pattern whose
    branches all do lets the regex engine skip, in C, every position where none of those
    characters stands (~10x faster on text holding no secret).  Empty for a non-ASCII
    ``first``, whose case forms this does not list."""
    if not first.isascii():
        return []
    cases = {first.lower(), first.upper(), *_FOLDS.get(first.lower(), "")}
    return [re.escape(case) + (f"(?i:{rest})" if rest else "") for case in sorted(cases)]


def _base64_cores(secret: bytes) -> list[str]:
    """The base64 characters that depend only on ``secret``, at each of the 3 byte offsets."""
    out = []
    for offset, skip in ((0, 0), (1, 2), (2, 3)):
        padded = b"\0" * offset + secret
        encoded = base64.b64encode(padded).decode().rstrip("=")
        if len(padded) % 3:
            encoded = encoded[:-1]  # its last character mixes in whatever follows
        core = encoded[skip:]
        out += [core, core.replace("+", "-").replace("/", "_")]
    return out


def secret_patterns(secret: str) -> list[str]:
    """Regular expressions matching ``secret`` in every foreseen encoding: as text and in hex
    case-insensitively, in base64 exactly.  Each begins with a literal character where it can
    (:func:`_led_by_literal`)."""
    raw = secret.encode()
    rest = "".join(_char_pattern(char) for char in secret[1:])
    patterns: list[str] = []
    for first, tail in _char_options(secret[0]):
        led = _led_by_literal(first, tail + rest)
        patterns += led or [f"(?i:{re.escape(first)}{tail}{rest})"]
    hexed = raw.hex()
    patterns += _led_by_literal(hexed[0], re.escape(hexed[1:]))
    patterns += [re.escape(core) for core in _base64_cores(raw)]
    return patterns


class Redactor:
    """Replaces configured secrets and credential headers with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        found: set[str] = set()
        for secret in secrets:
            if not secret or len(secret.strip()) < MIN_SECRET_LENGTH:
                continue
            found.add(secret)
            found.add(secret.strip())
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = tuple(sorted(found, key=lambda s: (-len(s), s)))
        patterns = [p for s in self._secrets for p in secret_patterns(s)]
        self._pattern = re.compile("|".join(patterns)) if patterns else None
        #: No match is shorter than this: every character of a secret is written with at
        #: least one character, and so is its hex; its base64 cores are their own length.
        #: Shorter text (most JSON keys and values) is not searched.
        self._shortest = min((min(len(s), *(len(c) for c in _base64_cores(s.encode())))
                              for s in self._secrets), default=0)
        #: How far a secret can reach past a cut: text this much beyond a limit is enough
        #: to tell whether a secret straddles it.
        self.margin = max((len(s) * 12 for s in self._secrets), default=0)

    @property
    def active(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        """Mask every secret occurring in ``value``."""
        if self._pattern is None or len(value) < self._shortest:
            return value
        return self._pattern.sub(MASK, value)

    def clip(self, value: str, limit: int) -> str:
        """``value`` masked, then cut to about ``limit`` characters of the original.

        The cut moves past a secret that straddles it, so no fragment is left at the end;
        ``value`` should extend :attr:`margin` characters past ``limit`` when it is longer.
        """
        if self._pattern is None:
            return value[:limit]
        cut = limit
        for match in self._pattern.finditer(value, 0, limit + self.margin):
            if match.start() >= limit:
                break
            cut = max(cut, match.end())
        return self._pattern.sub(MASK, value[:cut])

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        """Lower-cased header dict with credential headers masked and secrets removed."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        out: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            if key in SECRET_HEADERS:
                scheme, _, rest = value.partition(" ")
                is_scheme = rest and scheme.lower() in ("bearer", "basic")
                value = f"{scheme} {MASK}" if is_scheme else MASK
            else:
                value = self.text(value)
            out[key] = f"{out[key]}, {value}" if key in out else value
        return out

    def data(self, value: Any) -> Any:
        """Mask secrets inside JSON-like data.  Iterative, not recursive: a provider's JSON may
        nest as deep as it likes (dicts and lists are copied, tuples become lists)."""
        root = self._shallow(value)
        stack: list[tuple[Any, Any]] = [(value, root)] if isinstance(root, dict | list) else []
        while stack:
            source, copy = stack.pop()
            items = source.items() if isinstance(source, dict) else enumerate(source)
            for key, item in items:
                new = self._shallow(item)
                if isinstance(copy, dict):
                    copy[self.text(str(key))] = new
                else:
                    copy.append(new)
                if isinstance(new, dict | list):
                    stack.append((item, new))
        return root

    def _shallow(self, value: Any) -> Any:
        """``value`` masked if a string, an empty container of its kind if a container."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {}
        if isinstance(value, list | tuple):
            return []
        return value

    def stream(self, datas: Sequence[str], text: str = "") -> tuple[list[str], str]:
        """Mask the event data of one stream, and its raw text, as a whole.

        Each event's data is masked on its own; besides, a secret split over several events
        (a client joins the string at each JSON path — ``choices.0.delta.content`` — and the
        data of non-JSON events) is masked in every event holding a piece of it, and the pieces
        (those of at least 4 characters) in ``text``, the raw stream. Returns both, masked.
        """
        masked = [self.text(data) for data in datas]
        if self._pattern is None or len(datas) < 2:
            return masked, self.text(text)
        parsed: list[Any] = []
        # path -> [(event index, leaf string)] in stream order
        joined: dict[tuple[Any, ...], list[tuple[int, str]]] = {}
        for index, data in enumerate(datas):
            try:
                value = jsontext.loads(data)
            except ValueError:
                value = data
            parsed.append(value)
            for path, leaf in _leaves(value, ()):
                joined.setdefault(path, []).append((index, leaf))
        # (event index, path) -> [(start, end)] of the leaf to mask
        spans: dict[tuple[int, tuple[Any, ...]], list[tuple[int, int]]] = {}
        fragments: set[str] = set()
        for path, pieces in joined.items():
            if len(pieces) < 2:
                continue
            whole = "".join(leaf for _, leaf in pieces)
            starts, position = [], 0
            for _, leaf in pieces:
                starts.append(position)
                position += len(leaf)
            for match in self._pattern.finditer(whole):
                hit = [(index, leaf, start) for (index, leaf), start in zip(pieces, starts,
                                                                            strict=True)
                       if start < match.end() and match.start() < start + len(leaf)]
                if len(hit) < 2:
                    continue  # inside one event: its own masking catches it
                for index, leaf, start in hit:
                    lo = max(match.start(), start) - start
                    hi = min(match.end(), start + len(leaf)) - start
                    spans.setdefault((index, path), []).append((lo, hi))
                    fragments.add(leaf[lo:hi])
        for index in sorted({index for index, _ in spans}):
            value = parsed[index]
            for (where, path), ranges in spans.items():
                if where == index:
                    value = _mask_leaf(value, path, ranges)
            if isinstance(value, str):
                masked[index] = self.text(value)
            else:
                masked[index] = self.text(json.dumps(value, ensure_ascii=False))
        for fragment in sorted(fragments, key=len, reverse=True):
            if len(fragment) >= _MIN_FRAGMENT:
                pattern = "".join(_char_pattern(char) for char in fragment)
                text = re.sub(pattern, MASK, text, flags=re.IGNORECASE)
        return masked, self.text(text)


def _leaves(value: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def _mask_leaf(value: Any, path: tuple[Any, ...], ranges: list[tuple[int, int]]) -> Any:
    """``value`` with the string at ``path`` masked over ``ranges``."""
    if not path:
        assert isinstance(value, str)
        out, position = [], 0
        for lo, hi in sorted(ranges):
            if lo < position:
                lo = position
            if lo >= hi:
                continue
            out += [value[position:lo], MASK]
            position = hi
        return "".join([*out, value[position:]])
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: _mask_leaf(v, rest, ranges) if k == head else v for k, v in value.items()}
    return [_mask_leaf(v, rest, ranges) if i == head else v for i, v in enumerate(value)]
