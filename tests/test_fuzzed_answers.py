"""A provider whose answers have values of the wrong JSON type gets verdicts, not suite faults.

Every check reads fields of what a provider sent; the official schemas say what type each
has, a hostile or broken provider sends another (``"index": [1]``, ``"delta": true``,
``"choices": 1.5``, a model list holding ``[null]``). The checks must judge that (a ``fail``,
or ``unsupported``/``skip`` where their rules say so); a ``TypeError`` inside a check would be
an ``error`` the provider did not earn, and one inside a renderer a traceback instead of a
summary. Nor may a lying status code, Content-Type or Content-Encoding, a cut body, or a
stream with an event duplicated, swapped, dropped or foreign. :mod:`tests.fuzz_relay` does
both, reproducibly per seed; this runs the whole suite against sixteen seeds of each, for
gpt-4o-mini with the reference as the recording upstream, so every family is judged.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from conformance.reference.server import ReferenceServer
from tests.conftest import KEY_ENV, RunOutput, external, run_suite, write_providers
from tests.fuzz_relay import FuzzRelay, mutate

SEEDS = [f"s{i}" for i in range(16)]


@pytest.fixture(scope="module")
def fuzz_run(reference_server: ReferenceServer, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[RunOutput]:
    base = tmp_path_factory.mktemp("fuzz")
    with FuzzRelay(reference_server.base_url) as relay:
        # gpt-4o-mini (the reference bills it with its real tokenizer) and the reference as
        # the upstream: the billing and fidelity families are judged too
        providers = write_providers(base / "providers.yaml", [
            external(f"{name}-{seed}", relay.url(seed, framing=framing), model="gpt-4o-mini",
                     upstream={"url": reference_server.origin,
                               "api_key": "${" + KEY_ENV + "}"})
            for seed in SEEDS for name, framing in (("values", False), ("framing", True))])
        yield run_suite(providers, base / "report")


def test_the_run_ends_normally_with_its_summary(fuzz_run: RunOutput) -> None:
    console = fuzz_run.stdout + fuzz_run.stderr
    assert fuzz_run.returncode == 0, console[-3000:]
    assert "Traceback" not in console and "INTERNALERROR" not in console, console[-3000:]
    assert "conformance: could not" not in console, console[-3000:]  # a report or the summary
    assert "score = pass" in fuzz_run.stdout  # the terminal summary was shown


def test_every_check_has_a_verdict_and_none_is_a_suite_fault(fuzz_run: RunOutput) -> None:
    outcomes = fuzz_run.outcomes()
    assert len(outcomes) == 2 * len(SEEDS) * len({c for _, c in outcomes})
    faults = {f"{p} {c}: {m}" for (p, c), (o, m) in outcomes.items() if o == "error"}
    assert not faults, sorted(faults)
    # not vacuous: the relay did change answers, and the checks judged them
    assert sum(o == "fail" for o, _ in outcomes.values()) > len(SEEDS) * 20
    assert sum(o == "pass" for o, _ in outcomes.values()) > len(SEEDS) * 20


def test_a_seed_changes_the_same_values_every_time() -> None:
    def changed(seed: str) -> object:
        return mutate({"choices": [{"index": 0, "delta": {"content": "x"}}], "id": "c"},
                      random.Random(seed))

    assert changed("a") == changed("a")
    assert any(changed("a") != changed(s) for s in "bcdef")
