"""The registry of checks: every check has a stable id, a title, a behaviour family and the
spec reference it enforces.  Ids are ``<family>.<name>`` and never change once released: the
matrix, baselines and users' ``-k`` filters depend on them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from conformance.config import FAMILIES

if TYPE_CHECKING:
    from conformance.checks.context import CheckContext

CheckFunc = Callable[["CheckContext"], Awaitable[str | None]]

#: Links into the OpenAI API reference, by anchor; ``spec`` names the schema path instead.
API_REFERENCE = "https://platform.openai.com/docs/api-reference"
_ID = re.compile(r"^[a-z_]+\.[a-z0-9_]+$")

Severity = Literal["security", "breaks-clients", "degrades", "cosmetic"]
#: How much a ``fail`` of a check costs its users, worst first (results.json ``checks[].severity``):
#: ``security`` — someone else can spend the account or read its traffic (a wrong key accepted);
#: ``breaks-clients`` — a client written against OpenAI breaks or silently gets a wrong answer;
#: ``degrades`` — clients work, but a feature, a number or an error semantic is off;
#: ``cosmetic`` — a deviation from the letter of the spec that clients tolerate.
SEVERITIES: tuple[Severity, ...] = get_args(Severity)


@dataclass(frozen=True)
class Check:
    """One documented behaviour, judged per provider."""

    id: str
    title: str
    behavior: str
    spec: str
    proves: str
    func: CheckFunc
    module: str
    severity: Severity = "breaks-clients"
    needs_key: bool = True
    """False for checks that only send deliberately wrong or missing keys (``auth.*``): they
    still run when the configured key is rejected."""
    runs_last: bool = False
    """Judged after the provider's other checks (it reads what they observed)."""
    prepare: Callable[[], None] | None = None
    """Work done once per process before the check runs, off the event loop (importing a
    heavy library: :mod:`conformance.warmup`)."""

    def catalogue_entry(self) -> dict[str, str]:
        """The ``checks[]`` entry of results.json (docs/CONTRACT.md)."""
        return {
            "id": self.id,
            "behavior": self.behavior,
            "title": self.title,
            "spec": self.spec,
            "proves": self.proves,
            "severity": self.severity,
        }


REGISTRY: dict[str, Check] = {}


def check(
    id: str, *, severity: Severity, title: str, spec: str, proves: str,
    needs_key: bool = True, runs_last: bool = False, prepare: Callable[[], None] | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Register an async check function under ``id`` (its family is the id's prefix) with the
    ``severity`` of its ``fail`` (:data:`SEVERITIES`).

    The function receives a :class:`~conformance.checks.context.CheckContext`, returns an
    optional one-line pass message, and raises :class:`~conformance.errors.Failure`,
    :class:`~conformance.errors.Unsupported` or :class:`~conformance.errors.NotApplicable`.
    ``prepare``: what must be loaded before it runs (:mod:`conformance.warmup`).
    """
    if not _ID.match(id):
        raise ValueError(f"check id {id!r} must look like 'family.name'")
    if severity not in SEVERITIES:
        raise ValueError(f"check {id!r}: severity must be one of {', '.join(SEVERITIES)}")
    behavior = id.split(".", 1)[0]
    if behavior not in FAMILIES:
        raise ValueError(f"check {id!r}: unknown behaviour family {behavior!r}")

    def register(func: CheckFunc) -> CheckFunc:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        module = func.__module__.rsplit(".", 1)[-1]
        REGISTRY[id] = Check(id, title, behavior, spec, " ".join(proves.split()), func, module,
                             severity, needs_key, runs_last, prepare)
        return func

    return register


def all_checks() -> list[Check]:
    """Every registered check, in family order (docs/CONTRACT.md) then registration order."""
    load_checks()
    order = {family: i for i, family in enumerate(FAMILIES)}
    return sorted(REGISTRY.values(), key=lambda c: order.get(c.behavior, len(order)))


def load_checks() -> None:
    """Import the check modules (registration happens at import)."""
    import conformance.checks  # noqa: F401
