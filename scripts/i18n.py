#!/usr/bin/env python3
"""The translation catalogues: extract, update, compile, check (``make translations``).

    python scripts/i18n.py update    # extract → merge into each .po → compile each .mo
    python scripts/i18n.py check     # exit 1 listing untranslated, fuzzy or stale entries
    python scripts/i18n.py readme    # rewrite the check tables of README.md and README.zh-CN.md

Messages come from the Python sources and Jinja2 templates (babel.cfg: ``_()``, ``N_()``,
``ngettext``, ``pgettext``, ``pgettext_marker``, ``{% trans %}``) and from the check registry:
each check's ``title`` and ``proves`` under msgctxt ``check:<id>``.  A new or changed message
arrives in ``conformance/locale/<ll_CC>/LC_MESSAGES/conformance.po`` with an empty msgstr:
translate it there and run ``update`` again, which compiles the ``.mo`` shipped in the package.
"""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from conformance.i18n import CATALOGUES, CHECK_CONTEXT, DOMAIN, LOCALE_DIR  # noqa: E402

KEYWORDS = {"_": None, "gettext": None, "N_": None, "ngettext": (1, 2),
            "pgettext": ((1, "c"), 2), "pgettext_marker": ((1, "c"), 2)}
#: The creation date written into every catalogue: fixed, so an update changes only messages.
EPOCH = datetime(2026, 11, 30, tzinfo=UTC)


def _new_catalog(locale: str | None = None) -> Catalog:
    return Catalog(locale=locale, domain=DOMAIN, project="conformance",
                   msgid_bugs_address="", copyright_holder="conformance contributors",
                   creation_date=EPOCH, revision_date=EPOCH, fuzzy=False)


def extract() -> Catalog:
    """Every message of the sources, templates and check registry (the template catalogue)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)  # type: ignore[no-untyped-call]
    catalog = _new_catalog()
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, comment_tags=("i18n:",),
            strip_comment_tags=True):
        if filename.startswith("scripts"):
            continue
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments,
                    context=context)
    from conformance.checks.registry import all_checks

    for check in all_checks():
        source = f"conformance/checks/{check.module}.py"
        context = CHECK_CONTEXT.format(id=check.id)
        catalog.add(check.title, None, [(source, 0)], auto_comments=[f"{check.id}: title"],
                    context=context)
        catalog.add(check.proves, None, [(source, 0)], auto_comments=[f"{check.id}: proves"],
                    context=context)
    return catalog


def po_path(code: str) -> Path:
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(path: Path, locale: str) -> Catalog:
    if not path.exists():
        return _new_catalog(locale)
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def update() -> int:
    """Merge the extracted messages into each language's .po and compile its .mo."""
    template = extract()
    for code in CATALOGUES.values():
        path = po_path(code)
        catalog = read(path, code)
        header = catalog.header_comment
        catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
        catalog.header_comment = header
        catalog.revision_date = EPOCH
        catalog.fuzzy = False
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # rendered whole first: a failure never leaves half a catalogue
        write_po(buffer, catalog, width=100, ignore_obsolete=True, include_lineno=False,
                 sort_output=False)
        path.write_bytes(buffer.getvalue())
        path.with_suffix(".mo").write_bytes(compiled(read(path, code)))
        todo = problems(code, template)
        print(f"{path.relative_to(ROOT)}: {len(catalog)} messages, {len(todo)} to translate")
    return 0


def problems(code: str, template: Catalog | None = None, path: Path | None = None
             ) -> list[str]:
    """What keeps ``code``'s catalogue (``path``, default its .po) from being complete:
    untranslated, fuzzy and missing messages, and a .mo that is not the compiled .po."""
    template = template or extract()
    path = path or po_path(code)
    catalog = read(path, code)
    out: list[str] = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        where = f"{message.context + ': ' if message.context else ''}{message.id!r}"
        if entry is None:
            out.append(f"{code}: missing {where}")
        elif entry.fuzzy:
            out.append(f"{code}: fuzzy {where}")
        elif not (all(entry.string) if isinstance(entry.string, tuple) else entry.string):
            out.append(f"{code}: untranslated {where}")
    mo = path.with_suffix(".mo")
    if not mo.exists() or mo.read_bytes() != compiled(catalog):
        out.append(f"{code}: {mo.name} is not the compiled .po (run `make translations`)")
    return out


def readme_tables() -> int:
    """Rewrite the check tables of README.md and README.zh-CN.md (between
    ``<!-- checks:start -->`` and ``<!-- checks:end -->``) from ``conformance checks
    --markdown`` in each one's language."""
    import contextlib

    from conformance.cli import main as cli_main

    for readme, lang in (("README.md", "en"), ("README.zh-CN.md", "zh-CN")):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            cli_main(["checks", "--markdown", "--lang", lang])
        path = ROOT / readme
        text = path.read_text(encoding="utf-8")
        head, rest = text.split("<!-- checks:start -->\n", 1)
        _, tail = rest.split("<!-- checks:end -->", 1)
        path.write_text(f"{head}<!-- checks:start -->\n{buffer.getvalue()}<!-- checks:end -->"
                        f"{tail}", encoding="utf-8")
        print(f"{readme}: check table rewritten")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "update"
    if command == "update":
        return update()
    if command == "readme":
        return readme_tables()
    if command == "check":
        found = [line for code in CATALOGUES.values() for line in problems(code)]
        for line in found:
            print(line)
        return 1 if found else 0
    print("usage: scripts/i18n.py update|check|readme", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
