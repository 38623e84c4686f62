"""vision: images in user messages reach the model (ChatCompletionRequestMessageContentPartImage:
``{"type": "image_url", "image_url": {"url": <http(s) URL or base64 data URL>, "detail":
auto|low|high}}``; OpenAI images guide: PNG, JPEG, WEBP and non-animated GIF).

The probes are small solid-colour images, so "what colour is this image?" has one answer any
vision model gives.  The colour checks share a control: the same question without an image
must not already produce the colour (a model that guesses it proves nothing), and an answer that
says no image was seen names the deviation.  The relay docs show both forms of ``url`` (51API,
API易, LALC) and ``"detail": "high"`` (API易).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from conformance import i18n
from conformance.checks import prompts
from conformance.checks.context import CheckContext
from conformance.checks.expect import (
    answer_text,
    expect_client_error,
    expect_completion,
    snippet,
)
from conformance.checks.registry import check
from conformance.errors import Failure, NotApplicable
from conformance.reference.images import COLORS, data_url, solid_jpeg, solid_png

COLOR_QUESTION = "What colour is this image? Answer with one word."
TWO_COLORS_QUESTION = "What colours are these two images, in order? Answer with two words."
FEATURE = "image input"
#: Accepted spellings per colour name of :data:`COLORS`.
_SYNONYMS: dict[str, tuple[str, ...]] = {"gray": ("gray", "grey"), "purple": ("purple", "violet")}
#: An answer saying the model got no image ("I cannot see any image", "no image was provided").
_NO_IMAGE = re.compile(
    r"\b(?:can ?not|can'?t|can’t|unable|not able|don'?t|don’t|do not|didn'?t|did not|no|not)\b"
    r"[^.]{0,40}?\b(?:see|view|access|open|analy[sz]e|process|images?|pictures?|attach\w*)\b",
    re.I,
)


def image_part(url: str, detail: str | None = None) -> dict[str, Any]:
    image_url: dict[str, Any] = {"url": url}
    if detail is not None:
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def image_message(question: str, *parts: dict[str, Any]) -> list[dict[str, Any]]:
    """One user message: the question as a text part, then the image parts."""
    return [{"role": "user", "content": [{"type": "text", "text": question}, *parts]}]


def png_url(color: str) -> str:
    return data_url(solid_png(COLORS[color]))


def jpeg_url(color: str) -> str:
    return data_url(solid_jpeg(COLORS[color]), "image/jpeg")


def names_color(text: str, color: str) -> int:
    """Position of the first mention of ``color`` (or a synonym) in ``text``, -1 if none."""
    found = [m.start() for name in _SYNONYMS.get(color, (color,))
             for m in re.finditer(rf"\b{name}\b", text, re.I)]
    return min(found, default=-1)


def color_in_url(url: str) -> str | None:
    """A colour named by the file name of ``url`` (``…/red.png``), if any."""
    stem = urlsplit(url).path.rsplit("/", 1)[-1].lower()
    words = set(re.findall(r"[a-z]+", stem))
    return next((c for c in COLORS if words & set(_SYNONYMS.get(c, (c,)))), None)


async def _control(ctx: CheckContext) -> str:
    """The colour question without any image (shared by the colour checks)."""
    exchange = await ctx.chat(messages=prompts.user(COLOR_QUESTION), max_tokens=prompts.SHORT,
                              share=True)
    return answer_text(expect_completion(exchange))


async def _ask_color(ctx: CheckContext, part: dict[str, Any], color: str | None,
                     what: str) -> str:
    """Ask the colour of one image; ``color`` None: the image's colour is unknown."""
    control = await _control(ctx)
    if color is not None and names_color(control, color) >= 0:
        raise NotApplicable(f"inconclusive: without any image the model already answers "
                            f"{snippet(control, 60)}, so seeing {color!r} proves nothing")
    exchange = await ctx.chat(messages=image_message(COLOR_QUESTION, part),
                              max_tokens=prompts.SHORT)
    text = answer_text(expect_completion(exchange, feature=FEATURE))
    if color is not None and names_color(text, color) >= 0:
        return f"saw {color}: {snippet(text, 40)}"
    if not text.strip() or _NO_IMAGE.search(text):
        raise Failure(f"{what} did not reach the model: it answers {snippet(text, 100)}")
    if color is not None:
        raise Failure(f"{what}: expected the colour {color!r}, got {snippet(text, 100)}")
    if text.strip().lower() == control.strip().lower():
        raise Failure(f"{what}: the answer equals the one without any image "
                      f"({snippet(text, 60)}), so the image was not seen")
    return (f"answered {snippet(text, 40)} (the colour of vision_url is unknown; name it in "
            "the file name, e.g. red.png, for a stricter check)")


@check(
    "vision.data_url",
    severity="breaks-clients",
    title="An image as a base64 data URL is seen",
    spec="ChatCompletionRequestMessageContentPartImage.image_url.url (base64 data URL)",
    proves="A user message with a text part and a data:image/png;base64 image of a solid "
    "green square is answered 'green', while the same question without the image is not "
    "(control), so the image reached the model.",
)
async def data_url_image(ctx: CheckContext) -> str:
    return await _ask_color(ctx, image_part(png_url("green")), "green", "the data-URL image")


@check(
    "vision.image_url",
    severity="breaks-clients",
    title="An image given by http(s) URL is fetched and seen",
    spec="ChatCompletionRequestMessageContentPartImage.image_url.url (http(s) URL)",
    proves="The configured vision_url is sent as image_url.url and the answer names its colour "
    "(taken from its file name, e.g. red.png); for other images the answer must differ from "
    "the no-image control and not say that no image was seen.",
)
async def url_image(ctx: CheckContext) -> str:
    url = ctx.provider.vision_url
    if not url:
        raise NotApplicable(i18n.NO_VISION_URL)
    return await _ask_color(ctx, image_part(url), color_in_url(url), "the image URL")


@check(
    "vision.detail",
    severity="breaks-clients",
    title="image_url.detail is accepted",
    spec="ChatCompletionRequestMessageContentPartImage.image_url.detail (auto | low | high)",
    proves="An image part with detail 'high' (as API易 documents) is accepted and seen: a solid "
    "yellow square is answered 'yellow', so the detail field neither breaks the request nor "
    "makes a relay drop the image.",
)
async def detail(ctx: CheckContext) -> str:
    return await _ask_color(ctx, image_part(png_url("yellow"), "high"), "yellow",
                            "the image with detail 'high'")


@check(
    "vision.multiple_images",
    severity="breaks-clients",
    title="Every image of a message is seen, in order",
    spec="ChatCompletionRequestUserMessage.content (several image parts)",
    proves="Two images in one message (a red PNG, then a blue JPEG) are both seen and kept in "
    "order: the answer names red before blue, so relays do not keep only the first image.",
)
async def multiple_images(ctx: CheckContext) -> str:
    exchange = await ctx.chat(
        messages=image_message(TWO_COLORS_QUESTION, image_part(png_url("red")),
                               image_part(jpeg_url("blue"))),
        max_tokens=prompts.SHORT,
    )
    text = answer_text(expect_completion(exchange, feature=FEATURE))
    red, blue = names_color(text, "red"), names_color(text, "blue")
    if red < 0 and blue < 0:
        raise Failure(f"neither image reached the model: expected 'red' then 'blue', got "
                      f"{snippet(text, 100)}")
    if red < 0 or blue < 0:
        seen = "red" if red >= 0 else "blue"
        raise Failure(f"only 1 of 2 images reached the model (saw {seen}): expected 'red' then "
                      f"'blue', got {snippet(text, 100)}")
    if blue < red:
        raise Failure(f"images out of order: expected 'red' then 'blue', got "
                      f"{snippet(text, 100)}")
    return f"saw red then blue: {snippet(text, 40)}"


@check(
    "vision.invalid_image",
    severity="degrades",
    title="An undecodable image is refused with 400",
    spec="ChatCompletionRequestMessageContentPartImage; ErrorResponse (invalid_request_error)",
    proves="A data:image/png;base64 URL whose bytes are not an image is refused with 400 (or "
    "422) and an error envelope, not answered (the image silently dropped) and not a 5xx.",
)
async def invalid_image(ctx: CheckContext) -> str:
    bogus = "data:image/png;base64,bm90IGFuIGltYWdl"  # "not an image"
    exchange = await ctx.chat(messages=image_message(COLOR_QUESTION, image_part(bogus)),
                              max_tokens=prompts.SHORT)
    envelope = expect_client_error(exchange, "an undecodable image")
    return f"HTTP {exchange.status}: {snippet(str(envelope.get('message')), 70)}"
