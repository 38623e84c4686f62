"""Keep pytest from rewriting the asserts of the suite's own modules (imported first by
:mod:`conformance.plugin`).

pytest marks every module of an installed plugin's distribution for assertion rewriting
before it imports the plugin, so each of the suite's ~114 modules was parsed, rewritten and
compiled again at each start of ``pytest conformance`` (about a second; every start where
bytecode is not written).  The suite never asserts a finding — checks raise
:class:`~conformance.errors.Failure` — so its modules are taken off pytest's list here;
``conformance.plugin`` itself, already being imported, stays as it is.  This reaches into
pytest's import hook (``_must_rewrite``); if its shape changes, nothing happens but the old
cost.  Test modules and conftest files, the user's included, are rewritten as usual.
"""

from __future__ import annotations

import sys

PACKAGE = __name__.rpartition(".")[0]


def unmark(package: str = PACKAGE) -> bool:
    """Take ``package`` and its modules off pytest's rewrite list; True if it was on it."""
    found = False
    for hook in sys.meta_path:
        marked = getattr(hook, "_must_rewrite", None)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if not isinstance(marked, set):
            continue
        ours = {name for name in marked
                if isinstance(name, str) and (name == package or name.startswith(package + "."))}
        if ours:
            found = True
            marked.difference_update(ours)
            if isinstance(cache, dict):
                cache.clear()
    return found


unmark()
