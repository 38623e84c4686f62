"""What makes a run start fast, and what it must not cost: the plugins `conformance run` loads
(and the user's it still loads when asked), no assertion rewriting of the suite's modules,
shared TLS contexts, results written without an fsync per line, renderers' lookups by index.
No timing is asserted here (CI is loaded): `make bench` prints the figures."""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path

import pytest

from conformance import clientsetup
from conformance.norewrite import unmark
from conformance.pytest_args import AUTOLOAD_ENV, plugin_args
from conformance.redact import Redactor
from conformance.reference.server import ReferenceServer
from conformance.results import Result, ResultLog, RunData, read_jsonl
from tests.conftest import external, run_cli, run_pytest, write_providers

#: A user's plugin: says which modules the run imported and how pytest loaded the suite's.
WITNESS = '''
import json, sys

def pytest_sessionfinish(session):
    loaders = {name: type(sys.modules[name].__loader__).__name__
               for name in ("conformance.transport", "conformance.checks.stop")
               if name in sys.modules}
    with open("witness.json", "w") as fh:
        json.dump({"modules": sorted(sys.modules), "loaders": loaders}, fh)
'''


def test_plugin_args_load_only_what_the_run_needs() -> None:
    args = plugin_args(["-k", "stop"], environ={})
    assert "--disable-plugin-autoload" in args and "--assert=plain" in args
    loaded = [args[i + 1] for i, a in enumerate(args) if a == "-p"]
    assert "conformance.plugin" in loaded and "xdist" in loaded
    assert "allure_pytest" not in loaded
    for given, environ in ((["--alluredir", "out"], {}),
                           (["--alluredir=out"], {}),
                           ([], {"PYTEST_ADDOPTS": "--alluredir out"})):
        with_allure = plugin_args(given, environ=environ)
        assert with_allure[with_allure.index("allure_pytest") - 1] == "-p", given
    autoload = plugin_args([], environ={AUTOLOAD_ENV: "1"})
    assert "--disable-plugin-autoload" not in autoload and "--assert=plain" in autoload
    assert "no:hypothesispytest" in autoload
    assert "--disable-plugin-autoload" in plugin_args([], environ={AUTOLOAD_ENV: "0"})
    older = plugin_args([], environ={}, named_plugins=False)  # pytest < 8.4
    assert "--disable-plugin-autoload" not in older and "no:anyio" in older


def test_a_run_imports_no_unrelated_plugin_and_loads_the_users_on_request(
        reference_server: ReferenceServer, tmp_path: Path) -> None:
    """`conformance run -p NAME` loads the user's plugin; hypothesis' and anyio's (installed
    with the test extras) stay out; the suite's modules are imported unrewritten."""
    (tmp_path / "witness_plugin.py").write_text(WITNESS)
    providers = write_providers(tmp_path / "providers.yaml",
                                [external("ref", reference_server.base_url)])
    proc = run_cli(["run", "--providers", str(providers), "--report-dir", "r", "-q",
                    "-p", "no:cacheprovider", "-p", "witness_plugin", "-k", "stop.list"],
                   cwd=tmp_path)  # `python -m` puts the working directory on sys.path
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
    witness = json.loads((tmp_path / "witness.json").read_text())
    modules = set(witness["modules"])
    assert not modules & {"hypothesis", "_hypothesis_pytestplugin", "anyio.pytest_plugin",
                          "allure_pytest.plugin", "trio"}, modules
    assert witness["loaders"]["conformance.transport"] != "AssertionRewritingHook"


def test_plain_pytest_does_not_rewrite_the_suite(reference_server: ReferenceServer,
                                                 tmp_path: Path) -> None:
    (tmp_path / "witness_plugin.py").write_text(WITNESS)
    write_providers(tmp_path / "providers.yaml", [external("ref", reference_server.base_url)])
    proc = run_pytest(["conformance", "--providers", "providers.yaml", "--report-dir", "r",
                       "-p", "no:cacheprovider", "-p", "witness_plugin", "-k", "stop.list"],
                      cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    loaders = json.loads((tmp_path / "witness.json").read_text())["loaders"]
    assert loaders == {"conformance.transport": "SourceFileLoader",
                       "conformance.checks.stop": "SourceFileLoader"}, loaders


def test_unmark_takes_only_the_package_off_the_rewrite_list() -> None:
    class Hook:
        def __init__(self) -> None:
            self._must_rewrite = {"conformance", "conformance.checks", "conformancex", "other"}
            self._marked_for_rewrite_cache = {"conformance.transport": True}

    hook = Hook()
    sys.meta_path.insert(0, hook)  # type: ignore[arg-type]
    try:
        assert unmark("conformance")
        assert hook._must_rewrite == {"conformancex", "other"}
        assert hook._marked_for_rewrite_cache == {}
        assert not unmark("conformance")
    finally:
        sys.meta_path.remove(hook)  # type: ignore[arg-type]


def test_tls_contexts_are_shared_and_fail_closed_for_plain_http(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    https = clientsetup.context_for("https://api.example.com/v1")
    assert https is clientsetup.context_for("HTTPS://other.example.com/v1")
    assert https.verify_mode == ssl.CERT_REQUIRED and https.cert_store_stats()["x509_ca"] > 0
    plain = clientsetup.context_for("http://127.0.0.1:8000/v1")
    assert plain is not https and plain is clientsetup.context_for("http://localhost/v1")
    # Never used by a plain-http client; if it were, it would trust no certificate.
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.cert_store_stats()["x509_ca"] == 0
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert clientsetup.context_for("http://127.0.0.1:8000/v1") is https


def test_httpcore_is_imported_without_trio_and_trio_still_imports() -> None:
    assert "httpcore" in sys.modules
    assert sys.modules.get("trio", "absent") is not None  # no None left behind


def _result(check: str, provider: str) -> Result:
    return Result(provider, "m", check, "chat", "pass", "ok", 1, {})


def test_result_log_lines_are_readable_at_once_and_synced_at_close(tmp_path: Path) -> None:
    log = ResultLog(tmp_path / "results.jsonl")
    for i in range(3):
        log.append(_result(f"chat.c{i}", "p"))
        assert len(read_jsonl(log.path)) == i + 1  # flushed line by line
    log.close()
    log.close()  # idempotent
    assert [r.check for r in read_jsonl(log.path)] == ["chat.c0", "chat.c1", "chat.c2"]


def test_result_of_finds_results_and_follows_a_growing_run() -> None:
    data = RunData(run={}, providers=[], checks=[],
                   results=[_result("chat.a", "p1"), _result("chat.a", "p2")])
    assert data.result_of("chat.a", "p2") is data.results[1]
    assert data.result_of("chat.b", "p1") is None
    data.results.append(_result("chat.b", "p1"))
    assert data.result_of("chat.b", "p1") is data.results[2]
    first = data.results[0]
    data.results.append(_result("chat.a", "p1"))  # a duplicate: the first one is kept
    assert data.result_of("chat.a", "p1") is first


def test_short_text_is_skipped_but_every_encoding_of_a_secret_is_masked() -> None:
    secret = "sk-abcdef"
    redactor = Redactor([secret])
    assert redactor.text("sk-abcde") == "sk-abcde"  # shorter than any encoding
    for encoded in (secret, secret.upper(), secret.encode().hex(),
                    "".join(f"\\u{ord(c):04x}" for c in secret)):
        assert "***" in redactor.text(encoded), encoded
