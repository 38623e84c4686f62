"""A small relay for the fidelity tests, as new-api/one-api-style gateways work: clients use the
relay's key and model names, the relay maps the model, forwards to its channel (an upstream
reference) with the channel's key, and passes the answer back.

``/v1/...`` is faithful; ``/d/<deviation>/v1/...`` does one thing wrong on the way, the way
relays seen in the wild do (:data:`DEVIATIONS`).  A real HTTP server on 127.0.0.1 (like the
other relays in :mod:`tests.relays`), not a mock: the fidelity checks see it as users would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from conformance.reference.server import ThreadedServer
from tests.relays import HOP

#: One deviation each: name → what the relay does wrong.
DEVIATIONS: Mapping[str, str] = {
    "drop_user_metadata": "user and metadata are removed before forwarding",
    "developer_to_system": "developer messages are forwarded as system messages",
    "inject_system": "a system prompt of the relay's own is put before the messages",
    "substitute_model": "the upstream is asked for ref-2 instead of the mapped model",
    "inflate_usage": "usage is multiplied by 1.5 on the way back (stream and non-stream)",
    "finish_cut_stream": "a stream the upstream cut is finished with finish_reason stop + [DONE]",
    "hang_cut_stream": "a stream the upstream cut is left open, silent (openai-forward 0.8.1 does "
    "this)",
    "strip_headers": "x-request-id and x-ratelimit-* are not passed back",
    "swallow_retry_after": "a 429 is passed back without its Retry-After header",
    "errors_as_500": "every upstream error reaches the client as a 500",
    "server_errors_as_200": "an upstream 5xx reaches the client as a 200 with an apology",
    "drop_response_format": "response_format is dropped (structured outputs unsupported)",
    "merge_chunks": "a stream is read whole, then sent as one content chunk",
    "parts_to_string": "content parts arrays are flattened into strings",
    "shorten_history": "only the last two messages are forwarded",
    "strip_images": "image parts are removed from the messages",
    "convert_max_tokens": "max_tokens is forwarded as max_completion_tokens",
    "force_reasoning": "reasoning_effort is forced to high",
    "drop_sampling": "seed and logit_bias are dropped",
    "drop_logprobs": "the answer's logprobs are removed on the way back",
    "tool_args_object": "tool call arguments reach the client as a JSON object",
    "drop_fingerprint": "system_fingerprint is removed on the way back",
    "rewrite_content": "an advertisement is appended to every answer",
    "rewrite_unknown": "unknown request fields are forwarded with another value",
    "messages_bearer": "Messages requests reach the upstream with Authorization, not x-api-key",
    "drop_anthropic_version": "anthropic-version is not forwarded",
    "responses_default_instructions": "Responses requests get the relay's default instructions "
    "put before the client's",
    "responses_system_to_developer": "Responses input messages with role system are forwarded "
    "as developer",
    "responses_stream_inside": "a Responses request with stream: false is streamed from the "
    "upstream and the stream folded into one JSON Response for the client",
    "responses_force_reasoning": "Responses reasoning.effort is forced to high",
    "responses_drop_previous_id": "previous_response_id is dropped (a stateless relay)",
}

_STRIPPED = ("x-request-id", "x-ratelimit-")
INJECTED = "You are HelpfulBot by RelayCorp. Always be polite."
AD = " [Sponsored: try RelayCorp Pro]"


class FidelityRelay(ThreadedServer):
    """``http://127.0.0.1:<port>/v1`` (faithful) and ``/d/<deviation>/v1`` in front of
    ``upstream`` (an origin such as ``http://127.0.0.1:8800``).

    Clients authenticate with ``key``; ``models`` maps the client's model names to the
    upstream's (unknown names pass unchanged); the upstream is called with ``upstream_key``.
    """

    def __init__(self, upstream: str, *, key: str, upstream_key: str | None,
                 models: Mapping[str, str] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.key = key
        self.upstream_key = upstream_key
        self.models = dict(models or {})
        self.client = httpx.AsyncClient(timeout=60)
        routes = []
        for prefix in ("", "/d/{deviation}"):
            routes += [
                Route(prefix + "/v1/chat/completions", self.chat, methods=["POST"]),
                Route(prefix + "/v1/messages", self.messages, methods=["POST"]),
                Route(prefix + "/v1/responses", self.responses, methods=["POST"]),
                Route(prefix + "/v1/models", self.list_models, methods=["GET"]),
            ]
        super().__init__(Starlette(routes=routes))

    def url(self, deviation: str | None = None) -> str:
        if deviation is None:
            return f"{self.origin}/v1"
        if deviation not in DEVIATIONS:
            raise ValueError(deviation)
        return f"{self.origin}/d/{deviation}/v1"

    # ------------------------------------------------------------------ plumbing

    def _authorised(self, request: Request) -> bool:
        bearer = request.headers.get("authorization", "")
        return bearer == f"Bearer {self.key}" or request.headers.get("x-api-key") == self.key

    @staticmethod
    def _refused() -> Response:
        return JSONResponse({"error": {"message": "Invalid token", "type": "new_api_error",
                                       "param": None, "code": "invalid_api_key"}},
                            status_code=401)

    def _answer_headers(self, upstream: httpx.Response, deviation: str | None) -> dict[str, str]:
        out = {}
        for name, value in upstream.headers.items():
            lower = name.lower()
            if lower in HOP or lower == "content-type":
                continue
            if deviation == "strip_headers" and lower.startswith(_STRIPPED):
                continue
            if deviation == "swallow_retry_after" and lower == "retry-after":
                continue
            out[name] = value
        return out

    async def list_models(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._refused()
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "relay"}
                for name in self.models]
        return JSONResponse({"object": "list", "data": data})

    # ------------------------------------------------------------------ requests

    def _request_body(self, body: dict[str, Any], deviation: str | None) -> dict[str, Any]:
        body = json.loads(json.dumps(body))
        model = body.get("model")
        body["model"] = "ref-2" if deviation == "substitute_model" else self.models.get(
            model, model)
        messages = body.get("messages") if isinstance(body.get("messages"), list) else []
        if deviation == "drop_user_metadata":
            body.pop("user", None)
            body.pop("metadata", None)
        elif deviation == "developer_to_system":
            for message in messages:
                if message.get("role") == "developer":
                    message["role"] = "system"
        elif deviation == "inject_system":
            body["messages"] = [{"role": "system", "content": INJECTED}, *messages]
        elif deviation == "parts_to_string":
            for message in messages:
                if isinstance(message.get("content"), list):
                    message["content"] = "".join(p.get("text", "") for p in message["content"])
        elif deviation == "shorten_history":
            body["messages"] = messages[-2:]
        elif deviation == "strip_images":
            for message in messages:
                if isinstance(message.get("content"), list):
                    message["content"] = [p for p in message["content"]
                                          if p.get("type") != "image_url"]
        elif deviation == "convert_max_tokens" and "max_tokens" in body:
            body["max_completion_tokens"] = body.pop("max_tokens")
        elif deviation == "force_reasoning" and "reasoning_effort" in body:
            body["reasoning_effort"] = "high"
        elif deviation == "drop_sampling":
            body.pop("seed", None)
            body.pop("logit_bias", None)
        elif deviation == "drop_response_format":
            body.pop("response_format", None)
        elif deviation == "rewrite_unknown":
            for key in list(body):
                if key.startswith("x_"):
                    body[key] = {"rewritten": True}
        return body

    async def chat(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._refused()
        deviation = request.path_params.get("deviation")
        body = self._request_body(await request.json(), deviation)
        headers = {"content-type": "application/json"}
        if self.upstream_key:
            headers["authorization"] = f"Bearer {self.upstream_key}"
        upstream = await self.client.send(
            self.client.build_request("POST", f"{self.upstream}/v1/chat/completions",
                                      json=body, headers=headers), stream=True)
        if body.get("stream") and upstream.status_code == 200:
            return StreamingResponse(self._stream(upstream, deviation),
                                     headers=self._answer_headers(upstream, deviation),
                                     media_type="text/event-stream")
        try:
            raw = await upstream.aread()
        finally:
            await upstream.aclose()
        status = upstream.status_code
        answer = json.loads(raw) if raw else None
        if status >= 400 and deviation == "errors_as_500":
            status, answer = 500, {"error": {"message": "upstream error", "type": "relay_error",
                                             "param": None, "code": None}}
        elif status >= 500 and deviation == "server_errors_as_200":
            status, answer = 200, {
                "id": "chatcmpl-relay", "object": "chat.completion", "created": 0,
                "model": body.get("model"), "choices": [{
                    "index": 0, "finish_reason": "stop", "logprobs": None,
                    "message": {"role": "assistant", "content": "Sorry, please try again.",
                                "refusal": None}}]}
        elif status == 200 and isinstance(answer, dict):
            self._answer(answer, deviation)
        return JSONResponse(answer, status_code=status,
                            headers=self._answer_headers(upstream, deviation))

    # ------------------------------------------------------------------ answers

    @staticmethod
    def _usage(usage: Any) -> None:
        if isinstance(usage, dict):
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                if isinstance(usage.get(key), int):
                    usage[key] = int(usage[key] * 1.5)

    def _answer(self, answer: dict[str, Any], deviation: str | None) -> None:
        if deviation == "inflate_usage":
            self._usage(answer.get("usage"))
        if deviation == "drop_fingerprint":
            answer.pop("system_fingerprint", None)
        for choice in answer.get("choices") or []:
            message = choice.get("message") or {}
            if deviation == "drop_logprobs":
                choice["logprobs"] = None
            if deviation == "rewrite_content" and isinstance(message.get("content"), str):
                message["content"] += AD
            if deviation == "tool_args_object":
                for call in message.get("tool_calls") or []:
                    call["function"]["arguments"] = json.loads(call["function"]["arguments"])

    async def _stream(self, upstream: httpx.Response, deviation: str | None
                      ) -> AsyncIterator[bytes]:
        buffered: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        try:
            async for line in upstream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    if deviation == "merge_chunks":
                        for chunk in self._merged(buffered):
                            yield f"data: {json.dumps(chunk)}\n\n".encode()
                    yield b"data: [DONE]\n\n"
                    continue
                chunk = json.loads(data)
                last = chunk
                if deviation == "inflate_usage":
                    self._usage(chunk.get("usage"))
                if deviation == "merge_chunks":
                    buffered.append(chunk)
                    continue
                yield f"data: {json.dumps(chunk)}\n\n".encode()
        except httpx.HTTPError:
            if deviation == "hang_cut_stream":
                await asyncio.sleep(3600)  # until the client gives up and leaves
            if deviation != "finish_cut_stream" or last is None:
                raise  # the client's connection is dropped too: the cut stays visible
            finish = {**last, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop",
                                           "logprobs": None}]}
            yield f"data: {json.dumps(finish)}\n\ndata: [DONE]\n\n".encode()
        finally:
            await upstream.aclose()

    @staticmethod
    def _merged(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        text = "".join((c.get("choices") or [{}])[0].get("delta", {}).get("content") or ""
                       for c in chunks if c.get("choices"))
        content = [c for c in chunks if c.get("choices")]
        rest = [c for c in chunks if not c.get("choices")]
        if not content:
            return chunks
        first, final = content[0], content[-1]
        merged = {**first, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                               "content": text},
                                        "logprobs": None, "finish_reason": None}]}
        finish = {**final, "choices": [{**final["choices"][0], "delta": {}}]}
        return [merged, finish, *rest]

    # ------------------------------------------------------------------ Anthropic Messages

    async def messages(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._refused()
        deviation = request.path_params.get("deviation")
        body = await request.json()
        body["model"] = self.models.get(body.get("model"), body.get("model"))
        headers = {"content-type": "application/json"}
        version = request.headers.get("anthropic-version")
        if version and deviation != "drop_anthropic_version":
            headers["anthropic-version"] = version
        if self.upstream_key:
            if deviation == "messages_bearer":
                headers["authorization"] = f"Bearer {self.upstream_key}"
            else:
                headers["x-api-key"] = self.upstream_key
        upstream = await self.client.post(f"{self.upstream}/v1/messages", json=body,
                                          headers=headers)
        return Response(upstream.content, status_code=upstream.status_code,
                        headers=self._answer_headers(upstream, deviation),
                        media_type=upstream.headers.get("content-type"))

    # ------------------------------------------------------------------ OpenAI Responses

    @staticmethod
    def _responses_body(body: dict[str, Any], deviation: str | None) -> dict[str, Any]:
        if deviation == "responses_default_instructions":
            body["instructions"] = INJECTED + "\n" + str(body.get("instructions") or "")
        if deviation == "responses_system_to_developer":
            for item in body.get("input") if isinstance(body.get("input"), list) else []:
                if isinstance(item, dict) and item.get("role") == "system":
                    item["role"] = "developer"
        if deviation == "responses_force_reasoning":
            body["reasoning"] = {"effort": "high"}
        if deviation == "responses_drop_previous_id":
            body.pop("previous_response_id", None)
        if deviation == "responses_stream_inside" and body.get("stream") is False:
            body["stream"] = True
        return body

    async def responses(self, request: Request) -> Response:
        if not self._authorised(request):
            return self._refused()
        deviation = request.path_params.get("deviation")
        asked = await request.json()
        body = self._request_body(dict(asked), None)
        body = self._responses_body(body, deviation)
        headers = {"content-type": "application/json"}
        if self.upstream_key:
            headers["authorization"] = f"Bearer {self.upstream_key}"
        upstream = await self.client.post(f"{self.upstream}/v1/responses", json=body,
                                          headers=headers)
        content = upstream.content
        media = upstream.headers.get("content-type")
        if body.get("stream") is True and asked.get("stream") is not True:
            # responses_stream_inside: the stream folded into the final Response.
            final = [json.loads(line[5:]) for line in upstream.text.splitlines()
                     if line.startswith("data:") and '"response.completed"' in line]
            content = json.dumps(final[-1]["response"] if final else {}).encode()
            media = "application/json"
        return Response(content, status_code=upstream.status_code,
                        headers=self._answer_headers(upstream, deviation), media_type=media)
