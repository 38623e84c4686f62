"""Reading the images of a chat request: base64 data URLs decoded, http(s) URLs downloaded.

``image_url.url`` is a base64 data URL or an http(s) URL (OpenAI image input guide,
https://platform.openai.com/docs/guides/images-vision); an image that cannot be decoded or
downloaded is refused as OpenAI refuses it (400 ``invalid_image_format`` or
``invalid_image_url``, "Error while downloading ...").
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl

import httpx

from conformance.reference import images
from conformance.reference.envelopes import ApiError


class ImageReader:
    """Reads the images of one request (each URL once)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    async def color(self, url: str) -> str:
        """Decode (or download) one image and name its dominant colour."""
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
            color = await _download_color(url)
        else:
            raise ApiError(400, "Invalid image URL: the URL must be an http(s) URL or a base64 "
                           "data URL.", code="invalid_image_url")
        self._cache[url] = color
        return color


def _shown(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


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
        # Generous: in the self-tests one busy server downloads its own assets for ~100
        # providers at once, and its event loop may lag several seconds behind.
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
