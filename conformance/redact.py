"""Secret redaction, applied once at the transport boundary.

Everything a check, a result file or an exception message ever sees has passed through a
:class:`Redactor`: authorisation headers are masked by name, and every configured secret (the API
key, secret header values) is replaced wherever it appears — request bodies, response bodies
(providers echo keys inside error messages), SSE text, URLs and exception messages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
#: Header names whose values are credentials, whatever they contain (case-insensitive).
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie",
     "set-cookie"}
)
#: Secrets shorter than this are not substituted in free text (too likely to hit by accident).
MIN_SECRET_LENGTH = 6


class Redactor:
    """Replaces configured secrets and credential headers with ``***``."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < MIN_SECRET_LENGTH:
                continue
            variants.add(secret)
            # The same secret as it appears inside a JSON string literal.
            variants.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = tuple(sorted(variants, key=len, reverse=True))

    @property
    def active(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        """Mask every secret occurring in ``value``."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

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
        """Recursively mask secrets inside JSON-like data."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
