"""Errors of the reference provider and how they are rendered.

An :class:`ApiError` is answered with OpenAI's error envelope
(``{"error": {"message", "type", "param", "code"}}``, API reference "Error codes",
https://platform.openai.com/docs/guides/error-codes), or on ``/v1/messages`` with Anthropic's
error body (https://docs.anthropic.com/en/api/errors), applying the error-shape faults of
:mod:`conformance.reference.faults` (``errors_as_html``, ``error_in_200``, ``envelope_minimal``
and the like), each at one place in :func:`render_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from conformance.reference import messages
from conformance.reference.faults import Variant

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with "
    "blank username) if you're accessing the API from your browser and are prompted for a "
    "username and password. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent "
    "was not valid JSON. If you have trouble figuring out how to fix this, please contact us "
    "through our help center at help.openai.com.)"
)


class ApiError(Exception):
    """An error answered with the OpenAI envelope (or a deliberately broken replacement).

    ``body``, ``html`` and ``plain`` replace the envelope with that body; ``headers`` are sent
    with the answer (a 429 without them gets ``Retry-After: 0``).
    """

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None, *,
                 body: dict[str, Any] | None = None, html: str | None = None,
                 plain: str | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code
        self.body = body
        self.html = html
        self.plain = plain
        self.headers = headers


def mask_key(key: str) -> str:
    """Mask a presented key as OpenAI does: a few leading characters, ``...``, the last 4."""
    if len(key) < 12:
        return "*" * len(key)
    return f"{key[:3]}...{key[-4:]}"


def render_error(err: ApiError, variant: Variant, *, api_key: str | None,
                 anthropic: bool = False) -> Response:
    """Render an error (OpenAI's envelope, or Anthropic's error body for ``anthropic``
    endpoints), applying the error-shape faults; ``api_key`` is what ``echo_key`` leaks."""
    if "errors_as_html" in variant:
        return HTMLResponse(f"<html><body><h1>{err.status} Error</h1></body></html>",
                            err.status)
    if err.html is not None:
        return HTMLResponse(err.html, err.status)
    if err.plain is not None:
        return PlainTextResponse(err.plain, err.status)
    if err.body is not None:
        body = err.body
    else:
        message = err.message
        if "echo_key" in variant and 400 <= err.status < 500:
            message += f" (key: {api_key})"
        error: dict[str, Any] = {"message": message, "type": err.type, "param": err.param,
                                 "code": err.code}
        if "envelope_minimal" in variant:
            del error["param"], error["code"]
        if "error_code_is_status" in variant:
            error["code"] = str(err.status)
        if "error_type_renamed" in variant:
            error["type"] = {401: "auth_error", 429: "throttling_error"}.get(
                err.status, "invalid_request" if err.status < 500 else err.type)
        if "error_param_none_string" in variant and "param" in error \
                and error["param"] is None:
            error["param"] = "None"
        body = {"error": error}
        if anthropic and "messages_errors_openai_envelope" not in variant:
            body = messages.error_body(err.status, message)
    status = 200 if "error_in_200" in variant else err.status
    headers = dict(err.headers) if err.headers is not None else None
    if headers is None and err.status == 429:
        headers = {"retry-after": "0"}
    return JSONResponse(body, status, headers=headers)
