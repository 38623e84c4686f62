"""A provider whose answers begin as HTTP but are not HTTP/1.1 a client can read (RFC 9112):
an illegal header line, conflicting ``Content-Length`` headers, an illegal status line, a head
past 100 KiB, or a chunked body whose framing breaks (judged as a body cut there).  That is
the provider's wrong answer: the checks that read it ``fail`` saying so (docs/CONTRACT.md:
``error`` is "never used for a provider's wrong answer"), none of them is sent twice, and a
provider whose ``GET /models`` is malformed too is not taken for an unreachable host.  The
server is a raw socket server: no framework writes such answers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunOutput, run_suite, write_providers

KEY = "sk-malformed-0123456789abcdef"
COMPLETION = json.dumps({
    "id": "chatcmpl-m", "object": "chat.completion", "created": 0, "model": "gpt-4o-mini",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Paris"}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
MODELS = json.dumps({"object": "list", "data": [
    {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "m"}]}).encode()

#: What is wrong with each variant's head (the body is a valid answer every time).
HEADS = {
    "header_line": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX Bad: 1\r\n",
    "content_length": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 3\r\n",
    "status_line": b"HTTP/1.1 2OO OK\r\nContent-Type: application/json\r\n",
    "huge_head": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 + b"".join(b"Set-Cookie: c%d=%s\r\n" % (i, b"v" * 200) for i in range(600)),
}
#: Answers whose head is fine and whose chunked body's framing breaks (after a first chunk
#: holding half the answer, so nothing a client could use arrived).
FRAMINGS = {
    "chunk_header": lambda body: (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\nzz\r\n%s\r\n0\r\n\r\n"
        % (len(body) // 2, body[:len(body) // 2], body[len(body) // 2:])),
}
MESSAGES = {
    "chunk_header": "HTTP/1.1 framing broken after 133 bytes: illegal chunk header",
    "header_line": "illegal header line",
    "content_length": "conflicting Content-Length headers",
    "status_line": "illegal status line",
    "huge_head": "response head larger than 100 KiB: read stopped",
}


class Handler(socketserver.StreamRequestHandler):
    """``/<variant>/all/v1``: every answer malformed; ``/<variant>/post/v1``: ``GET /models``
    answered properly, every POST malformed."""

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            length = 0
            while (header := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            self.rfile.read(length)
            variant, scope = target.strip("/").split("/")[:2]
            if method == "GET" and scope == "post":
                body = MODELS if target.endswith("/models") else b"{}"
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                continue
            if variant in FRAMINGS:
                self.wfile.write(FRAMINGS[variant](COMPLETION))
                return  # its framing broken, the connection cannot go on
            self.wfile.write(HEADS[variant] + b"Content-Length: %d\r\n\r\n%s"
                             % (len(COMPLETION), COMPLETION))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def malformed_run(origin: str, tmp_path_factory: pytest.TempPathFactory) -> RunOutput:
    tmp: Path = tmp_path_factory.mktemp("malformed")
    providers = write_providers(tmp / "providers.yaml", [
        {"name": f"{variant}-{scope}".replace("_", "-"),
         "base_url": f"{origin}/{variant}/{scope}/v1", "api_key": KEY, "model": "gpt-4o-mini"}
        for variant in [*HEADS, *FRAMINGS] for scope in ("post", "all")])
    return run_suite(providers, tmp / "report")


def test_the_run_ends_normally(malformed_run: RunOutput) -> None:
    assert malformed_run.returncode == 0, malformed_run.stderr[-2000:]


@pytest.mark.parametrize("variant", sorted([*HEADS, *FRAMINGS]))
@pytest.mark.parametrize("scope", ["post", "all"])
def test_a_malformed_answer_fails_the_checks_that_read_it(malformed_run: RunOutput,
                                                          variant: str, scope: str) -> None:
    provider = f"{variant}-{scope}".replace("_", "-")
    outcomes = {check: verdict for (name, check), verdict in malformed_run.outcomes().items()
                if name == provider}
    for check in ("chat.basic", "streaming.done_sentinel", "sdk.completion", "tools.auto"):
        outcome, message = outcomes[check]
        assert outcome == "fail", (check, outcome, message)
        assert MESSAGES[variant] in message, message
        if variant in FRAMINGS:  # read as cut where it broke, never asked for again
            assert "cut" in message and "(the retry too)" not in message, message
        elif variant != "huge_head":
            assert message.startswith("the answer is not HTTP/1.1 a client can read (RFC 9112): ")
    errors = {check: message for check, (outcome, message) in outcomes.items()
              if outcome == "error"}
    assert errors == {}, errors


def test_a_malformed_answer_is_never_sent_again(malformed_run: RunOutput) -> None:
    """Retries are for connections that failed before an answer, not for wrong answers."""
    data = malformed_run.data
    basic = next(r for r in data["results"]
                 if r["check"] == "chat.basic" and r["provider"] == "header-line-post")
    exchanges = basic["evidence"]["exchanges"]
    assert exchanges and all(e.get("attempts", 1) == 1 for e in exchanges), exchanges
    assert "illegal header line" in exchanges[0]["error"]
