"""The billing family and the money around it, over real sockets: the reference provider's
OpenAI-named models bill exactly what OpenAI's tokenizer counts, and each billing fault is
caught by the right check with the excess or the encoding in its message; models without a
public tokenizer skip; ``price:`` shows what a run cost; ``--max-tokens`` stops spending."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance.checks.registry import all_checks
from conformance.reference.server import ReferenceServer
from tests.conftest import RunOutput, external, run_cli, run_suite, write_providers

BILLING = sorted(c.id for c in all_checks() if c.behavior == "billing")

#: fault → {check that must fail: words its message must contain}; the other billing checks
#: pass (or skip as inconclusive, listed with outcome "skip").
EXPECTED: dict[str, dict[str, tuple[str, str]]] = {
    "billing_prompt_inflated": {
        "billing.prompt_tokens": ("fail", "inflated usage"),
        "billing.tokenizer": ("skip", "inconclusive: the bill does not follow the messages")},
    "billing_hidden_prompt": {
        "billing.prompt_tokens": ("fail", "a hidden system prompt or a fixed surcharge")},
    # Short English text counts alike in both encodings: only the probe shows cl100k_base.
    "billing_cl100k": {
        "billing.tokenizer": ("fail", "the count of cl100k_base (o200k_base 73, cl100k_base "
                                      "193), not of o200k_base, which 'gpt-4o-mini' uses: a "
                                      "GPT-4-era model answering under its name")},
    "billing_completion_padded": {
        "billing.completion_tokens": ("fail", "+7 tokens")},
}


def _verdicts(out: RunOutput, provider: str) -> dict[str, tuple[str, str]]:
    """The provider's billing and usage verdicts."""
    return {c: v for (p, c), v in out.outcomes().items()
            if p == provider and c.startswith(("billing.", "usage."))}


def _name(fault: str) -> str:
    return fault.replace("billing_", "f-").replace("_", "-")


@pytest.fixture(scope="module")
def billing_run(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
                ) -> RunOutput:
    base = tmp_path_factory.mktemp("billing")
    price = {"input": 0.15, "output": 0.6}
    entries: list[dict[str, Any]] = [
        external("gpt-4o-mini", reference_server.base_url, model="gpt-4o-mini", price=price),
        external("gpt-4o", reference_server.base_url, model="gpt-4o"),
        external("gpt-4", reference_server.base_url, model="gpt-4"),
        external("ref-1", reference_server.base_url),
    ]
    entries += [external(_name(fault), reference_server.variant_url([fault]),
                         model="gpt-4o-mini", price=price) for fault in EXPECTED]
    path = write_providers(base / "providers.yaml", entries)
    out = run_suite(path, base / "r", "-k", "billing or usage")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4o", "gpt-4"])
def test_an_honest_openai_model_passes_every_billing_check(billing_run: RunOutput,
                                                           model: str) -> None:
    verdicts = _verdicts(billing_run, model)
    assert {c: v for c, v in verdicts.items() if v[0] != "pass"} == {}
    assert set(BILLING) <= set(verdicts)
    message = verdicts["billing.prompt_tokens"][1]
    assert "= counted" in message and "allowance ±3" in message, message


def test_a_model_without_a_public_tokenizer_skips_with_the_reason(billing_run: RunOutput
                                                                  ) -> None:
    verdicts = _verdicts(billing_run, "ref-1")
    for check_id in BILLING:
        assert verdicts[check_id] == (
            "skip", "no public tokenizer for 'ref-1': its token counts cannot be checked (the "
                    "billing family covers OpenAI's models)")


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_each_billing_fault_is_caught_by_the_right_check(billing_run: RunOutput,
                                                         fault: str) -> None:
    verdicts = _verdicts(billing_run, _name(fault))
    changed = {c: v for c, v in verdicts.items() if v[0] != "pass"}
    assert sorted(changed) == sorted(EXPECTED[fault]), changed
    for check_id, (outcome, words) in EXPECTED[fault].items():
        assert changed[check_id][0] == outcome and words in changed[check_id][1], \
            changed[check_id]


def test_the_run_shows_cost_and_billed_vs_counted(billing_run: RunOutput) -> None:
    summary = (billing_run.report_dir / "summary.md").read_text(encoding="utf-8")
    assert "| cost |" in summary and "Cost of this run:" in summary
    assert summary.index("### Billing and model identity") < summary.index("### Deviations")
    assert "per 1M requests" in summary  # the hidden prompt's excess, priced
    matrix = (billing_run.report_dir / "matrix.html").read_text(encoding="utf-8")
    assert "billed vs counted: +" in matrix and "cost 0." in matrix
    assert "billed vs counted" in billing_run.stdout
    assert "cost of this run: 0." in billing_run.stdout


def test_max_tokens_stops_starting_checks_once_spent(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text("providers:\n  - {name: reference, builtin: reference}\n", encoding="utf-8")
    out = run_suite(path, tmp_path / "r", "--max-tokens", "200")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    results = out.data["results"]
    budget = [r for r in results if "run budget of 200 tokens is spent" in r["message"]]
    assert budget and all(r["outcome"] == "skip" for r in budget)
    assert len(budget) > len(results) // 2  # most of the run was not started
    spent = sum(int((e.get("usage") or {}).get("prompt_tokens") or 0)
                + int((e.get("usage") or {}).get("completion_tokens") or 0)
                for e in {e["id"]: e for r in results
                          for e in r["evidence"].get("exchanges", [])}.values())
    assert spent < 200 + 400, spent  # the checks already running finish (concurrency 4)


def test_max_tokens_must_be_a_positive_number(tmp_path: Path) -> None:
    proc = run_cli(["run", "--max-tokens", "0"], cwd=tmp_path)
    assert proc.returncode == 2 and "--max-tokens: must be at least 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr
