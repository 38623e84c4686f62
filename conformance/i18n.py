"""The languages the suite speaks: English (the source language) and Simplified Chinese (zh-CN).

One gettext catalogue per language, ``locale/<ll_CC>/LC_MESSAGES/conformance.po``, compiled to
the ``.mo`` shipped next to it and read with the standard library's :mod:`gettext`; Babel
(``scripts/i18n.py``, ``make translations``) extracts the messages and compiles the catalogues.

Which layers translate (ARCHITECTURE.md, "Languages"): the command line, the pytest layer and
the report renderers, at the moment they speak to a person.  What is stored (results.json,
results.jsonl, run.json, baseline.json) is never translated: ids, and the English source text
of the few fixed one-liners a run stores (:data:`STORED`), which :func:`localize` turns into the
reader's language when a report is rendered, so any run re-renders in either language.

The language: ``--lang``, else ``CONFORMANCE_LANG``, else the locale (``LC_ALL``,
``LC_MESSAGES``, ``LANG``: ``zh_*`` → zh-CN), else English (:func:`resolve_lang`).
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment

#: The languages, source language first.
LANGUAGES: tuple[str, ...] = ("en", "zh-CN")
SOURCE = "en"
DOMAIN = "conformance"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: The catalogue directory of each translated language (gettext's ll_CC).
CATALOGUES: dict[str, str] = {"zh-CN": "zh_CN"}
#: The msgctxt of a check's title and of what it proves: ``check:<id>``.
CHECK_CONTEXT = "check:{id}"


class LanguageError(ValueError):
    """An unknown language in ``--lang`` or ``CONFORMANCE_LANG`` (one line, exit 2)."""


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (it is translated later)."""
    return message


def pgettext_marker(context: str, message: str) -> str:
    """Mark ``message`` under ``context`` for extraction without translating it."""
    return message


def normalize(value: str) -> str | None:
    """``"zh-CN"``, ``"zh_CN.UTF-8"``, ``"zh"``, ``"zh-Hans"`` → ``"zh-CN"``; ``"en"``,
    ``"en_US.UTF-8"``, ``"C"``, ``"POSIX"`` → ``"en"``; anything else → None."""
    text = value.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-").lower()
    if text in ("zh", "zh-cn", "zh-hans", "zh-hans-cn", "zh-sg"):
        return "zh-CN"
    if text in ("en", "c", "posix") or text.startswith("en-"):
        return "en"
    return None


def resolve_lang(cli_value: str | None = None,
                 environ: Mapping[str, str] | None = None) -> str:
    """The language to speak: ``--lang`` (``cli_value``), else ``CONFORMANCE_LANG``, else the
    locale's messages language (``LC_ALL``, then ``LC_MESSAGES``, then ``LANG``, as POSIX
    orders them; any ``zh_*`` locale → zh-CN), else English.

    An unknown ``--lang`` or ``CONFORMANCE_LANG`` raises :class:`LanguageError`; an unknown
    locale is English."""
    env = os.environ if environ is None else environ
    choices = " or ".join(LANGUAGES)
    if cli_value:
        lang = normalize(cli_value)
        if lang is None:
            raise LanguageError(f"--lang {cli_value}: unknown language (choose {choices})")
        return lang
    chosen = env.get("CONFORMANCE_LANG", "")
    if chosen:
        lang = normalize(chosen)
        if lang is None:
            raise LanguageError(f"CONFORMANCE_LANG={chosen}: unknown language (choose "
                                f"{choices})")
        return lang
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "zh-CN" if value.lower().startswith("zh") else SOURCE
    return SOURCE


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The catalogue of ``lang`` (English: the identity)."""
    code = CATALOGUES.get(lang)
    if code is None:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, str(LOCALE_DIR), languages=[code], fallback=True)


_active: str = SOURCE


def activate(lang: str) -> None:
    """Speak ``lang`` from now on (the command line and the pytest plugin set it once)."""
    global _active
    if lang not in LANGUAGES:
        raise LanguageError(f"unknown language {lang!r} (choose {' or '.join(LANGUAGES)})")
    _active = lang


def active() -> str:
    """The language being spoken (English until :func:`activate` is called)."""
    return _active


@contextlib.contextmanager
def using(lang: str) -> Iterator[None]:
    """Speak ``lang`` inside the block, then the language spoken before."""
    before = _active
    activate(lang)
    try:
        yield
    finally:
        activate(before)


def _(message: str) -> str:
    """``message`` in the active language."""
    return translations(_active).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n``, in the active language."""
    return translations(_active).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    """``message`` under ``context`` (msgctxt), in the active language."""
    return translations(_active).pgettext(context, message)


def check_text(check_id: str, english: str) -> str:
    """A check's ``title`` or ``proves`` in the active language (msgctxt ``check:<id>``; the
    English is the msgid, so a changed English text needs its translation again)."""
    return pgettext(CHECK_CONTEXT.format(id=check_id), english) if english else english


# -- stored one-liners ---------------------------------------------------------------------
#: The fixed one-line messages a run stores in English (skip reasons, provider problems,
#: budget and suite-fault lines): :func:`localize` renders them in the active language.  Each
#: is a ``str.format`` template whose fields hold data (variable names, a provider's message).
SET_VARIABLES = N_("set {variables}")
KEY_REJECTED_VARIABLE = N_("the key in {variables} was rejected: {why}; fix the key (no check "
                           "of this provider can reach a verdict with it)")
KEY_REJECTED = N_("{origin} was rejected: {why}; fix the key (no check of this provider can "
                  "reach a verdict with it)")
UNREACHABLE = N_("provider unreachable, no check was run: {error}")
NOT_AN_API = N_("no OpenAI-compatible API at {url}, no check was run: it answers HTTP {status} to "
                "both GET /models and POST /chat/completions; check the base_url (most end "
                "in /v1)")
NOT_AN_API_PAGE = N_("no OpenAI-compatible API answers at {url}, no check was run: both GET "
                     "/models and POST /chat/completions get HTTP {status} with an HTML page "
                     "({title}), not an API error: a bot challenge, a login page or a proxy's "
                     "error page stands in front of it")
BUDGET_SPENT = N_("not run: the run budget of {budget} tokens is spent ({spent} tokens; "
                  "--max-tokens)")
#: Skip reasons of checks that do not apply to a provider as configured.
NO_UPSTREAM = N_("no upstream: configured for this provider (fidelity checks need a relay in "
                 "front of a conformance reference; see README, 'Testing your own relay')")
NO_KEY = N_("no API key configured: the provider is open by configuration")
NO_TOKENIZER = N_("no public tokenizer for {model}: its token counts cannot be checked (the "
                  "billing family covers OpenAI's models)")
NO_VISION_URL = N_("no vision_url configured (an image URL the provider can fetch)")
NO_TOOL_CALL = N_("no tool call to judge: the model answered in text (see tools.auto)")
NO_DONE = N_("no data: [DONE] was sent (see streaming.done_sentinel)")
#: A change listed by a diff for a pair the new run does not have.
PROVIDER_MISSING = N_("not run: provider {provider} missing from the new run")
RUN_UNFINISHED = N_("not run: the run did not finish")
#: Most specific first: the first that matches is used.
STORED: tuple[str, ...] = (SET_VARIABLES, KEY_REJECTED_VARIABLE, KEY_REJECTED, UNREACHABLE,
                           NOT_AN_API, NOT_AN_API_PAGE, BUDGET_SPENT, NO_UPSTREAM, NO_KEY,
                           NO_TOKENIZER, NO_VISION_URL, NO_TOOL_CALL, NO_DONE,
                           PROVIDER_MISSING, RUN_UNFINISHED)
_FIELD = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    end = 0
    for match in _FIELD.finditer(template):
        parts.append(re.escape(template[end:match.start()]))
        parts.append(f"(?P<{match.group(1)}>.*?)")
        end = match.end()
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts), re.DOTALL)


_PATTERNS = [(template, _pattern(template)) for template in STORED]


def localize(stored: str) -> str:
    """A stored English one-liner in the active language: a :data:`STORED` template is
    translated around its data, a catalogue msgid is translated, anything else (a verdict
    quoting a provider) is returned as it is."""
    if _active == SOURCE or not stored:
        return stored
    for template, pattern in _PATTERNS:
        match = pattern.fullmatch(stored)
        if match:
            return _(template).format(**match.groupdict())
    return _(stored)


def install_jinja(env: Environment, lang: str | None = None) -> Environment:
    """Give a Jinja2 environment the catalogue of ``lang``, or with no ``lang`` the language
    active at each render (:func:`activate`; for an environment built once, at import):
    ``{% trans %}``, ``_()``, ``gettext``, ``ngettext`` and ``pgettext`` in its templates
    (jinja2.ext.i18n, new-style: ``_("… %(n)s", n=…)``); Babel extracts them via babel.cfg."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    if lang is None:
        env.install_gettext_callables(  # type: ignore[attr-defined]  # added by the extension
            gettext=_, ngettext=ngettext, newstyle=True, pgettext=pgettext)
    else:
        env.install_gettext_translations(  # type: ignore[attr-defined]
            translations(lang), newstyle=True)
    return env
