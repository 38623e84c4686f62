"""auth: requests without a valid API key are refused with 401 and the error envelope
(OpenAI API reference, "Authentication": ``Authorization: Bearer OPENAI_API_KEY``; error code
``invalid_api_key``).  Accepting a wrong key is a security failure: anyone could spend the
account's money.
"""

from __future__ import annotations

from conformance import i18n
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import describe, expect_client_error, snippet
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.exchange import Auth, Exchange

#: Looks like a real key (prefix, length) so format checks alone do not reject it.
WRONG_KEY = "sk-conformance-invalid-00000000000000000000000000000000"


async def attempt(ctx: CheckContext, auth: Auth) -> Exchange:
    """A one-token request sent with ``auth`` instead of the configured key; shared, so
    errors.code_wrong_key reads the same answer as auth.wrong_key."""
    return await ctx.chat(messages=prompts.CAPITAL, max_tokens=1, auth=auth, share=True)


def require_key(ctx: CheckContext) -> str:
    """The configured API key; a provider without one is open by configuration (``skip``)."""
    if not ctx.provider.api_key:
        raise NotApplicable(i18n.NO_KEY)
    return ctx.provider.api_key


def expect_refused(exchange: Exchange, what: str) -> str:
    """A request with bad credentials must be answered 401 with an error envelope; answering
    it is a security failure."""
    if exchange.ok and not (isinstance(exchange.json, dict) and "error" in exchange.json):
        raise Failure(f"SECURITY: {what} was accepted and answered: {describe(exchange)}")
    envelope = expect_client_error(exchange, what, statuses=(401,))
    return f"HTTP 401: {snippet(str(envelope.get('message')), 70)}"


@check(
    "auth.wrong_key",
    severity="security",
    needs_key=False,
    title="A wrong API key is refused with 401",
    spec="Authentication: 401 invalid_api_key",
    proves="A well-formed but wrong bearer token is answered 401 with an error envelope; a "
    "provider that answers it is flagged as a security failure.",
)
async def wrong_key(ctx: CheckContext) -> str:
    require_key(ctx)
    return expect_refused(await attempt(ctx, WRONG_KEY), "a wrong API key")


@check(
    "auth.missing_key",
    severity="security",
    needs_key=False,
    title="A request without an API key is refused with 401",
    spec="Authentication: Authorization: Bearer header required",
    proves="A request with no Authorization header is answered 401 with an error envelope; "
    "answering it is a security failure.",
)
async def missing_key(ctx: CheckContext) -> str:
    require_key(ctx)
    return expect_refused(await attempt(ctx, "none"), "a request without an API key")
