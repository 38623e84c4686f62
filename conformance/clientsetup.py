"""What the providers' HTTP clients share, set up once per process: httpcore imported
without trio, and the TLS contexts.

httpx imports httpcore on its first client, and httpcore imports trio whenever it is
installed (a test dependency of selenium, ~0.2 s) for a backend the suite never uses: it runs
on asyncio.  :func:`import_httpcore` imports httpcore with trio hidden for that one import; a
later ``import trio`` (a user's plugin) works as usual.

``httpx.AsyncClient()`` builds a fresh ``ssl.SSLContext`` and loads the CA bundle into it
(~0.1 s of CPU each), which made the first request of a one-check run and each of a hundred
providers pay for it.  Every client gets one of these two instead:

- :func:`verified` — httpx's default (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``),
  built on first use and shared: an https provider, or any client when a proxy is configured
  in the environment (``HTTPS_PROXY``, ...: httpx's proxy transports take the same context);
- :func:`never_used` — for a plain-http base URL without a proxy: the client follows no
  redirect, so it never opens TLS; the context loads no CA, so if it ever were used it would
  reject every certificate (it fails closed, never open).

The provider clients send through the suite's own pool (:mod:`conformance.connections`); an
``httpx.AsyncClient`` given a transport of its own reads no proxy from the environment, so
:func:`proxy_mounts` builds the proxy transports httpx would have mounted (``HTTP_PROXY``,
``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, by httpx's own reading of them).

Each time httpcore's pool (a proxy transport's) assigns a request it asks every idle
connection whether its socket is readable (the server closed it); through anyio each answer
built a table of the socket's attributes first (~15 % of the engine's CPU with 32 connections
a provider).
:func:`quick_readable` gives a client's pools a network backend whose streams answer from the
socket they remember, the same test (``poll``) without the table.

After every response httpx hands its cookie store urllib adapters of the request and the
response, and ``http.cookiejar`` then looks for ``Set-Cookie`` in them (~15 µs a response;
py-spy sampled ~6 % of the engine thread there; almost no response sets a cookie).
:func:`quick_cookies` gives a client a store that looks for the header first: the same
cookies are kept and sent.
"""

from __future__ import annotations

import functools
import os
import select
import socket
import ssl
import sys
import typing

import httpx

#: The variables httpx takes proxies from (``trust_env``). Looked up one by one: iterating
#: ``os.environ`` on the engine thread races with pytest setting ``PYTEST_CURRENT_TEST``.
PROXY_VARS = ("https_proxy", "http_proxy", "all_proxy", "HTTPS_PROXY", "HTTP_PROXY",
              "ALL_PROXY")


def import_httpcore() -> None:
    """Import httpcore, unless already imported, with ``import trio`` failing meanwhile."""
    if "httpcore" in sys.modules or "trio" in sys.modules:
        return
    sys.modules["trio"] = None  # type: ignore[assignment]  # makes `import trio` raise
    try:
        import httpcore  # noqa: F401
    finally:
        if sys.modules.get("trio", False) is None:
            del sys.modules["trio"]


import_httpcore()

import httpcore  # noqa: E402  (after import_httpcore: without trio)


@functools.cache
def verified() -> ssl.SSLContext:
    """httpx's default verifying context, built once per process."""
    return httpx.create_ssl_context()


@functools.cache
def never_used() -> ssl.SSLContext:
    """A verifying context without trust anchors (hostname check on, certificates required)."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def context_for(base_url: str) -> ssl.SSLContext:
    """The context a client of ``base_url`` needs (see the module docstring)."""
    if base_url.lower().startswith("https:") or any(os.environ.get(n) for n in PROXY_VARS):
        return verified()
    return never_used()


def proxy_mounts(verify: ssl.SSLContext, limits: httpx.Limits
                 ) -> dict[str, httpx.AsyncBaseTransport | None]:
    """URL pattern → the proxy transport (None: no proxy) for the proxies the environment
    names, as ``httpx.AsyncClient(trust_env=True)`` mounts them; {} when it names none (the
    common case reads no more than :data:`PROXY_VARS`)."""
    if not any(os.environ.get(name) for name in PROXY_VARS):
        return {}
    from httpx._utils import get_environment_proxies  # what the client itself would call

    proxies: dict[str, str | None] = {}
    for _attempt in range(3):
        try:  # it iterates os.environ, which pytest changes between items
            proxies = get_environment_proxies()
            break
        except RuntimeError:  # pragma: no cover  (dictionary changed size during iteration)
            continue
    return {pattern: None if url is None else
            httpx.AsyncHTTPTransport(proxy=url, verify=verify, limits=limits)
            for pattern, url in proxies.items()}


def _readable(sock: socket.socket | None) -> bool:
    """Whether a read would return at once (data, or the end a closed connection gives);
    httpcore's own test: a socket that is gone counts as readable."""
    fd = None if sock is None else sock.fileno()
    if fd is None or fd < 0:
        return True
    if getattr(select, "poll", None) is None:  # pragma: no cover  (not on Linux)
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    """A backend's stream that answers ``is_readable`` from the socket it remembers."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


class QuickReadable(httpcore.AsyncNetworkBackend):
    """A network backend whose streams are :class:`_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable[typing.Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address,
                                                     socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[typing.Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def quick_readable(client: httpx.AsyncClient) -> None:
    """Give the connection pools of ``client`` (its transport and the proxy mounts) a
    :class:`QuickReadable` backend.  A transport of another kind (a test's) is left alone,
    and so is a pool of an httpcore that keeps its backend elsewhere: only slower."""
    transports = [getattr(client, "_transport", None),
                  *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if isinstance(backend, httpcore.AsyncNetworkBackend) and \
                not isinstance(backend, QuickReadable):
            pool._network_backend = QuickReadable(backend)  # type: ignore[union-attr]


class QuickCookies(httpx.Cookies):
    """httpx's cookie store, storing exactly what it stores: a response without a
    ``Set-Cookie`` (or RFC 2965 ``Set-Cookie2``) header, from which ``http.cookiejar`` stores
    nothing, skips the urllib adapters."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


def quick_cookies(client: httpx.AsyncClient) -> None:
    """Give ``client`` a :class:`QuickCookies` store holding its current cookies (httpx's
    ``client.cookies = ...`` setter would wrap it back into a plain ``httpx.Cookies``)."""
    if type(getattr(client, "_cookies", None)) is httpx.Cookies:
        store = QuickCookies()
        store.jar = client.cookies.jar
        client._cookies = store
