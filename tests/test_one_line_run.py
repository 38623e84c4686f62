"""One relay tested in one command, without a providers file (issue "For the relays' own
users"): `conformance run --base-url URL --api-key-env VAR --model M` from an empty directory,
the key read from the environment and never written; `--model` overriding a file's model;
`conformance init` writing a starter file that loads."""

from __future__ import annotations

import json
from pathlib import Path

from conformance.config import load_providers
from conformance.reference.server import ReferenceServer
from tests.conftest import SELFTEST_KEY, external, run_cli, write_providers


def test_one_command_from_an_empty_directory(reference_server: ReferenceServer,
                                             tmp_path: Path) -> None:
    proc = run_cli(["run", "--base-url", reference_server.base_url, "--api-key-env",
                    "MY_RELAY_KEY", "--model", "ref-1", "--name", "my-relay",
                    "-k", "chat or models", "-p", "no:cacheprovider"],
                   cwd=tmp_path, env={"MY_RELAY_KEY": SELFTEST_KEY})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    reports = list((tmp_path / "reports").iterdir())
    data = json.loads((reports[0] / "results.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in data["providers"]] == ["my-relay"]
    assert {r["outcome"] for r in data["results"]} == {"pass"}
    assert len(data["results"]) >= 5
    for path in reports[0].rglob("*"):
        if path.is_file():
            assert SELFTEST_KEY not in path.read_text(encoding="utf-8", errors="replace")


def test_one_command_errors_are_one_line(tmp_path: Path) -> None:
    cases = [
        (["--base-url", "http://127.0.0.1:9/v1"], "--base-url needs --model"),
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-env", "UNSET_X"],
         "--api-key-env: UNSET_X is not set (export it first)"),
        (["--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-env",
          "sk-live-abcdef0123456789"], "not the key itself"),
        (["--api-key-env", "X"], "--api-key-env, --name and --vision-model go with --base-url"),
        (["--base-url", "ftp://h", "--model", "m"], "not an http(s) URL"),
    ]
    for extra, words in cases:
        proc = run_cli(["run", *extra], cwd=tmp_path, env={"UNSET_X": ""})
        assert proc.returncode == 2, (extra, proc.stderr)
        assert words in proc.stderr and "Traceback" not in proc.stderr, (extra, proc.stderr)
        assert "sk-live-abcdef0123456789" not in proc.stderr


def test_model_overrides_the_files_model(reference_server: ReferenceServer,
                                         tmp_path: Path) -> None:
    path = write_providers(tmp_path / "providers.yaml", [
        external("ref", reference_server.base_url, model="no-such-model",
                 models={"vision": "also-not"})])
    proc = run_cli(["run", "--providers", str(path), "--model", "ref-2", "-k", "chat",
                    "--report-dir", str(tmp_path / "r"), "-p", "no:cacheprovider"],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    assert {r["model"] for r in data["results"]} == {"ref-2"}
    assert {r["outcome"] for r in data["results"]} == {"pass"}


def test_init_writes_a_starter_file_that_loads_and_never_overwrites(tmp_path: Path) -> None:
    proc = run_cli(["init"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "providers.yaml"
    config = load_providers(written, env={})
    assert "reference" in config.names() and len(config.names()) >= 6
    again = run_cli(["init"], cwd=tmp_path)
    assert again.returncode == 2 and "already exists (not overwritten" in again.stderr
