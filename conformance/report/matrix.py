"""matrix.html: the compatibility matrix, rendered with Jinja2 from result data only.

Self-contained (inline CSS, no script or CDN), readable without colour (every outcome has a
symbol as well).  Rows are checks grouped by behaviour family, columns are providers.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import jinja2

from conformance.results import OUTCOMES, Result, RunData, outcome_counts, token_totals

SYMBOLS = {"pass": "✓", "fail": "✗", "unsupported": "⊘", "skip": "–", "error": "!"}

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("conformance.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def score(counts: dict[str, int]) -> str:
    """pass / (pass + fail): the share of judged behaviours that conform (unsupported, skip
    and error are not counted either way)."""
    judged = counts["pass"] + counts["fail"]
    return f"{100 * counts['pass'] / judged:.0f}%" if judged else "—"


def render_matrix(data: RunData) -> str:
    cells: dict[tuple[str, str], Result] = {(r.check, r.provider): r for r in data.results}
    providers = [p for p in data.providers if any(r.provider == p["name"] for r in data.results)]
    ran = {r.check for r in data.results}
    families: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for check in data.checks:
        if check["id"] in ran:
            families[check["behavior"]].append(check)
    per_provider = {
        p["name"]: outcome_counts(r for r in data.results if r.provider == p["name"])
        for p in providers
    }
    template = _env.get_template("matrix.html.j2")
    return template.render(
        run=data.run,
        complete=data.complete,
        providers=providers,
        families=dict(families),
        cells=cells,
        symbols=SYMBOLS,
        outcomes=OUTCOMES,
        totals=outcome_counts(data.results),
        per_provider=per_provider,
        tokens=token_totals(data.results),
        score=score,
    )
