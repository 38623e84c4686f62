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
"""

from __future__ import annotations

import functools
import os
import ssl
import sys

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


import_httpcore()
