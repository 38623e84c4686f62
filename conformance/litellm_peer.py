"""A real relay no one here wrote, for checking the suite against: the LiteLLM proxy
(``litellm[proxy]`` from PyPI) in front of the reference provider.

The proxy serves one client-facing model, ``gpt-4o-mini``, mapped to ``openai/ref-1`` at the
reference provider's ``/v1`` with the reference's key; clients use a master key of their own
(no database, no UI login).  Anthropic's ``POST /v1/messages`` is served too: LiteLLM
translates it into a Chat Completions request to the same upstream
(``use_chat_completions_url_for_anthropic_messages``; by default LiteLLM would send an OpenAI
upstream the Responses API, which the reference does not offer).

LiteLLM runs from its own virtual environment (``.litellm-venv`` by default), installed with
its dependencies pinned by ``litellm-constraints.txt`` beside this module, so a run does not
change when a dependency is released.  It is started offline and kept on 127.0.0.1:

* with a clean environment (no provider keys, database or Redis settings of the caller), its
  home and working directory a directory of its own, and ``LITELLM_MODE=PRODUCTION`` (no
  ``.env`` file read);
* with every remote fetch it makes at start or on demand switched to its bundled copy
  (``LITELLM_LOCAL_*``: model cost map, Anthropic beta headers, blog posts, policy templates,
  autorouter presets);
* with ``HTTP(S)_PROXY`` pointing at a :class:`Trap` on 127.0.0.1 that records and refuses
  any request a client library would send elsewhere (``NO_PROXY`` keeps 127.0.0.1 direct), so
  a new phone-home in a later version shows up in :attr:`Trap.requests` instead of leaving the
  machine.

    python -m conformance.litellm_peer install        # into .litellm-venv
    python -m conformance.litellm_peer start          # reference + LiteLLM; prints the env
    python -m conformance.litellm_peer stop
    python -m conformance.litellm_peer run [ARGS...]  # start, run providers.litellm.yaml, stop

This module never imports pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import yaml

from conformance.localpeer import parse_peer_args

VERSION = "1.106.12"
LITELLM = f"litellm[proxy]=={VERSION}"
#: The proxy's authentication error handler does ``import prisma`` (to tell database outages
#: from bad keys) although ``litellm[proxy]`` does not depend on it (its ``extra-proxy`` extra
#: and LiteLLM's Docker image do): without it a request without a key is answered
#: ``500 Internal Server Error`` (text/plain) instead of LiteLLM's 401.  Importing it needs no
#: generated client and no engine download; no database is configured.
PRISMA = "prisma==0.15.0"
#: Every package of the environment the expectations were recorded in (``pip freeze``).
CONSTRAINTS = Path(__file__).resolve().parent / "litellm-constraints.txt"
DEFAULT_VENV = Path(".litellm-venv")
STATE = Path(".litellm-state.json")
#: The client-facing model name, mapped to ``openai/ref-1`` upstream.
MODEL = "gpt-4o-mini"
UPSTREAM_MODEL = "ref-1"
START_TIMEOUT = 180.0

#: Remote fetches LiteLLM 1.106 makes at start or on demand, each switched to its bundled copy.
OFFLINE_ENV: Mapping[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "LITELLM_LOG": "WARNING",
}
#: The variables kept from the caller's environment (all others are dropped).
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "PIP_CERT")


@dataclass(frozen=True)
class Proxy:
    """One running LiteLLM proxy (and, when started by :func:`start_with_reference`, the
    reference provider process behind it)."""

    pid: int
    port: int
    master_key: str
    upstream_url: str
    workdir: str
    reference_pid: int | None = None
    upstream_key: str | None = None
    """The reference's key, for the fidelity checks' ``upstream:`` (LiteLLM's own channel key)."""

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def origin(self) -> str:
        """The upstream's origin, where its assets (the vision check's image) are served."""
        return self.upstream_url.rsplit("/v1", 1)[0]


class Trap:
    """A forward proxy on 127.0.0.1 that answers every request 403 and records its first
    line (``CONNECT host:443 HTTP/1.1`` or ``GET http://host/... HTTP/1.1``)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="litellm-trap", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Trap:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\n" not in data and len(data) < 8192:
                        chunk = conn.recv(1024)
                        if not chunk:
                            break
                        data += chunk
                line = data.split(b"\n", 1)[0].decode("latin-1").strip()
                self.requests.append(line or "(connection without a request line)")
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n"
                                 b"connection: close\r\n\r\n")


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(venv: Path = DEFAULT_VENV, *, quiet: bool = False) -> None:
    """Create ``venv`` and install the pinned LiteLLM proxy (and prisma) into it
    (idempotent)."""
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    cmd = [str(venv_python(venv)), "-m", "pip", "install", LITELLM, PRISMA]
    if CONSTRAINTS.exists():
        cmd += ["--constraint", str(CONSTRAINTS)]
    if quiet:
        cmd.append("--quiet")
    subprocess.run(cmd, check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


#: Served by LiteLLM and by the reference alike, with exact OpenAI token counts (billing).
BILLING_MODEL = "gpt-4o"


def proxy_config(upstream_url: str, upstream_key: str, master_key: str) -> dict[str, object]:
    """LiteLLM's config.yaml: the models mapped to the upstream, a master key, no database.

    ``gpt-4o-mini`` is the reference's own ``ref-1`` (the whole suite); ``gpt-4o`` is the
    reference's ``gpt-4o``, whose usage is exact under o200k_base, for the billing family
    (``models: {billing: gpt-4o}`` in providers.litellm.yaml).
    """
    return {
        "model_list": [{
            "model_name": name,
            "litellm_params": {"model": f"openai/{upstream}", "api_base": upstream_url,
                               "api_key": upstream_key},
        } for name, upstream in ((MODEL, UPSTREAM_MODEL), (BILLING_MODEL, BILLING_MODEL))],
        "litellm_settings": {
            # POST /v1/messages → Chat Completions upstream (instead of the Responses API).
            "use_chat_completions_url_for_anthropic_messages": True,
        },
        "general_settings": {"master_key": master_key},
    }


def proxy_environment(venv: Path, home: Path, trap_url: str | None) -> dict[str, str]:
    """The whole environment LiteLLM runs with (nothing else of the caller's)."""
    env = {name: os.environ[name] for name in KEPT_ENV if name in os.environ}
    env["PATH"] = os.pathsep.join([str(venv.resolve() / "bin"), env.get("PATH", "/usr/bin:/bin")])
    env["HOME"] = str(home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(OFFLINE_ENV)
    if trap_url:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy"):
            env[name] = trap_url
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def _wait(process: subprocess.Popen[bytes], what: str, url: str, headers: Mapping[str, str],
          log: Path | None) -> None:
    """Until ``url`` answers 200, the process exits or START_TIMEOUT passes."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}"
                               + (f"; see {log}" if log else ""))
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=dict(headers), timeout=5).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer within {START_TIMEOUT:g}s"
                       + (f"; see {log}" if log else ""))


def start(upstream_url: str, upstream_key: str, venv: Path = DEFAULT_VENV,
          workdir: Path | None = None, trap: Trap | None = None) -> Proxy:
    """Start LiteLLM on a free port in front of ``upstream_url``; wait until it serves
    ``/v1/models`` to its master key.  Its config.yaml and ``litellm.log`` are in ``workdir``
    (a new temporary directory by default)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="litellm-peer-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    master_key = "sk-litellm-" + secrets.token_hex(12)
    config = workdir / "config.yaml"
    config.touch(mode=0o600)
    config.write_text(yaml.safe_dump(proxy_config(upstream_url, upstream_key, master_key),
                                     sort_keys=False), encoding="utf-8")
    port = free_port()
    log = workdir / "litellm.log"
    cmd = [str(venv.resolve() / "bin" / "litellm"), "--config", str(config),
           "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                   env=proxy_environment(venv, workdir,
                                                         trap.url if trap else None),
                                   start_new_session=True)
    proxy = Proxy(process.pid, port, master_key, upstream_url, str(workdir),
                  upstream_key=upstream_key)
    try:
        _wait(process, "LiteLLM", proxy.base_url + "/models",
              {"authorization": f"Bearer {master_key}"}, log)
    except BaseException:
        stop_pids([process.pid])
        raise
    return proxy


def start_reference(workdir: Path) -> tuple[int, str, str]:
    """``conformance serve-reference`` in a process of its own (for ``start``, which exits):
    its pid, base URL and key."""
    port = free_port()
    key = "sk-ref-" + secrets.token_hex(12)
    log = workdir / "reference.log"
    cmd = [sys.executable, "-m", "conformance", "serve-reference", "--host", "127.0.0.1",
           "--port", str(port), "--api-key", key]
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait(process, "the reference provider", url + "/models",
              {"authorization": f"Bearer {key}"}, log)
    except BaseException:
        stop_pids([process.pid])
        raise
    return process.pid, url, key


def start_with_reference(venv: Path = DEFAULT_VENV, workdir: Path | None = None,
                         trap: Trap | None = None) -> Proxy:
    """The reference provider and LiteLLM in front of it, both in processes of their own."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="litellm-peer-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    ref_pid, url, key = start_reference(workdir)
    try:
        proxy = start(url, key, venv, workdir, trap)
    except BaseException:
        stop_pids([ref_pid])
        raise
    return Proxy(proxy.pid, proxy.port, proxy.master_key, url, proxy.workdir, ref_pid, key)


def stop_pids(pids: Sequence[int]) -> None:
    """SIGTERM each process group, then SIGKILL what is still there after 5 s."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    for pid in pids:
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def stop(proxy: Proxy) -> None:
    stop_pids([proxy.pid] + ([proxy.reference_pid] if proxy.reference_pid else []))


def environment(proxy: Proxy) -> dict[str, str]:
    """The variables providers.litellm.yaml reads."""
    return {"LITELLM_PEER_URL": proxy.base_url, "LITELLM_PEER_KEY": proxy.master_key,
            "LITELLM_PEER_VISION_URL": proxy.origin + "/assets/color/red.png",
            "LITELLM_PEER_UPSTREAM_URL": proxy.origin,
            "LITELLM_PEER_UPSTREAM_KEY": proxy.upstream_key or ""}


@contextlib.contextmanager
def running(upstream_url: str, upstream_key: str, venv: Path = DEFAULT_VENV,
            workdir: Path | None = None, trap: Trap | None = None) -> Iterator[Proxy]:
    """LiteLLM in front of an upstream the caller runs, stopped on exit."""
    proxy = start(upstream_url, upstream_key, venv, workdir, trap)
    try:
        yield proxy
    finally:
        stop(proxy)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``litellm-peer``."""
    parser = argparse.ArgumentParser(prog="litellm-peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help=f"install {LITELLM} into the venv")
    install_cmd.add_argument("--quiet", action="store_true")
    sub.add_parser("start", help="start the reference provider and LiteLLM in front of it; "
                   "prints the variables to export")
    sub.add_parser("stop", help="stop what 'start' started")
    run = sub.add_parser("run", help="start, run the suite on providers.litellm.yaml, stop")
    run.add_argument("args", nargs=argparse.REMAINDER, help="passed to conformance run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_peer_args(parser, argv)
    if args.command == "install":
        install(args.venv, quiet=args.quiet)
        return 0
    if args.command == "start":
        proxy = start_with_reference(args.venv)
        STATE.write_text(json.dumps(asdict(proxy)))
        for name, value in environment(proxy).items():
            print(f"export {name}={shlex.quote(value)}")
        print(f"# logs: {proxy.workdir}", file=sys.stderr)
        return 0
    if args.command == "stop":
        if STATE.exists():
            stop(Proxy(**json.loads(STATE.read_text())))
            STATE.unlink()
        return 0
    trap = Trap().start()
    try:
        proxy = start_with_reference(args.venv, trap=trap)
        try:
            env = {**os.environ, **environment(proxy)}
            cmd = [sys.executable, "-m", "conformance", "run", "--providers",
                   "providers.litellm.yaml", *args.args]
            code = subprocess.run(cmd, env=env, check=False).returncode
        finally:
            stop(proxy)
    finally:
        trap.stop()
    for line in trap.requests:
        print(f"litellm-peer: LiteLLM tried to reach another host: {line}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
