"""Before a provider's checks: is its host reachable, and is the configured key accepted?

One cheap request per provider (``GET /models`` with the configured key, the request
``models.list`` makes anyway, shared with it) settles both, so that a dead host or a rotated
secret is said once instead of turning into dozens of per-check errors, retry storms or —
worst — ``fail`` verdicts blamed on a good relay:

* no connection, or no answer within the timeouts → every check of the provider is ``error``
  ("cannot reach ...");
* 401/403 → confirmed with one request the provider cannot bill (``messages: []``); refused
  again → every check that needs the key is ``error`` ("the key in APIYI_API_KEY was rejected:
  HTTP 401 ...").  Checks that only send deliberately wrong or missing keys (``auth.*``) still
  run: their verdict does not depend on the configured key;
* 404/405 → the chat route is asked too, with the same unbillable request; 404/405 again,
  and not about the model (a relay answering 404 "model not found" is judged by the checks)
  → there is no OpenAI-compatible API at that path, most likely a base_url without its
  ``/v1``: every check is ``error`` ("no OpenAI-compatible API at ..."), said once, instead
  of a column of ``fail`` blamed on the provider;
* an error status with an HTML page (a CDN's bot challenge, a login page, a proxy's 502
  page) → the chat route is asked too; an HTML error page again → no API answers there
  (``not_an_api``, its page's title quoted): every check is ``error``, the ``auth.*`` ones
  too, instead of fails for a page no API sent — before the key is blamed for a 403;
* anything else (200, a 404 on ``/models`` alone, a JSON 5xx, ...) → the checks run and
  judge it.

This module never imports pytest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from conformance.checks.context import CheckContext, ProviderRuntime
from conformance.checks.expect import describe, error_envelope, snippet
from conformance.checks.registry import Check
from conformance.errors import MalformedAnswer, TransportError
from conformance.exchange import Exchange
from conformance.i18n import KEY_REJECTED, NOT_AN_API, NOT_AN_API_PAGE, UNREACHABLE

ProblemKind = Literal["unreachable", "key_rejected", "not_an_api"]
#: An HTML page's title (what a bot challenge or a proxy's error page is called).
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
#: Words of an error about the model (not the route): a 404 that says them is a verdict.
_MODEL_WORDS = ("model", "模型")


@dataclass(frozen=True)
class ProviderProblem:
    """Why no check of a provider can reach a verdict, said once for all of them."""

    kind: ProblemKind
    message: str
    exchanges: tuple[Exchange, ...]

    def blocks(self, check: Check) -> bool:
        """Whether ``check`` cannot run: nothing runs against an unreachable host or a path
        with no API; with a rejected key, only the checks that never send the configured key
        still run."""
        return self.kind in ("unreachable", "not_an_api") or check.needs_key


async def preflight(runtime: ProviderRuntime) -> ProviderProblem | None:
    """The provider's problem, or None when its checks can run (see the module docstring)."""
    provider = runtime.provider
    ctx = CheckContext(runtime, provider.model)
    try:
        listing = await ctx.request("GET", "/models", share=True)
    except TransportError as exc:
        return _unreachable(exc)
    except MalformedAnswer:  # reachable, answering wrongly: each check judges its own answer
        return None
    not_found = listing.status in (404, 405)
    refused = listing.status in (401, 403) and listing.sent_key
    if not (not_found or refused or _error_page(listing)):
        return None
    # Some gateways guard /models differently from the chat route, and some have no /models:
    # ask the chat route too, with a request no provider can bill (an empty message list is
    # invalid).
    try:
        confirm = await ctx.chat(messages=[], max_tokens=1)
    except TransportError as exc:
        return _unreachable(exc)
    except MalformedAnswer:
        return None
    if not_found:  # a 404 page too: most likely a base_url without its /v1
        return _not_an_api(runtime, listing, confirm)
    if _error_page(listing) and _error_page(confirm):
        return _page(runtime, listing, confirm)
    if not refused or confirm.status not in (401, 403):
        return None
    return ProviderProblem(
        "key_rejected",
        KEY_REJECTED.format(origin=provider.key_origin, why=describe(listing)),
        (listing, confirm),
    )


def _not_an_api(runtime: ProviderRuntime, listing: Exchange,
                confirm: Exchange) -> ProviderProblem | None:
    """The problem when the chat route is not found either, unless its answer is about the
    model (a relay's "model not found" is for the checks to judge)."""
    if confirm.status not in (404, 405):
        return None
    envelope = error_envelope(confirm)
    said = " ".join(str(envelope.get(k) or "") for k in ("message", "code")) if envelope else ""
    if runtime.provider.model in said or any(w in said.lower() for w in _MODEL_WORDS):
        return None
    url = runtime.client.redactor.text(listing.url.removesuffix("/models"))
    return ProviderProblem("not_an_api", NOT_AN_API.format(url=url, status=confirm.status),
                           (listing, confirm))


def _error_page(exchange: Exchange) -> bool:
    """An error status answered with an HTML page, not with any API's error body."""
    return (not exchange.ok and exchange.json is None
            and exchange.content_type in ("text/html", "application/xhtml+xml"))


def _page(runtime: ProviderRuntime, listing: Exchange, confirm: Exchange) -> ProviderProblem:
    """The problem when both answers are HTML error pages: no API answers at that URL."""
    found = _TITLE.search(confirm.text) or _TITLE.search(listing.text)
    title = snippet(" ".join(found.group(1).split()), 60) if found else "no title"
    url = runtime.client.redactor.text(listing.url.removesuffix("/models"))
    return ProviderProblem("not_an_api", NOT_AN_API_PAGE.format(
        url=url, status=confirm.status, title=title), (listing, confirm))


def _unreachable(exc: TransportError) -> ProviderProblem:
    exchange = exc.exchange if isinstance(exc.exchange, Exchange) else None
    return ProviderProblem(
        "unreachable",
        UNREACHABLE.format(error=exc),
        (exchange,) if exchange is not None else (),
    )
