"""Tests of conformance.config: providers.yaml loading, validation and error messages."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import time
from pathlib import Path

import jsonschema
import pytest

from conformance.config import (
    DEFAULT_REFERENCE_MODEL,
    FAMILIES,
    ProviderConfig,
    ProvidersConfig,
    Timeouts,
    load_providers,
    parse_providers,
    schema_file,
)
from conformance.errors import ConfigError
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-live-0123456789abcdef"

RELAY_VARS = {
    "51api": "set API51_API_KEY",
    "apiyi": "set APIYI_API_KEY",
    "sk-relay": "set SKRELAY_BASE_URL, SKRELAY_API_KEY",
    "lalc": "set LALC_API_KEY",
    "ezmodel": "set EZMODEL_API_KEY",
}


def write(tmp_path: Path, text: str, name: str = "providers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_providers(path, env=env or {})
    return info.value


FULL = """
defaults:
  concurrency: 8
  retries: 3
  timeouts: {connect: 5, stall: 12.5}
  headers: {X-Team: qa, User-Agent: conformance}
  models: {chat: default-chat}
providers:
  - name: reference
    builtin: reference
    faults: [no_usage, sse_crlf]
    latency_ms: 25
  - name: apiyi
    base_url: https://api.apiyi.com/v1/
    api_key: ${APIYI_API_KEY}
    model: gpt-4o-mini
    models:
      vision: gpt-4o
      tools: ${TOOLS_MODEL:-gpt-4o}
    concurrency: 2
    timeouts: {read: 90, total: 300}
    retries: 0
    headers:
      user-agent: mine
      HTTP-Referer: https://example.org
      X-Token: ${TOKEN}
    vision_url: https://upload.wikimedia.org/cat.png?width=64
    docs: https://docs.apiyi.com/api-reference/chat-completions
"""


def test_full_file_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_providers(path, env={"APIYI_API_KEY": SECRET, "TOKEN": "tok-123"})
    assert isinstance(config, ProvidersConfig)
    assert config.path == str(path)
    assert config.names() == ("reference", "apiyi")

    ref = config.get("reference")
    assert ref.builtin == "reference"
    assert ref.base_url is None and ref.api_key is None
    assert ref.model == DEFAULT_REFERENCE_MODEL
    assert ref.faults == ("no_usage", "sse_crlf")
    assert ref.latency_ms == 25
    assert ref.concurrency == 8 and ref.retries == 3
    assert ref.timeouts == Timeouts(connect=5.0, read=60.0, total=180.0, stall=12.5)
    assert dict(ref.models) == {"chat": "default-chat"}
    assert ref.skip_reason is None and not ref.skipped
    assert ref.source == f"{path}:8"

    apiyi = config.get("apiyi")
    assert apiyi.base_url == "https://api.apiyi.com/v1"  # trailing slash dropped
    assert apiyi.api_key == SECRET
    assert apiyi.model == "gpt-4o-mini"
    assert dict(apiyi.models) == {"chat": "default-chat", "vision": "gpt-4o", "tools": "gpt-4o"}
    assert apiyi.model_for("vision") == "gpt-4o"
    assert apiyi.model_for("streaming") == "gpt-4o-mini"
    assert apiyi.concurrency == 2 and apiyi.retries == 0
    assert apiyi.timeouts == Timeouts(connect=5.0, read=90.0, total=300.0, stall=12.5)
    assert dict(apiyi.headers) == {
        "X-Team": "qa", "user-agent": "mine", "HTTP-Referer": "https://example.org",
        "X-Token": "tok-123",
    }
    assert apiyi.vision_url == "https://upload.wikimedia.org/cat.png?width=64"
    assert apiyi.docs == "https://docs.apiyi.com/api-reference/chat-completions"
    assert apiyi.faults == () and apiyi.latency_ms == 0
    assert apiyi.skip_reason is None
    assert set(apiyi.secrets) == {SECRET, "tok-123"}
    assert apiyi.source == f"{path}:12"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_providers(write(tmp_path, FULL), env={"APIYI_API_KEY": SECRET, "TOKEN": "t"})
    apiyi = config.get("apiyi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        apiyi.model = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.providers = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        apiyi.timeouts.read = 1.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        apiyi.models["vision"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        apiyi.headers["X-Team"] = "x"  # type: ignore[index]
    assert hash(apiyi) == hash(config.get("apiyi"))
    assert SECRET not in repr(apiyi) and SECRET not in repr(config)


def test_minimal_dataclass_defaults() -> None:
    provider = ProviderConfig(name="x", base_url="http://h", api_key=None, model="m", models={})
    assert provider.timeouts == Timeouts()
    assert (provider.concurrency, provider.retries, provider.latency_ms) == (4, 2, 0)
    assert dict(provider.headers) == {} and provider.secrets == ()


def test_default_file_without_env_skips_every_relay() -> None:
    config = load_providers(REPO / "providers.yaml", env={})
    assert config.names() == ("reference", "reference-broken-demo", "51api", "apiyi",
                              "sk-relay", "lalc", "ezmodel")
    reference = config.get("reference")
    assert reference.builtin == "reference" and reference.skip_reason is None
    for name, reason in RELAY_VARS.items():
        provider = config.get(name)
        assert provider.skip_reason == reason
        assert provider.api_key is None
        assert provider.docs and provider.docs.startswith("https://")
        assert provider.concurrency == 4
    assert config.get("sk-relay").base_url is None
    assert config.get("apiyi").base_url == "https://api.apiyi.com/v1"
    assert config.get("apiyi").model_for("vision") == "gpt-4o"
    assert config.get("51api").models == {"vision": "gpt-4o", "tools": "gpt-4o"}


def test_default_file_with_env() -> None:
    env = {var: f"sk-{name}-key" for name, reason in RELAY_VARS.items()
           for var in reason.removeprefix("set ").split(", ")}
    env["SKRELAY_BASE_URL"] = "https://relay.example/v1/"
    config = load_providers(REPO / "providers.yaml", env=env)
    for name in RELAY_VARS:
        provider = config.get(name)
        assert provider.skip_reason is None
        assert provider.api_key == f"sk-{name}-key"
        assert provider.api_key in provider.secrets
    assert config.get("sk-relay").base_url == "https://relay.example/v1"


def test_default_file_matches_the_schema_families() -> None:
    schema = json.loads(schema_file().read_text(encoding="utf-8"))
    assert tuple(schema["$defs"]["models"]["properties"]) == FAMILIES
    assert schema["$defs"]["provider"]["properties"]["builtin"]["enum"] == ["reference"]


def test_schema_passes_the_2020_12_metaschema() -> None:
    schema = json.loads((REPO / "schemas" / "providers.schema.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


# --------------------------------------------------------------------------- ${VAR} expansion

def relay(tmp_path: Path, **values: str) -> Path:
    lines = ["providers:", "  - name: relay"]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in values.items()]
    return write(tmp_path, "\n".join(lines) + "\n")


def test_default_value(tmp_path: Path) -> None:
    path = relay(tmp_path, base_url="${HOST:-https://fallback.example}/v1", model="m",
                 api_key="${KEY:-local}")
    provider = load_providers(path, env={}).providers[0]
    assert provider.base_url == "https://fallback.example/v1"
    assert provider.api_key == "local" and provider.skip_reason is None
    # An empty variable also takes the default; a set one wins.
    provider = load_providers(path, env={"HOST": "", "KEY": "k"}).providers[0]
    assert provider.base_url == "https://fallback.example/v1" and provider.api_key == "k"
    provider = load_providers(path, env={"HOST": "http://h:8000"}).providers[0]
    assert provider.base_url == "http://h:8000/v1"


def test_dollar_escape_and_literal_dollar(tmp_path: Path) -> None:
    path = relay(tmp_path, base_url="http://h/v1", model="m-$$1-${VER}", api_key="pa$$word$")
    provider = load_providers(path, env={"VER": "2"}).providers[0]
    assert provider.model == "m-$1-2"
    assert provider.api_key == "pa$word$"


def test_unset_variable_skips_instead_of_failing(tmp_path: Path) -> None:
    path = relay(tmp_path, base_url="${URL}", api_key="${A}", model="${M}")
    provider = load_providers(path, env={"A": SECRET}).providers[0]
    assert provider.skip_reason == "set URL, M"
    assert provider.api_key is None and provider.base_url is None
    assert provider.model == "${M}"


def test_no_key_is_fine(tmp_path: Path) -> None:
    provider = load_providers(relay(tmp_path, base_url="http://localhost:8000/v1", model="m"),
                              env={}).providers[0]
    assert provider.api_key is None and provider.skip_reason is None and provider.secrets == ()


def test_only_expanded_header_values_are_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, """
        providers:
          - name: relay
            base_url: http://h/v1
            model: m
            headers: {HTTP-Referer: https://example.org, X-Key: "k-${K}", api-key: literal-key}
    """)
    provider = load_providers(path, env={"K": "abc"}).providers[0]
    assert provider.headers["X-Key"] == "k-abc"
    assert set(provider.secrets) == {"k-abc", "abc", "literal-key"}
    assert list(provider.secrets) == sorted(provider.secrets, key=len, reverse=True)


# --------------------------------------------------------------------------- errors

ERRORS = [
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            model: m
            bad: : x
        """, 5, None, "YAML syntax error: mapping values are not allowed here", id="bad-yaml"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            modle: m
        """, 4, "providers[0].modle", "unknown key; did you mean 'model'? (allowed: api_key, "
        "base_url, builtin, concurrency, docs, faults, headers, latency_ms, limits, model, "
        "models, name, price, request_defaults, retries, timeouts, upstream, vision_url)",
        id="unknown-provider-key"),
    pytest.param(
        """
        providers:
          - name: reference
            builtin: reference
            timeouts:
              connect: 3
              sall: 5
        """, 6, "providers[0].timeouts.sall", "unknown key; did you mean 'stall'? (allowed: "
        "check, connect, read, stall, total)", id="unknown-timeouts-key"),
    pytest.param(
        """
        provider:
          - name: a
        """, 1, "provider", "unknown key; did you mean 'providers'? (allowed: defaults, "
        "providers)", id="unknown-top-key"),
    pytest.param(
        """
        providers:
          - name: reference
            builtin: reference
            models: {visoin: x}
        """, 4, "providers[0].models.visoin", "unknown behaviour family; did you mean "
        "'vision'? (known: " + ", ".join(FAMILIES) + ")", id="unknown-family"),
    pytest.param(
        """
        providers:
          - name: apiyi
            builtin: reference
          - name: other
            builtin: reference
          - name: apiyi
            builtin: reference
        """, 6, "providers[2].name", "duplicate provider name 'apiyi' (first at line 2)",
        id="duplicate-name"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            model: m
            model: n
        """, 5, "providers[0].model", "duplicate key (first at line 4)", id="duplicate-yaml-key"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: ftp://x
            model: m
        """, 3, "providers[0].base_url", "not an http(s) URL: 'ftp://x'", id="bad-url"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            vision_url: not a url
        """, 4, "providers[0].vision_url", "not an http(s) URL: 'not a url'",
        id="bad-vision-url"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h/v1?x=1
            model: m
        """, 3, "providers[0].base_url", "a base URL cannot have a query or fragment: "
        "'http://h/v1?x=1'", id="url-with-query"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            concurrency: four
        """, 4, "providers[0].concurrency", "expected an integer, got a string 'four'",
        id="wrong-type"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            concurrency: 0
        """, 4, "providers[0].concurrency", "0 is less than the minimum of 1", id="minimum"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
          - name: b
            model: gpt-4o
        """, 4, "providers[1].base_url", "missing (required unless 'builtin' is set)",
        id="missing-base-url"),
    pytest.param(
        """
        defaults: {concurrency: 2}
        providers:
          - builtin: reference
        """, 3, "providers[0].name", "missing (required)", id="missing-name"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            model: m
            faults: [slow]
        """, 5, "providers[0].faults", "only allowed with 'builtin: reference'",
        id="faults-without-builtin"),
    pytest.param(
        """
        providers:
          - name: ref
            builtin: reference
            faults:
              - no_done
              - ignor_stop
        """, 6, "providers[0].faults[1]", "unknown fault 'ignor_stop'; did you mean "
        "'ignore_stop'?", id="misspelled-fault"),
    pytest.param(
        """
        providers:
          - name: ref
            builtin: reference
            faults: [sse_crlff]
        """, 4, "providers[0].faults[0]", "unknown fault 'sse_crlff'; did you mean 'sse_crlf'?",
        id="misspelled-quirk"),
    pytest.param(
        """
        providers:
          - name: ref
            builtin: reference
            faults: [latency-50]
        """, 4, "providers[0].faults[0]", "unknown fault 'latency-50'; latency is its own key: "
        "'latency_ms: 50'", id="latency-as-fault"),
    pytest.param(
        """
        providers:
          - name: ref
            builtin: reference
            faults: [zzz]
        """, 4, "providers[0].faults[0]", "unknown fault 'zzz' (the names are listed in "
        "conformance/reference/faults.py)", id="unknown-fault"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            base_url: http://h
        """, 4, "providers[0].base_url",
        "not allowed with 'builtin' (the suite starts that server itself)",
        id="base-url-with-builtin"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: refrence
        """, 3, "providers[0].builtin", "'refrence' is not one of: reference",
        id="unknown-builtin"),
    pytest.param("providers: []\n", 1, "providers", "must list at least one provider",
                 id="empty-providers"),
    pytest.param("defaults: {}\n", 1, "providers", "missing (required)", id="no-providers"),
    pytest.param(
        """
        providers:
          - name: Apiyi
            builtin: reference
        """, 2, "providers[0].name",
        "invalid name 'Apiyi' (use lowercase letters, digits, '.', '_' and '-')", id="bad-name"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: "${1BAD}"
            model: m
        """, 3, "providers[0].base_url", "malformed variable reference '${1BAD}' (write "
        "${NAME}, ${NAME:-default}, or $$ for a '$')", id="malformed-reference"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            model: "${"
        """, 4, "providers[0].model", "malformed variable reference '${' (write ${NAME}, "
        "${NAME:-default}, or $$ for a '$')", id="unclosed-reference"),
    pytest.param(
        """
        providers:
          - name: a
            base_url: http://h
            model: $MODEL
        """, 4, "providers[0].model", "variable references need braces: '$MODEL' (write "
        "${NAME}, ${NAME:-default}, or $$ for a '$')", id="bare-reference"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            headers:
              X-A: "1"
              x-a: "2"
        """, 6, "providers[0].headers.x-a",
        "duplicate header name (also at line 5; names ignore case)", id="duplicate-header"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            headers: {"X A": b}
        """, 4, "providers[0].headers.X A", "not a valid HTTP header name", id="header-name"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            temperature: 0.2
        """, 4, "providers[0].temperature", "unknown key (allowed: api_key, base_url, builtin, "
        "concurrency, docs, faults, headers, latency_ms, limits, model, models, name, "
        "price, request_defaults, retries, timeouts, upstream, vision_url)",
        id="unknown-key-no-hint"),
    pytest.param(
        """
        providers:
          - name: a
            <<: {builtin: reference}
        """, 3, "providers[0].<<", "YAML merge keys are not supported (use the 'defaults:' "
        "mapping)", id="merge-key"),
    pytest.param("providers: [{name: a, builtin: reference}]\n---\nproviders: []\n", 2, None,
                 "YAML syntax error: expected a single document in the stream, but found "
                 "another document", id="two-documents"),
    pytest.param("providers:\n  - apiyi\n", 2, "providers[0]",
                 "expected a mapping, got a string 'apiyi'", id="provider-not-a-mapping"),
    pytest.param("- name: a\n", 1, None,
                 "the top level must be a mapping with a 'providers:' list, not a list",
                 id="top-level-list"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            timeouts: {read: 0}
        """, 4, "providers[0].timeouts.read", "0 is less than or equal to the minimum of 0",
        id="zero-timeout"),
    pytest.param(
        """
        providers:
          - name: a
            builtin: reference
            model: 2024-01-01
        """, 4, "providers[0].model", "expected a string, got a date (quote it)",
        id="yaml-date"),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), ERRORS)
def test_error_is_one_line_naming_file_line_and_key(
        tmp_path: Path, text: str, line: int, key: str | None, problem: str) -> None:
    path = write(tmp_path, text)
    error = load_error(path)
    assert (error.file, error.line, error.key, error.problem) == (str(path), line, key, problem)
    rendered = error.one_line()
    assert "\n" not in rendered and str(error) == rendered
    assert rendered == f"{path}:{line}: " + (f"{key}: " if key else "") + problem


def test_file_level_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert load_error(missing).one_line() == f"{missing}: file not found"
    assert load_error(write(tmp_path, "", "empty.yaml")).problem.startswith("empty file")
    assert load_error(write(tmp_path, "# only a comment\n", "c.yaml")).problem.startswith(
        "empty file")
    assert load_error(tmp_path).problem == "is a directory, not a file"
    binary = tmp_path / "latin1.yaml"
    binary.write_bytes(b"providers:\n  - name: caf\xe9\n")
    error = load_error(binary)
    assert (error.line, error.problem) == (2, "not UTF-8 text (byte 0xe9)")


def test_parse_providers_names_the_given_file() -> None:
    with pytest.raises(ConfigError) as info:
        parse_providers("providers: [{name: a}]\n", filename="inline.yaml", env={})
    assert info.value.one_line() == ("inline.yaml:1: providers[0].base_url: missing "
                                     "(required unless 'builtin' is set)")


# --------------------------------------------------------------------------- no secret in errors

def test_invalid_url_from_env_shows_the_reference_not_the_value(tmp_path: Path) -> None:
    path = relay(tmp_path, base_url="${RELAY_URL}", model="m")
    error = load_error(path, env={"RELAY_URL": f"ftp://user:{SECRET}@relay"})
    assert error.one_line() == f"{path}:3: providers[0].base_url: not an http(s) URL: " \
                               "'${RELAY_URL}'"
    # A password written into the file itself is masked too.
    path = relay(tmp_path, base_url=f"ftp://user:{SECRET}@relay", model="m")
    assert SECRET not in load_error(path).one_line()


@pytest.mark.parametrize("value", [
    pytest.param(12345678901234, id="number-key"),
    pytest.param(["sk-live-0123456789abcdef"], id="list-key"),
])
def test_bad_api_key_type_is_not_echoed(tmp_path: Path, value: object) -> None:
    path = write(tmp_path, f"""
        providers:
          - name: a
            base_url: http://h
            model: m
            api_key: {json.dumps(value)}
    """)
    error = load_error(path)
    assert error.key == "providers[0].api_key" and error.line == 5
    assert str(value).strip("[]'") not in error.one_line()


def test_malformed_reference_in_secret_values_is_not_echoed(tmp_path: Path) -> None:
    for extra in (f'api_key: "{SECRET}${{oops"', f'headers: {{X-K: "{SECRET}$X"}}'):
        path = write(tmp_path, f"""
            providers:
              - name: a
                base_url: http://h
                model: m
                {extra}
        """)
        error = load_error(path, env={"X": "x"})
        assert error.line == 5
        assert SECRET not in error.one_line()


def test_no_env_value_in_any_error(tmp_path: Path) -> None:
    env = {"KEY": SECRET, "TOKEN": SECRET, "URL": SECRET}
    cases = [
        'base_url: "${URL}"\n    model: m\n    api_key: "${KEY}"',
        'base_url: http://h\n    model: m\n    api_key: "${KEY}"\n    headers: {X: "${TOKEN}"}\n'
        '    retries: -1',
        'base_url: http://h\n    model: m\n    api_key: "${KEY}"\n'
        '    headers: {"Bad Name": "${TOKEN}"}',
        'base_url: http://h\n    model: m\n    vision_url: "${URL}"',
    ]
    for body in cases:
        path = write(tmp_path, "providers:\n  - name: a\n    " + body + "\n")
        assert SECRET not in load_error(path, env=env).one_line()


# --------------------------------------------------------------------------- selection, defaults

def test_select_and_get(tmp_path: Path) -> None:
    path = write(tmp_path, """
        providers:
          - {name: a, builtin: reference}
          - {name: b, builtin: reference}
          - {name: c, builtin: reference}
    """)
    config = load_providers(path, env={})
    assert config.select(["c", "a"]).names() == ("a", "c")
    assert config.select(["b,c"]).names() == ("b", "c")
    assert config.select([]).names() == ("a", "b", "c")
    assert config.select(["a"]).path == config.path
    assert config.get("b").name == "b"
    with pytest.raises(ConfigError) as info:
        config.select(["a", "x"])
    assert info.value.one_line() == f"{path}: --provider: unknown provider 'x' (known: a, b, c)"
    with pytest.raises(ConfigError):
        config.get("x")


def test_defaults_apply_unless_the_provider_sets_them(tmp_path: Path) -> None:
    path = write(tmp_path, """
        defaults:
          concurrency: 16
          retries: 5
          timeouts: {total: 600}
          headers: {X-Suite: conformance, X-Env: "${STAGE:-dev}"}
          models: {vision: shared-vision, tools: shared-tools}
        providers:
          - name: plain
            base_url: http://h/v1
            model: m
          - name: custom
            base_url: http://h/v1
            model: m
            concurrency: 1
            retries: 0
            timeouts: {total: 60, read: 30}
            headers: {x-suite: mine}
            models: {vision: own-vision}
    """)
    plain, custom = load_providers(path, env={}).providers
    assert (plain.concurrency, plain.retries) == (16, 5)
    assert plain.timeouts == Timeouts(total=600.0)
    assert dict(plain.headers) == {"X-Suite": "conformance", "X-Env": "dev"}
    assert dict(plain.models) == {"vision": "shared-vision", "tools": "shared-tools"}
    assert (custom.concurrency, custom.retries) == (1, 0)
    assert custom.timeouts == Timeouts(read=30.0, total=60.0)
    assert dict(custom.headers) == {"X-Env": "dev", "x-suite": "mine"}
    assert dict(custom.models) == {"vision": "own-vision", "tools": "shared-tools"}


def test_unset_variable_in_defaults_skips_every_provider(tmp_path: Path) -> None:
    path = write(tmp_path, """
        defaults:
          headers: {X-Org: "${ORG}"}
        providers:
          - {name: a, builtin: reference}
          - {name: b, base_url: "http://h", model: m, api_key: "${B_KEY}"}
    """)
    a, b = load_providers(path, env={}).providers
    assert a.skip_reason == "set ORG"
    assert b.skip_reason == "set B_KEY, ORG"


def test_malformed_reference_in_defaults_points_at_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
        defaults:
          headers:
            X-Org: "${ORG"
        providers:
          - {name: a, builtin: reference}
    """)
    error = load_error(path)
    assert (error.line, error.key) == (3, "defaults.headers.X-Org")


def test_request_defaults_merge_and_null_removes(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text(
        "defaults:\n  request_defaults: {seed: 7}\n"
        "providers:\n"
        "  - name: a\n    builtin: reference\n"
        "  - name: b\n    builtin: reference\n    request_defaults: {temperature: null, top_p: 1}\n"
    )
    config = load_providers(path, {})
    assert dict(config.get("a").request_defaults) == {"temperature": 0, "seed": 7}
    assert dict(config.get("b").request_defaults) == {"seed": 7, "top_p": 1}
    with pytest.raises(TypeError):
        config.get("a").request_defaults["x"] = 1  # type: ignore[index]


def test_request_defaults_cannot_override_the_request_itself(tmp_path: Path) -> None:
    path = tmp_path / "providers.yaml"
    path.write_text("providers:\n  - name: a\n    builtin: reference\n"
                    "    request_defaults: {model: gpt-4o}\n")
    with pytest.raises(ConfigError) as info:
        load_providers(path, {})
    assert "providers.yaml:4" in info.value.one_line()
    assert "request_defaults" in info.value.one_line()


# --------------------------------------------------------------------------- hostile files

BOMB = "\n".join(
    ["a: &a [x, x, x, x, x, x, x, x, x]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["providers: [*i]", ""]
)
DEEP = "providers:\n  - name: a\n    builtin: reference\n    request_defaults: {x: " \
    + "[" * 5000 + "]" * 5000 + "}\n"
HOSTILE = {
    "alias_bomb": (BOMB, 5, "YAML aliases expand to more than"),
    "deep": (DEEP, 4, "YAML nested deeper than 64 levels"),
    "nan": ("providers:\n  - name: a\n    builtin: reference\n    timeouts: {read: .nan}\n",
            4, "must be a finite number"),
    "inf": ("providers:\n  - name: a\n    builtin: reference\n    timeouts:\n      total: .inf\n",
            5, "must be a finite number"),
    "header_crlf": ('providers:\n  - name: a\n    builtin: reference\n    headers:\n'
                    '      X-Token: "abc\\r\\nX-Evil: sk-hidden-value"\n',
                    5, "cannot contain a line break"),
    "model_in_request_defaults": ("providers:\n  - name: a\n    builtin: reference\n"
                                  "    request_defaults: {model: gpt-4o}\n",
                                  4, "'model' is set by 'model:'"),
    "password_in_base_url": ("providers:\n  - name: a\n    model: m\n    api_key: k\n"
                             "    base_url: https://user:sk-hidden-value@example.org/v1\n",
                             5, "a URL cannot carry credentials"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_one_line_error(tmp_path: Path, case: str) -> None:
    text, line, problem = HOSTILE[case]
    path = tmp_path / "providers.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_providers(path, {})
    # Refused at once (an alias bomb took 85 s and 7 GB); generous for a loaded CI machine.
    assert time.perf_counter() - started < 2
    message = info.value.one_line()
    assert f"providers.yaml:{line}" in message and problem in message, message
    assert "sk-hidden-value" not in message and "\n" not in message


@pytest.mark.parametrize("case", ["alias_bomb", "deep", "nan", "header_crlf"])
def test_hostile_file_stops_conformance_run_with_exit_2(tmp_path: Path, case: str) -> None:
    text, line, problem = HOSTILE[case]
    path = tmp_path / "providers.yaml"
    path.write_text(text, encoding="utf-8")
    proc = run_cli(["run", "--providers", str(path), "-p", "no:cacheprovider"], cwd=tmp_path,
                   timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output and "sk-hidden-value" not in output
    lines = [entry for entry in output.splitlines() if problem in entry]
    assert len(lines) == 1 and f"providers.yaml:{line}" in lines[0], output


def test_key_from_a_variable_ending_in_a_newline_is_masked_as_sent(tmp_path: Path) -> None:
    path = write(tmp_path, """
        providers:
          - name: a
            base_url: https://example.org/v1
            api_key: ${KEY}
            model: m
            headers: {X-Token: "${TOKEN}"}
        """)
    config = load_providers(path, {"KEY": SECRET + "\n", "TOKEN": " tok-0123456789\r\n"}).get("a")
    assert config.api_key == SECRET and config.headers["X-Token"] == "tok-0123456789"
    assert SECRET in config.secrets and "tok-0123456789" in config.secrets
    assert all(s == s.strip() for s in config.secrets)


def test_a_variable_in_the_url_is_a_secret_but_not_the_address(tmp_path: Path) -> None:
    path = write(tmp_path, """
        providers:
          - name: a
            base_url: https://example.org/${TOKEN}/v1
            model: m
          - name: b
            base_url: ${URL}
            model: m
        """)
    config = load_providers(path, {"TOKEN": "tok-0123456789", "URL": "https://relay.example/v1"})
    assert "tok-0123456789" in config.get("a").secrets
    assert not any("relay.example" in s for s in config.get("b").secrets)


# --------------------------------------------------------------------------- upstream:

UPSTREAM = """
providers:
  - name: gw
    base_url: http://127.0.0.1:3000/v1
    api_key: ${GW_KEY}
    model: gpt-4o-mini
    upstream:
      url: ${REF_URL}
      api_key: ${REFERENCE_KEY}
      model: ref-1
  - name: gw2
    base_url: http://127.0.0.1:3001/v1
    model: m
    upstream: {builtin: reference, port: 8800}
"""


def test_upstream_is_parsed_and_its_key_is_a_secret(tmp_path: Path) -> None:
    env = {"GW_KEY": "sk-gw-1234567890", "REF_URL": "http://127.0.0.1:8800/v1/",
           "REFERENCE_KEY": "sk-upstream-0987654321"}
    config = load_providers(write(tmp_path, UPSTREAM), env=env)
    gw, gw2 = config.providers
    assert gw.upstream is not None and gw2.upstream is not None
    assert (gw.upstream.url, gw.upstream.model) == ("http://127.0.0.1:8800", "ref-1")
    assert gw.upstream.api_key == "sk-upstream-0987654321"
    assert "sk-upstream-0987654321" in gw.secrets and "sk-upstream" not in repr(gw)
    assert (gw2.upstream.builtin, gw2.upstream.port, gw2.upstream.url) == ("reference", 8800, None)
    assert gw2.upstream.host == "127.0.0.1" and gw2.upstream.api_key is None


def test_an_unset_upstream_variable_skips_the_provider(tmp_path: Path) -> None:
    config = load_providers(write(tmp_path, UPSTREAM), env={"GW_KEY": "k", "REF_URL": "http://h"})
    assert config.providers[0].skip_reason == "set REFERENCE_KEY"


@pytest.mark.parametrize(("upstream", "key", "problem"), [
    ("{url: http://h:1, prot: 2}", "upstream.prot", "unknown key; did you mean 'port'?"),
    ("{builtin: reference}", "upstream.port", "missing (required with 'builtin')"),
    ("{model: x}", "upstream.url", "missing (required unless 'builtin' is set)"),
    ("{url: http://h:1, port: 8800}", "upstream.port", "only allowed with 'builtin: reference'"),
    ("{builtin: reference, port: 8800, url: http://h:1}", "upstream.url",
     "not allowed with 'builtin'"),
    ("{builtin: reference, port: 70000}", "upstream.port", "70000 is greater than"),
    ("{url: 'ftp://h'}", "upstream.url", "not an http(s) URL"),
    ("{url: 'http://h:1/api/v2'}", "upstream.url", "(no path)"),
    ("{url: 'http://u:pw@h:1'}", "upstream.url", "cannot carry credentials"),
    ("{builtin: reference, port: 8800, host: 0.0.0.0}", "upstream.host", "needs an api_key"),
])
def test_upstream_errors_are_one_line(tmp_path: Path, upstream: str, key: str,
                                      problem: str) -> None:
    text = f"""
    providers:
      - name: gw
        base_url: http://127.0.0.1:3000/v1
        model: m
        upstream: {upstream}
    """
    error = load_error(write(tmp_path, text))
    assert f"providers.yaml:5: providers[0].{key}: " in str(error) or \
        f"providers.yaml:4: providers[0].{key}: " in str(error), str(error)
    assert problem in str(error) and "\n" not in str(error)
    assert "pw" not in str(error)


def test_upstream_is_not_allowed_on_a_builtin_provider(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, """
    providers:
      - name: r
        builtin: reference
        upstream: {url: 'http://h:1'}
    """))
    assert "providers[0].upstream: not allowed with 'builtin'" in str(error)


def test_price_is_parsed_from_defaults_or_the_provider(tmp_path: Path) -> None:
    config = load_providers(write(tmp_path, """
    defaults:
      price: {input: 0.15, output: 0.6}
    providers:
      - {name: a, base_url: 'http://h:1/v1', model: m}
      - {name: b, base_url: 'http://h:1/v1', model: m, price: {input: 2, output: 8}}
    """))
    a, b = config.providers
    assert a.price is not None and (a.price.input, a.price.output) == (0.15, 0.6)
    assert b.price is not None and b.price.cost(1_000_000, 500_000) == 6.0


@pytest.mark.parametrize(("price", "problem"), [
    ("{input: 1}", "price.output: missing (required)"),
    ("{input: -1, output: 1}", "price.input: -1 is less than the minimum of 0"),
    ("{input: '1', output: 1}", "price.input: expected a number, got a string '1'"),
    ("{input: 1, output: 1, currency: usd}", "price.currency: unknown key"),
])
def test_price_errors_are_one_line(tmp_path: Path, price: str, problem: str) -> None:
    error = load_error(write(tmp_path, f"""
    providers:
      - name: a
        base_url: http://h:1/v1
        model: m
        price: {price}
    """))
    assert problem in str(error) and "\n" not in str(error), str(error)
