"""Load and validate ``providers.yaml``.

The file is composed with PyYAML (so every value keeps its line), checked against the hand-written
``schemas/providers.schema.json`` (Draft 2020-12) and then against what a schema cannot express:
duplicate YAML keys, unique provider names, ``${VAR}`` references and URLs after expansion.
Every problem is a :class:`~conformance.errors.ConfigError` that renders as one line
``file:line: key: problem`` and never contains a secret (an API key or an expanded header value).

A provider that references an unset environment variable is not an error: it is kept, with
``skip_reason = "set VAR"`` (docs/CONTRACT.md), and never sent a request.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import conformance
from conformance.configdoc import Document, KeyPath, sensitive
from conformance.errors import ConfigError
from conformance.i18n import N_, SET_VARIABLES, _

__all__ = [
    "BUILTINS",
    "DEFAULT_REFERENCE_MODEL",
    "FAMILIES",
    "Limits",
    "Price",
    "ProviderConfig",
    "ProvidersConfig",
    "Timeouts",
    "UpstreamConfig",
    "default_providers_file",
    "load_providers",
    "parse_providers",
    "schema_file",
]

FAMILIES: tuple[str, ...] = (
    "models", "chat", "streaming", "stop", "max_tokens", "n", "vision", "tools",
    "json_mode", "usage", "errors", "auth", "params", "sdk", "messages_api", "responses_api",
    "fidelity", "billing",
)
"""The behaviour families of docs/CONTRACT.md, plus ``sdk`` (the official client parses what the
provider sends) and ``messages_api`` (Anthropic's native ``POST /v1/messages``, which relays
offer next to the OpenAI routes) and ``responses_api`` (OpenAI's ``POST /v1/responses``, what
the SDK's ``responses.create()`` and Codex-style clients call) and ``fidelity`` (what a relay
forwards to a recording upstream, ``upstream:``) and ``billing`` (usage recounted with OpenAI's
public tokenizers); the only keys a ``models:`` override may use."""

BUILTINS: tuple[str, ...] = ("reference",)
"""Servers the suite can start in-process (``builtin:``)."""

DEFAULT_REFERENCE_MODEL = "ref-1"
#: Sent with every chat request unless providers.yaml says otherwise: greedy decoding makes
#: real models' answers to the suite's prompts deterministic (reasoning models that reject
#: ``temperature`` are configured with ``request_defaults: {temperature: null}``).
DEFAULT_REQUEST: Mapping[str, Any] = MappingProxyType({"temperature": 0})
"""The model of a builtin provider that names none."""

# Header names whose literal values are credentials too (expanded values always are).
_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"},
)




def _empty_map() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Timeouts:
    """Per-request time limits, in seconds."""

    connect: float = 10.0
    """To establish the connection."""
    read: float = 60.0
    """To wait for a response byte (non-stream)."""
    total: float = 180.0
    """The whole request, including a full stream."""
    stall: float = 30.0
    """Longest silence allowed between two chunks of an event stream."""
    check: float | None = None
    """One whole check: its requests, retries and judging (default: twice ``total``)."""

    @property
    def check_deadline(self) -> float:
        """Seconds one check may take before it is an ``error`` (``check`` or 2 × total)."""
        return self.check if self.check is not None else 2 * self.total


MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one answer may cost the machine, like ``httpx.Limits`` (``limits:`` in YAML).

    Sizes count bytes after content decoding, checked while inflating, so a compressed bomb
    never grows past them in memory.  Exceeding one stops the read at once; the checks that
    read the answer ``fail`` naming the limit (:attr:`conformance.transport.Exchange.overflow`).
    """

    body: int = 8 * MiB
    """A response body (non-stream), in bytes."""
    stream: int = 8 * MiB
    """A whole event stream, in bytes."""
    events: int = 10_000
    """SSE events in one stream."""
    event: int = 1 * MiB
    """One SSE line or event (its data lines together), in bytes."""
    evidence: int = 256_000
    """Characters of a body or stream kept as an exchange's evidence (the rest is cut off
    with a visible marker)."""


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|kB|KB|MB|GB)?\s*$")
_UNITS = {None: 1, "B": 1, "KiB": 1024, "MiB": MiB, "GiB": 1024 * MiB,
          "kB": 1000, "KB": 1000, "MB": 1000**2, "GB": 1000**3}


def parse_size(value: int | str) -> int:
    """``8388608``, ``"8 MiB"``, ``"512 KiB"`` -> bytes (the schema checked the form)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Price:
    """``price:``: what a provider charges per 1M tokens, in the currency the user writes."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What ``prompt_tokens`` in and ``completion_tokens`` out cost."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


@dataclass(frozen=True)
class UpstreamConfig:
    """``upstream:``: the provider is a relay in front of a conformance reference server that
    records what it receives (the ``fidelity`` family, docs/CONTRACT.md extensions)."""

    url: str | None
    """Origin of the reference (``http://127.0.0.1:8800``); None for a builtin until started."""
    api_key: str | None = field(repr=False)
    model: str | None = None
    """The model the relay should ask the upstream for; None: the provider's own."""
    builtin: str | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    """The fixed port of a builtin upstream."""


@dataclass(frozen=True)
class ProviderConfig:
    """One provider, with defaults merged and ``${VAR}`` references expanded."""

    name: str
    base_url: str | None
    """API root without a trailing slash; None for a builtin, or when its ``${VAR}`` is unset."""
    api_key: str | None = field(repr=False)
    """None when not needed (builtin, keyless server) or when the provider is skipped."""
    model: str
    models: Mapping[str, str]
    """Family -> model override (read-only)."""
    builtin: str | None = None
    concurrency: int = 4
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    retries: int = 2
    headers: Mapping[str, str] = field(default_factory=_empty_map, repr=False)
    vision_url: str | None = None
    upstream: UpstreamConfig | None = None
    price: Price | None = None
    faults: tuple[str, ...] = ()
    latency_ms: int = 0
    request_defaults: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_REQUEST)
    """Body fields added to every chat request unless a check sets them (read-only)."""
    docs: str | None = None
    skip_reason: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)
    """Every value to redact (api_key, header values from ``${VAR}``), longest first."""
    source: str = ""
    """Where the entry starts, e.g. ``providers.yaml:12``."""
    key_variables: tuple[str, ...] = ()
    """The environment variables ``api_key`` is read from (none for a literal key)."""

    def __hash__(self) -> int:
        return hash((self.name, self.source))

    @property
    def skipped(self) -> bool:
        """True when a ``${VAR}`` it needs is unset (see :attr:`skip_reason`)."""
        return self.skip_reason is not None

    def model_for(self, family: str) -> str:
        """The model to use for checks of ``family``."""
        return self.models.get(family, self.model)

    @property
    def key_origin(self) -> str:
        """Where the configured key comes from, for messages that must never show it:
        ``the key in APIYI_API_KEY`` or ``the api_key of providers.yaml:12``."""
        if self.key_variables:
            return "the key in " + ", ".join(self.key_variables)
        if self.builtin:
            return f"the key of the builtin {self.builtin} server"
        return f"the api_key of {self.source or self.name}"


@dataclass(frozen=True)
class ProvidersConfig:
    """All providers of one file, in file order."""

    path: str
    providers: tuple[ProviderConfig, ...]

    def names(self) -> tuple[str, ...]:
        """Provider names in file order."""
        return tuple(p.name for p in self.providers)

    def select(self, names: Sequence[str]) -> ProvidersConfig:
        """Keep only ``names`` (file order kept; comma-separated items allowed; empty: all)."""
        wanted = [part.strip() for item in names for part in item.split(",") if part.strip()]
        if not wanted:
            return self
        for name in wanted:
            if name not in self.names():
                raise self._unknown(name)
        keep = set(wanted)
        return ProvidersConfig(self.path, tuple(p for p in self.providers if p.name in keep))

    def with_model(self, model: str) -> ProvidersConfig:
        """Every provider testing ``model`` instead of its own (``--model``); per-family
        ``models:`` overrides are dropped with it, so every family tests ``model``."""
        return ProvidersConfig(self.path, tuple(
            replace(p, model=model, models=MappingProxyType({})) for p in self.providers))

    def get(self, name: str) -> ProviderConfig:
        """The provider called ``name``."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise self._unknown(name)

    def _unknown(self, name: str) -> ConfigError:
        known = ", ".join(self.names())
        return ConfigError(_("unknown provider {name} (known: {known})").format(
            name=repr(name), known=known), file=self.path,
                           key="--provider")


# --------------------------------------------------------------------------- public entry points

def schema_file() -> Path:
    """``providers.schema.json``: the installed copy if any, else the repository's."""
    package = Path(conformance.__file__).resolve().parent
    installed = package / "_data" / "schemas" / "providers.schema.json"
    return installed if installed.is_file() else package.parent / "schemas" / installed.name


def default_providers_file() -> Path:
    """The ``providers.yaml`` shipped with the suite: the installed copy, else the repository's."""
    package = Path(conformance.__file__).resolve().parent
    installed = package / "_data" / "providers.yaml"
    return installed if installed.is_file() else package.parent / installed.name


def load_providers(path: str | os.PathLike[str],
                   env: Mapping[str, str] | None = None) -> ProvidersConfig:
    """Read and validate a providers file; ``env`` defaults to ``os.environ``."""
    filename = os.fspath(path)
    try:
        data = Path(filename).read_bytes()
    except FileNotFoundError:
        raise ConfigError(_("file not found"), file=filename) from None
    except IsADirectoryError:
        raise ConfigError(_("is a directory, not a file"), file=filename) from None
    except PermissionError:
        raise ConfigError(_("permission denied"), file=filename) from None
    except OSError as exc:
        raise ConfigError(_("cannot read: {error}").format(error=exc.strerror or exc),
                          file=filename) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(_("not UTF-8 text (byte {byte})").format(
            byte=f"0x{data[exc.start]:02x}"), file=filename,
                          line=line) from None
    return parse_providers(text, filename=filename, env=env)


def parse_providers(text: str, *, filename: str,
                    env: Mapping[str, str] | None = None) -> ProvidersConfig:
    """Validate the text of a providers file; ``filename`` is only used in messages."""
    doc = Document(text, filename)
    doc.check_schema(schema_file(), FAMILIES)
    return _Builder(doc, os.environ if env is None else env).build()


# --------------------------------------------------------------------------- ${VAR} expansion

_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}$]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<open>\{[^}]*\}?))"
)


class _BadReference(Exception):
    def __init__(self, reference: str, problem: str) -> None:
        super().__init__(problem)
        self.reference = reference
        self.problem = problem

    def describe(self, *, show: bool) -> str:
        shown = f" {self.reference[:40]!r}" if show else ""
        return _("{problem}{shown} (write ${{NAME}}, ${{NAME:-default}}, or $$ for a '$')").format(
            problem=_(self.problem), shown=shown)


def _expand(text: str, env: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """(expanded text, unset variables, substituted non-empty values)."""
    out: list[str] = []
    missing: list[str] = []
    used: list[str] = []
    position = 0
    while (start := text.find("$", position)) >= 0:
        out.append(text[position:start])
        match = _REFERENCE.match(text, start)
        if match is None:  # a lone '$' before anything else is literal
            out.append("$")
            position = start + 1
            continue
        position = match.end()
        if match["dollar"]:
            out.append("$")
        elif match["name"]:
            value = env.get(match["name"], "")
            if value:
                out.append(value)
                used.append(value)
            elif match["default"] is not None:
                out.append(match["default"])
            elif match["name"] not in missing:
                missing.append(match["name"])
        elif match["bare"]:
            raise _BadReference(match[0], N_("variable references need braces:"))
        else:
            raise _BadReference(match[0], N_("malformed variable reference"))
    out.append(text[position:])
    return "".join(out), missing, used


def _url_problem(url: str, *, base: bool) -> str | None:
    """Why ``url`` is not a usable http(s) URL, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "not an http(s) URL"
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or any(char.isspace() for char in url)):
        return "not an http(s) URL"
    if base and (parts.query or parts.fragment):
        return "a base URL cannot have a query or fragment"
    return None


def _loopback(host: str) -> bool:
    """True for names and addresses that stay on this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _shown_url(raw: str) -> str:
    """``raw`` (the text as written, before expansion) with any password masked."""
    return re.sub(r"(//[^/@:\s]*:)[^/@\s]*@", r"\1***@", raw)


# --------------------------------------------------------------------------- providers

class _Builder:
    """Turns the validated document into :class:`ProvidersConfig`."""

    def __init__(self, doc: Document, env: Mapping[str, str]) -> None:
        self.doc = doc
        self.env = env
        self.defaults: dict[str, Any] = doc.data.get("defaults", {})

    def build(self) -> ProvidersConfig:
        first_line: dict[str, int] = {}
        providers = []
        for index, raw in enumerate(self.doc.data["providers"]):
            path: KeyPath = ("providers", index, "name")
            name, line = raw["name"], self.doc.line(path)
            if name in first_line:
                raise self.doc.error(path, _("duplicate provider name {name} (first at line "
                                             "{line})").format(name=repr(name),
                                                               line=first_line[name]))
            first_line[name] = line
            providers.append(_ProviderBuilder(self, index, raw).build())
        return ProvidersConfig(self.doc.filename, tuple(providers))


class _ProviderBuilder:
    """Merges defaults into one provider entry and expands its ``${VAR}`` references."""

    def __init__(self, parent: _Builder, index: int, raw: dict[str, Any]) -> None:
        self.doc = parent.doc
        self.env = parent.env
        self.defaults = parent.defaults
        self.raw = raw
        self.base: KeyPath = ("providers", index)
        self.missing: list[str] = []
        self.secrets: list[str] = []

    def expand(self, path: KeyPath, raw: str,
               secret: Literal["never", "expanded", "always"] = "never") -> str | None:
        """Expanded value, or None when a variable it needs is unset (recorded for skip_reason).

        ``secret`` says when the value is recorded for redaction: never, when it came from a
        ``${VAR}`` (it and every substituted value), or always.
        """
        try:
            value, missing, used = _expand(raw, self.env)
        except _BadReference as exc:
            raise self.doc.error(path, exc.describe(show=not sensitive(path))) from None
        self.missing.extend(name for name in missing if name not in self.missing)
        if missing:
            return None
        if secret == "always" or (secret == "expanded" and used):
            # What is sent is stripped (a variable read from a file often ends in a newline):
            # the value masked is exactly the value sent.
            self.secrets.extend(part.strip() for part in [*used, value])
        return value

    def merged(self, key: str) -> dict[str, tuple[KeyPath, Any]]:
        """Defaults' then the provider's entries of mapping ``key``, each with its path."""
        out: dict[str, tuple[KeyPath, Any]] = {}
        for where, source in ((("defaults",), self.defaults), (self.base, self.raw)):
            for name, value in source.get(key, {}).items():
                out[name] = ((*where, key, name), value)
        return out

    def setting(self, key: str, default: Any) -> Any:
        return self.raw.get(key, self.defaults.get(key, default))

    def url(self, key: str, *, base: bool, within: KeyPath = ()) -> str | None:
        raw = self._at(within).get(key)
        if raw is None:
            return None
        path = (*self.base, *within, key)
        try:
            value, missing, used = _expand(raw, self.env)
        except _BadReference as exc:
            raise self.doc.error(path, exc.describe(show=True)) from None
        self.missing.extend(name for name in missing if name not in self.missing)
        if missing:
            return None
        value = value.strip()
        problem = _url_problem(value, base=base)
        if problem:
            raise self.doc.error(path, f"{problem}: {_shown_url(raw)!r}")
        parts = urlsplit(value)
        if parts.username is not None or parts.password is not None:
            # httpx would send these as Basic auth instead of the configured key.
            raise self.doc.error(path, _("a URL cannot carry credentials (user:password@); use "
                                   "api_key or headers: {url}").format(url=repr(_shown_url(raw))))
        # A ${VAR} in a URL is a secret (e.g. a token in the path), except the part that is
        # the address itself (scheme://host:port), which every report names.
        origin = f"{parts.scheme}://{parts.netloc}"
        for part in used:
            part = part.strip()
            self.secrets.append(part[len(origin):] if part.startswith(origin) else part)
        return value.rstrip("/") if base else value

    def build(self) -> ProviderConfig:
        raw, base = self.raw, self.base
        builtin: str | None = raw.get("builtin")
        base_url = self.url("base_url", base=True)

        api_key = None
        key_variables: list[str] = []
        if raw.get("api_key") is not None:
            api_key = (self.expand((*base, "api_key"), raw["api_key"], "always") or "").strip()
            key_variables = [m["name"] for m in _REFERENCE.finditer(raw["api_key"])
                             if m["name"]]
            if any(char in api_key for char in "\r\n\0"):
                raise self.doc.error((*base, "api_key"), "the key contains a line break "
                                     "or NUL (not shown)")

        model = DEFAULT_REFERENCE_MODEL
        if "model" in raw:
            model = self.model((*base, "model"), raw["model"])
        models = {family: self.model(path, value)
                  for family, (path, value) in self.merged("models").items()}

        headers = self.headers()
        request = dict(DEFAULT_REQUEST)
        for name, (_line, value) in self.merged("request_defaults").items():
            if value is None:
                request.pop(name, None)
            else:
                request[name] = value
        vision_url = self.url("vision_url", base=False)
        upstream = self.upstream()
        timeouts = {name: float(value) for name, (_line, value) in self.merged("timeouts").items()}
        limits = {name: parse_size(value) for name, (_line, value) in self.merged("limits").items()}
        skip_reason = (SET_VARIABLES.format(variables=", ".join(self.missing))
                       if self.missing else None)
        secrets = sorted({s for s in self.secrets if s}, key=lambda s: (-len(s), s))
        return ProviderConfig(
            name=raw["name"],
            base_url=base_url,
            api_key=None if skip_reason else api_key or None,
            model=model,
            models=MappingProxyType(models),
            builtin=builtin,
            concurrency=int(self.setting("concurrency", 4)),
            timeouts=Timeouts(**timeouts),
            limits=Limits(**limits),
            retries=int(self.setting("retries", 2)),
            headers=MappingProxyType(headers),
            vision_url=vision_url,
            upstream=upstream,
            price=self.price(),
            faults=self.faults(),
            latency_ms=int(raw.get("latency_ms", 0)),
            request_defaults=MappingProxyType(request),
            docs=raw.get("docs"),
            skip_reason=skip_reason,
            secrets=tuple(secrets),
            source=f"{self.doc.filename}:{self.doc.line(base)}",
            key_variables=tuple(dict.fromkeys(key_variables)),
        )

    def _at(self, within: KeyPath) -> dict[str, Any]:
        node: Any = self.raw
        for key in within:
            node = node[key]
        return node  # type: ignore[no-any-return]

    def price(self) -> Price | None:
        raw = self.setting("price", None)
        return None if raw is None else Price(float(raw["input"]), float(raw["output"]))

    def upstream(self) -> UpstreamConfig | None:
        """``upstream:`` with its URL checked and its key recorded as a secret."""
        raw: dict[str, Any] | None = self.raw.get("upstream")
        if raw is None:
            return None
        where: KeyPath = ("upstream",)
        path = (*self.base, *where)
        url = self.url("url", base=True, within=where)
        if url is not None:
            parts = urlsplit(url)
            if parts.path.rstrip("/") not in ("", "/v1"):
                raise self.doc.error((*path, "url"), "the root of a conformance "
                                     "serve-reference server, e.g. http://127.0.0.1:8800 "
                                     f"(no path): {_shown_url(raw['url'])!r}")
            url = f"{parts.scheme}://{parts.netloc}"
        key = None
        if raw.get("api_key") is not None:
            key = (self.expand((*path, "api_key"), raw["api_key"], "always") or "").strip()
            if any(char in key for char in "\r\n\0"):
                raise self.doc.error((*path, "api_key"), "the key contains a line break "
                                     "or NUL (not shown)")
        host = str(raw.get("host", "127.0.0.1")).strip()
        if raw.get("builtin") and not key and not _loopback(host):
            raise self.doc.error((*path, "host"), f"a builtin upstream on {host!r} (not "
                                 "loopback) needs an api_key, or anyone could use it")
        model = self.model((*path, "model"), raw["model"]) if "model" in raw else None
        return UpstreamConfig(url=url, api_key=key or None, model=model,
                              builtin=raw.get("builtin"), host=host, port=raw.get("port"))

    def faults(self) -> tuple[str, ...]:
        """The ``faults:`` of a builtin reference, each a name the reference provider knows."""
        names: list[str] = self.raw.get("faults", [])
        if not names:
            return ()
        # The names live with the reference provider that applies them. faults.py is pure
        # data (no server imports), so importing it here is cheap; repeating its ~110 names
        # as a schema enum would need a sync test and give no did-you-mean.
        from conformance.reference.faults import FAULTS, QUIRKS, UNSTABLE

        known = [*FAULTS, *QUIRKS, *UNSTABLE]
        for index, name in enumerate(names):
            if name in known:
                continue
            path = (*self.base, "faults", index)
            latency = re.fullmatch(r"latency[-_]?(\d*)(?:ms)?", name)
            if latency:
                hint = f"; latency is its own key: 'latency_ms: {latency.group(1) or 'N'}'"
            else:
                close = difflib.get_close_matches(name, known, n=1)
                hint = (f"; did you mean {close[0]!r}?" if close
                        else " (the names are listed in conformance/reference/faults.py)")
            raise self.doc.error(path, _("unknown fault {name}").format(name=repr(name)) + hint)
        return tuple(names)

    def model(self, path: KeyPath, raw: str) -> str:
        value = self.expand(path, raw)
        if value is None:
            return raw  # the provider is skipped; keep the text for display
        if not value.strip():
            raise self.doc.error(path, _("empty model name after expanding {raw}").format(
                raw=repr(raw)))
        return value.strip()

    def headers(self) -> dict[str, str]:
        """Merged headers; names compare case-insensitively (the provider wins)."""
        by_lower: dict[str, tuple[str, KeyPath, str]] = {}
        for name, (path, raw) in self.merged("headers").items():
            earlier = by_lower.get(name.lower())
            if earlier and earlier[1][:-1] == path[:-1]:
                raise self.doc.error(path, f"duplicate header name (also at line "
                                           f"{self.doc.line(earlier[1])}; names ignore case)")
            by_lower[name.lower()] = (name, path, raw)
        headers = {}
        for lower, (name, path, raw) in by_lower.items():
            value = self.expand(path, raw,
                                "always" if lower in _CREDENTIAL_HEADERS else "expanded")
            value = raw if value is None else value.strip()
            if any(char in value for char in "\r\n\0"):
                raise self.doc.error(path, "a header value cannot contain a line break "
                                     "(CR/LF) or NUL (value not shown)")
            headers[name] = value
        return headers
