"""models: GET /models and GET /models/{model} (OpenAI API reference, "Models")."""

from __future__ import annotations

import re
from typing import Any

from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    MODEL_MISSING,
    ModelUnavailable,
    check_out_of_credit,
    describe,
    error_envelope,
    expect_no_bom,
    expect_schema,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, Unsupported
from conformance.exchange import Exchange

_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(\d{4}-\d{2}-\d{2}|\d{4}|\d{8})$")


def same_model(requested: str, answered: str) -> bool:
    """True when ``answered`` is ``requested`` or a dated snapshot of it (either way round).

    OpenAI answers ``gpt-4o`` requests as ``gpt-4o-2024-08-06``; relays often list snapshots.
    Provider prefixes such as ``openai/gpt-4o`` are compared on their last segment.
    """
    def norm(name: str) -> str:
        name = name.strip().lower()
        return name.rsplit("/", 1)[-1]

    a, b = norm(requested), norm(answered)
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        m = _SNAPSHOT.match(y)
        if m and m.group("base") == x:
            return True
    return False


async def _list(ctx: CheckContext) -> tuple[list[str], Exchange]:
    """The model ids of GET /models and its exchange (one request, shared by the checks that
    read it and by the engine's preflight)."""
    exchange = await ctx.get("/models", share=True)
    if not exchange.ok:
        check_out_of_credit(exchange, "GET /models")
        envelope = error_envelope(exchange)
        if exchange.status == 404 and envelope is not None:
            raise Unsupported(f"GET /models declined: HTTP 404 {snippet(envelope['message'])}")
        raise Failure(f"GET /models: expected HTTP 200, got {describe(exchange)}")
    expect_schema("models.list", exchange.json, "GET /models")
    data = exchange.json["data"]
    return [m["id"] for m in data], exchange


@check(
    "models.list",
    severity="breaks-clients",
    title="GET /models returns a model list",
    spec="GET /models → ListModelsResponse",
    proves="The models endpoint answers 200 with {object: 'list', data: [Model...]} (without a "
    "byte order mark) and every entry has id, object 'model', created and owned_by, as the "
    "schema requires.",
)
async def models_list(ctx: CheckContext) -> str:
    ids, exchange = await _list(ctx)
    expect_no_bom(exchange, "GET /models")
    if not ids:
        raise Failure("GET /models returned an empty data list")
    return f"{len(ids)} models listed"


@check(
    "models.lists_configured",
    severity="degrades",
    title="The configured model is listed",
    spec="GET /models → ListModelsResponse.data[].id",
    proves="The model this provider is tested with appears in its own /models list (exactly, "
    "or as a dated snapshot of it), so clients that discover models find it.",
)
async def models_lists_configured(ctx: CheckContext) -> str:
    ids, _ = await _list(ctx)
    found = [i for i in ids if same_model(ctx.model, i)]
    if not found:
        sample = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
        raise Failure(f"model {ctx.model!r} is not in GET /models ({len(ids)} ids: {sample})")
    return f"listed as {found[0]!r}"


@check(
    "models.retrieve",
    severity="cosmetic",
    title="GET /models/{model} returns the model",
    spec="GET /models/{model} → Model",
    proves="Retrieving the configured model answers 200 with a Model object whose id is the "
    "model (or its dated snapshot); a 404 with an error envelope counts as declined, unless "
    "it says a model that GET /models lists does not exist.",
)
async def models_retrieve(ctx: CheckContext) -> str:
    exchange = await ctx.get(f"/models/{ctx.model}")
    if not exchange.ok:
        check_out_of_credit(exchange, f"GET /models/{ctx.model}")
        envelope = error_envelope(exchange)
        if exchange.status == 404 and envelope is not None and _says_missing(envelope):
            await _missing_model(ctx, envelope)
        if exchange.status in (404, 405) and envelope is not None:
            raise Unsupported(
                f"GET /models/{{model}} declined: HTTP {exchange.status} "
                f"{snippet(envelope['message'])}"
            )
        raise Failure(f"GET /models/{ctx.model}: expected HTTP 200, got {describe(exchange)}")
    if not isinstance(exchange.json, dict):
        raise Failure(f"GET /models/{ctx.model}: HTTP {exchange.status} but the body is not a "
                      f"JSON object: {describe(exchange)}")
    expect_schema("model", exchange.json, f"GET /models/{ctx.model}")
    answered = exchange.json["id"]
    if not same_model(ctx.model, answered):
        raise Failure(f"GET /models/{ctx.model} answered a different model {answered!r}")
    return f"id {answered!r}"


def _says_missing(envelope: dict[str, Any]) -> bool:
    """The 404 says the model does not exist (OpenAI's ``model_not_found``), not that the
    route does not ("Invalid URL (GET /v1/models/…)" names the model too)."""
    said = f"{envelope.get('message') or ''} {envelope.get('code') or ''}"
    return bool(MODEL_MISSING.search(said)) and "invalid url" not in said.lower()


async def _missing_model(ctx: CheckContext, envelope: dict[str, Any]) -> None:
    """Whose problem a "model does not exist" is: the provider's when its own GET /models
    lists that very id (it contradicts itself), the user's when it lists neither the id nor a
    snapshot of it (the configured model is missing); undecided when GET /models cannot tell
    or lists only a snapshot (then the 404 is judged as a decline)."""
    try:
        ids, _ = await _list(ctx)
    except (Failure, Unsupported):
        return
    if ctx.model in ids:
        raise Failure(f"GET /models lists {ctx.model!r}, but GET /models/{ctx.model} says it "
                      f"does not exist: HTTP 404 {snippet(envelope['message'])}")
    if any(same_model(ctx.model, i) for i in ids):  # listed as a snapshot only: undecided
        return
    raise ModelUnavailable(f"the model {ctx.model!r} is not available to this key (set model: "
                           f"in providers.yaml or --model): GET /models does not list it and "
                           f"GET /models/{ctx.model} answers HTTP 404 "
                           f"{snippet(envelope['message'], 140)}")
