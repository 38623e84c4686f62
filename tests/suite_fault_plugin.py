"""A pytest plugin for the suite's own tests (``-p tests.suite_fault_plugin``): registers two
checks that are bugs in the suite, so a test can show that a suite fault is that check's
``error`` and never the end of the pytest run (issue "Hostile or broken providers cannot break
the run"): one raises ``LookupError`` (what an unknown ``charset`` once raised while decoding),
one raises an exception whose ``str()`` itself fails (what crashed pytest's formatting of
setup-phase tracebacks).  They are filed under ``chat.py`` so the chat module collects them.
"""

from __future__ import annotations

from conformance.checks.context import CheckContext
from conformance.checks.registry import check


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails too")


async def lookup_error(ctx: CheckContext) -> str:
    await ctx.chat(messages=[{"role": "user", "content": "Say OK."}], max_tokens=5)
    raise LookupError("unknown encoding: x-hostile")


async def unprintable(ctx: CheckContext) -> str:
    raise Unprintable()


for func, name in ((lookup_error, "zz_suite_bug"), (unprintable, "zz_unprintable_bug")):
    func.__module__ = "conformance.checks.chat"
    check(f"chat.{name}", severity="cosmetic", title=f"test only: {name}", spec="(none)",
          proves="nothing: a deliberate bug in the suite")(func)
