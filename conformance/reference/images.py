"""Images for the reference provider: solid test images, decoding, dominant colour.

Vision input follows the OpenAI image input guide (https://platform.openai.com/docs/guides/images-vision):
``image_url.url`` is a base64 data URL or an http(s) URL of a PNG, JPEG, WEBP or non-animated
GIF. The suite reuses :data:`COLORS`, :func:`solid_png` and :func:`solid_jpeg` to build its probes.
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import functools
import io
import re
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

from PIL import Image, UnidentifiedImageError

COLORS: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "red": (230, 25, 25),
    "green": (30, 160, 50),
    "blue": (30, 60, 220),
    "yellow": (250, 220, 20),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "orange": (250, 140, 0),
    "purple": (130, 40, 170),
    "gray": (128, 128, 128),
})

#: Formats the reference model accepts, as OpenAI lists them.
ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?),(?P<data>.*)",
                       re.S)


class ImageError(ValueError):
    """The bytes are not an image the model can read."""


def _solid(rgb: tuple[int, int, int], size: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def solid_png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A ``size`` x ``size`` PNG filled with ``rgb``."""
    return _solid(rgb, size, "PNG")


def solid_jpeg(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    """A ``size`` x ``size`` JPEG filled with ``rgb``."""
    return _solid(rgb, size, "JPEG")


def data_url(data: bytes, mime: str = "image/png") -> str:
    """``data:<mime>;base64,<data>``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> bytes:
    """The payload of a base64 ``data:image/...`` URL; :class:`ImageError` otherwise."""
    match = _DATA_URL.fullmatch(url.strip())
    if not match:
        raise ImageError("not a data URL")
    mime = (match.group("mime") or "").lower()
    if not mime.startswith("image/"):
        raise ImageError(f"unsupported MIME type {mime or 'none'!r}")
    if ";base64" not in match.group("params").lower():
        raise ImageError("the data URL is not base64-encoded")
    try:
        return base64.b64decode(re.sub(r"\s+", "", match.group("data")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError("invalid base64 data") from exc


def _classify(rgb: tuple[int, int, int]) -> str:
    """Name one pixel's colour by hue, saturation and value."""
    hue, sat, val = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    if val < 0.2:
        return "black"
    if sat < 0.25:
        if val > 0.85:
            return "white"
        return "gray" if val > 0.3 else "black"
    degrees = hue * 360
    for upper, name in ((15, "red"), (42, "orange"), (70, "yellow"), (165, "green"),
                        (255, "blue"), (335, "purple")):
        if degrees < upper:
            return name
    return "red"


def dominant_color(data: bytes) -> str:
    """The majority colour name of an encoded image; :class:`ImageError` if undecodable."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError("image larger than 20 MB")
    try:
        with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
            image.load()
            small = image.convert("RGB").resize((24, 24))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as exc:
        raise ImageError("the bytes are not a decodable PNG, JPEG, GIF or WEBP image") from exc
    raw = small.tobytes()
    votes = Counter(_classify((raw[i], raw[i + 1], raw[i + 2])) for i in range(0, len(raw), 3))
    return votes.most_common(1)[0][0]


#: What ``GET /assets/not-an-image.png`` serves (text/plain): a URL that is not an image.
NOT_AN_IMAGE = b"this is not an image"


@functools.lru_cache(maxsize=64)
def asset(path: str) -> tuple[bytes, str] | None:
    """The reference's own asset at ``path`` (``/assets/color/<name>.png|.jpg|.jpeg`` or
    ``/assets/not-an-image.png``) as (bytes, media type), or None when there is none."""
    if path == "/assets/not-an-image.png":
        return NOT_AN_IMAGE, "text/plain; charset=utf-8"
    directory, _, file = path.rpartition("/")
    name, _, ext = file.rpartition(".")
    rgb = COLORS.get(name)
    if directory != "/assets/color" or rgb is None or ext not in ("png", "jpg", "jpeg"):
        return None
    if ext == "png":
        return solid_png(rgb), "image/png"
    return solid_jpeg(rgb), "image/jpeg"
