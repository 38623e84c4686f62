"""The pytest options ``conformance run`` adds for a fast start: which plugins load, no
assertion rewriting.

pytest imports every plugin installed in the environment (entry points ``pytest11``) before
it starts; with the test extras that included hypothesis (imported again for its summary
line) and anyio (~0.2 s, trio too where installed), and pytest marked every module of each
plugin's distribution — the suite's own ~114 modules — for assertion rewriting. A run of one
check paid seconds for it. So ``conformance run`` disables the autoloading and names what the
run needs:

- ``conformance.plugin`` (this package's plugin) always;
- ``xdist`` when installed (its plugin module is cheap; the workers start only with ``-n``),
  so ``-n``/``--dist`` work, from the command line or from an ini file's ``addopts``;
- ``allure_pytest`` when ``--alluredir`` (or any ``--allure…`` option) is given, on the command
  line or in ``PYTEST_ADDOPTS``.

Any other plugin loads when the user names it: ``conformance run -p NAME`` (pytest's own
option: an entry point's name or a module), ``PYTEST_PLUGINS=module,...``, or every installed
plugin as plain pytest would with ``CONFORMANCE_PYTEST_AUTOLOAD=1``. On pytest < 8.4 (no
``--disable-plugin-autoload``) every plugin loads but hypothesis' and anyio's.

Assertion rewriting is off (``--assert=plain``): the checks raise their own
:class:`~conformance.errors.Failure` and never ``assert``; a plugin of the user's that relies on
rewritten asserts gets them back with ``conformance run --assert=rewrite`` (the user's options
come after these, and the last one wins).  This module never imports pytest.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shlex
from collections.abc import Mapping, Sequence

#: Set to 1 to let pytest load every installed plugin, as plain ``pytest`` does.
AUTOLOAD_ENV = "CONFORMANCE_PYTEST_AUTOLOAD"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _asks_for_allure(args: Sequence[str]) -> bool:
    return any(arg.startswith("--allure") for arg in args)


def _pytest_can_name_plugins() -> bool:
    """pytest >= 8.4: ``--disable-plugin-autoload``, and ``-p NAME`` loads an entry point."""
    try:
        version = importlib.metadata.version("pytest")
    except importlib.metadata.PackageNotFoundError:
        return False
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]]
    return len(numbers) == 2 and (numbers[0], numbers[1]) >= (8, 4)


def plugin_args(pytest_args: Sequence[str], environ: Mapping[str, str] | None = None, *,
                named_plugins: bool | None = None) -> list[str]:
    """The options that go before the user's ``pytest_args`` on ``pytest.main``'s command
    line (see the module docstring). ``named_plugins`` (default: whether this pytest can,
    see :func:`_pytest_can_name_plugins`) False keeps autoloading, less hypothesis and anyio."""
    env = os.environ if environ is None else environ
    if named_plugins is None:
        named_plugins = _pytest_can_name_plugins()
    args = [
        # This process imported the plugin (and httpx's anyio) before pytest could rewrite
        # their asserts; they have none worth rewriting (findings are raised as Failure).
        "-W", "ignore::pytest.PytestAssertRewriteWarning", "--assert=plain",
        # Its one gc.collect() at the end walks every object of the run (0.1-0.3 s, more
        # with many providers); checks run no code in pytest's items, and Python still
        # prints an unraisable exception on stderr.
        "-p", "no:unraisableexception",
    ]
    if env.get(AUTOLOAD_ENV, "").strip() not in ("", "0") or not named_plugins:
        # Plain pytest's plugin set, less the two test-extra plugins the suite never uses
        # (the user's `-p NAME` after these still loads them).
        return [*args, "-p", "no:hypothesispytest", "-p", "no:anyio"]
    args += ["--disable-plugin-autoload", "-p", "conformance.plugin"]
    if _installed("xdist"):
        args += ["-p", "xdist"]
    try:
        from_env = shlex.split(env.get("PYTEST_ADDOPTS", ""))
    except ValueError:  # pytest reports a malformed PYTEST_ADDOPTS itself
        from_env = []
    if _asks_for_allure([*pytest_args, *from_env]) and _installed("allure_pytest"):
        args += ["-p", "allure_pytest"]
    return args
