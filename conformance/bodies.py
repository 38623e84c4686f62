"""Reading an answer within the provider's limits: content decoding in bounded steps (a
compressed bomb never grows past ``limits.body`` in memory), text decoding that never raises,
and evidence cut with a visible marker.  Used by :mod:`conformance.transport` only; it never
imports pytest.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

#: The content codings the suite can inflate incrementally (with a size bound); only these
#: are advertised, so a body never arrives in a coding that cannot be bounded while decoding.
ACCEPT_ENCODING = "gzip, deflate"
#: Decoded bytes produced per step when inflating (bounds memory between two size checks).
INFLATE_STEP = 64 * 1024


def marker(count: int, what: str) -> str:
    """The visible end of a cut text: ``…[truncated: N more characters not kept]``."""
    return f"…[truncated: {count} more {what} not kept]"


def size_text(n: int) -> str:
    """``8 MiB``, ``512 KiB`` or ``1000 bytes``: a limit as people write it."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def keep_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters with a visible marker, and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + marker(len(text) - limit, "characters"), True


def decode_text(raw: bytes, charset: str | None) -> str:
    """Bytes to text in the declared charset; an unknown or non-text charset (``base64``,
    ``no-such-charset``) falls back to UTF-8, invalid sequences replaced: never raises."""
    if charset:
        try:
            return raw.decode(charset, "replace")
        except (LookupError, ValueError, TypeError):
            pass
    return raw.decode("utf-8", "replace")


class Overflow(Exception):
    """An answer exceeded one of the provider's limits (internal to the transport)."""


class Undecodable(Exception):
    """A body is not in the content coding its ``Content-Encoding`` names (a provider
    labelling plain JSON ``gzip``): no client can read it (internal to the transport)."""


class Inflater:
    """Incremental content decoding (gzip, deflate, identity) in bounded steps.

    Each compressed chunk is inflated :data:`INFLATE_STEP` bytes at a time, so the caller
    can count the output and stop before a compressed bomb grows in memory.  Other codings
    (never advertised, see :data:`ACCEPT_ENCODING`) pass through undecoded.
    """

    def __init__(self, content_encoding: str) -> None:
        coding = content_encoding.strip().lower()
        self._coding = coding
        self._zlib: Any = None
        self._raw_deflate_fallback = False
        if coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif coding == "deflate":
            self._zlib = zlib.decompressobj()
            self._raw_deflate_fallback = True  # some servers send raw deflate (no zlib header)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            if data:
                yield data
            return
        pending = data
        while pending and not self._zlib.eof:
            try:
                out = self._zlib.decompress(pending, INFLATE_STEP)
            except zlib.error as exc:
                if self._raw_deflate_fallback:
                    self._raw_deflate_fallback = False
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise Undecodable(f"the body is not {self._coding} data, though its "
                                  f"Content-Encoding says so ({exc}): read stopped") from None
            self._raw_deflate_fallback = False
            pending = self._zlib.unconsumed_tail
            if out:
                yield out

    def flush(self) -> bytes:
        return b"" if self._zlib is None else bytes(self._zlib.flush())


async def decoded_chunks(response: httpx.Response, limit: int, what: str
                         ) -> AsyncIterator[bytes]:
    """The body, content-decoded in bounded steps; raises :class:`Overflow` (naming
    ``what``, e.g. ``limits.body``) as soon as more than ``limit`` bytes have come out."""
    inflater = Inflater(response.headers.get("content-encoding", ""))
    total = 0
    async for raw in response.aiter_raw():
        for piece in inflater.feed(raw):
            total += len(piece)
            if total > limit:
                raise Overflow(f"{what} larger than {size_text(limit)}: read stopped")
            yield piece
    tail = inflater.flush()
    if tail:
        if total + len(tail) > limit:
            raise Overflow(f"{what} larger than {size_text(limit)}: read stopped")
        yield tail
