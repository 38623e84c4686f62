"""Reading the images of a chat request: data URLs, the reference's own assets, other URLs.

``image_url.url`` is a base64 data URL or an http(s) URL (OpenAI image input guide,
https://platform.openai.com/docs/guides/images-vision). A URL naming one of the reference's own
``/assets/`` (on any address of this server: the Host the request came to, the socket's own
address, loopback, on the server's port) is read locally, without a network request. Any other
http(s) URL is downloaded only when the server was started on a loopback address; a server
exposed to other hosts (``conformance serve-reference --host 0.0.0.0``) never fetches anything
but its own data and refuses such a URL as OpenAI refuses an image it cannot download
(400 ``invalid_image_url``, "Error while downloading ...").
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import ssl
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from conformance.reference import images
from conformance.reference.envelopes import ApiError

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_UNSPECIFIED = frozenset({"0.0.0.0", "::"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or URL host) is a loopback address or name."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_port(authority: str, default_port: int) -> tuple[str, int] | None:
    """``host[:port]`` (IPv6 in brackets) → (lower-case host, port)."""
    parsed = urlsplit(f"//{authority}")
    try:
        port = parsed.port or default_port
    except ValueError:
        return None
    return (parsed.hostname or "").lower(), port


class ImageReader:
    """Reads the images of one request (each URL once).

    ``fetch_remote`` allows downloads of URLs that are not the server's own; ``server`` is the
    (host, port) of the socket the request arrived on and ``host_header`` the request's Host,
    which together say which URLs are the server's own.
    """

    def __init__(self, fetch_remote: bool, server: tuple[str, int] | None = None,
                 host_header: str | None = None) -> None:
        self.fetch_remote = fetch_remote
        self.own: set[tuple[str, int]] = set()
        self.port = server[1] if server else None
        if server:
            self.own.add((server[0].lower(), server[1]))
        if host_header and self.port is not None:
            found = _host_port(host_header, self.port)
            if found:
                self.own.add(found)
        self._cache: dict[str, str] = {}

    def is_own(self, url: str) -> bool:
        """Whether ``url`` is on this server (then its path is read locally)."""
        parts = urlsplit(url)
        found = _host_port(parts.netloc.rpartition("@")[2],
                           443 if parts.scheme.lower() == "https" else 80)
        if found is None:
            return False
        host, port = found
        if (host, port) in self.own:
            return True
        return port == self.port and (is_loopback(host) or host in _UNSPECIFIED)

    async def color(self, url: str) -> str:
        """Decode (or read, or download) one image and name its dominant colour."""
        if url in self._cache:
            return self._cache[url]
        if url.startswith("data:"):
            try:
                color = await asyncio.to_thread(images.dominant_color,
                                                images.decode_data_url(url))
            except images.ImageError as exc:
                raise ApiError(400, "You uploaded an unsupported image. Please make sure your "
                               "image has of one the following formats: ['png', 'jpeg', 'gif', "
                               f"'webp']. ({exc})", code="invalid_image_format") from exc
        elif re.match(r"https?://", url, re.I):
            if self.is_own(url):
                color = await _own_color(url)
            elif self.fetch_remote:
                color = await _download_color(url)
            else:
                raise ApiError(400, f"Error while downloading {_shown(url)}.",
                               code="invalid_image_url")
        else:
            raise ApiError(400, "Invalid image URL: the URL must be an http(s) URL or a base64 "
                           "data URL.", code="invalid_image_url")
        self._cache[url] = color
        return color


def _shown(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


async def _own_color(url: str) -> str:
    """The colour of one of the server's own assets, read without a network request."""
    found = images.asset(urlsplit(url).path)
    if found is None:
        raise ApiError(400, f"Error while downloading {_shown(url)}.", code="invalid_image_url")
    return await _color_of(url, found[0])


async def _color_of(url: str, data: bytes) -> str:
    try:
        return await asyncio.to_thread(images.dominant_color, data)
    except images.ImageError as exc:
        raise ApiError(400, f"Error while downloading {_shown(url)}: not an image.",
                       code="invalid_image_url") from exc


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every download (building one per client costs ~40 ms)."""
    return ssl.create_default_context()


async def _download_color(url: str) -> str:
    shown = _shown(url)
    try:
        # Generous: in the self-tests one busy server serves images for ~100 providers at
        # once, and its event loop may lag several seconds behind.
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=True,
                                     verify=_tls_context()) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise ApiError(400, f"Error while downloading {shown}.",
                               code="invalid_image_url")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data.extend(chunk)
                if len(data) > images.MAX_IMAGE_BYTES:
                    raise ApiError(400, f"Error while downloading {shown}: larger than 20 MB.",
                                   code="invalid_image_url")
    except httpx.TimeoutException as exc:
        raise ApiError(400, f"Timeout while downloading {shown}.",
                       code="invalid_image_url") from exc
    except httpx.HTTPError as exc:
        raise ApiError(400, f"Error while downloading {shown}.", code="invalid_image_url") from exc
    return await _color_of(url, bytes(data))


def reader_for(fetch_remote: bool, server: Sequence[Any] | None,
               host_header: str | None) -> ImageReader:
    """An :class:`ImageReader` for a request, from its ASGI ``scope["server"]`` and Host."""
    own = None
    if server is not None and len(server) == 2 and isinstance(server[1], int):
        own = (str(server[0]), server[1])
    return ImageReader(fetch_remote, own, host_header)
