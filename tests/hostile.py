"""What every run next to a hostile provider must still be (issue "Hostile or broken providers
cannot break the run, exhaust the machine or leak a key"): exit 0, the builtin reference's
results all there and passing, all four reports written (junit.xml well-formed), peak memory
under 1 GB, no traceback, and the configured key in no artefact and no console output, in any
encoding a provider could echo it in."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from conformance.checks.registry import all_checks
from tests.conftest import RunOutput, child_env, judged

REPORTS = ("results.json", "junit.xml", "matrix.html", "summary.md")
RSS_LIMIT_MB = 1024


def encodings(key: str) -> dict[str, str]:
    """Every form of ``key`` a provider may echo and a scan must not find."""
    raw = key.encode()
    escaped = "".join(f"\\u{ord(char):04x}" for char in key)
    out = {
        "raw": key, "upper": key.upper(), "json_u": escaped, "json_u_upper": escaped.upper(),
        "json_u_twice": escaped.replace("\\", "\\\\"),
        "hex": raw.hex(), "HEX": raw.hex().upper(),
        "url": quote(key, safe=""), "url_all": "".join(f"%{b:02X}" for b in raw),
    }
    for name, value in (("key", raw), ("bearer", b"Bearer " + raw), ("basic", b"user:" + raw),
                        ("colon", b":" + raw)):
        out[f"b64_{name}"] = base64.b64encode(value).decode()
        out[f"b64url_{name}"] = base64.urlsafe_b64encode(value).decode().rstrip("=")
    return out


def leaks(text: str, key: str) -> list[str]:
    """The names of the encodings of ``key`` found in ``text``."""
    return [name for name, form in encodings(key).items() if form in text]


@dataclass
class HostileRun:
    """A run next to hostile providers, with its wall time and the peak RSS of its process."""

    out: RunOutput
    seconds: float
    peak_rss_mb: float


def run_measured(providers: Path, report_dir: Path, *extra: str,
                 env: Mapping[str, str] | None = None, timeout: float = 900) -> HostileRun:
    """``conformance run`` in a subprocess (as :func:`tests.conftest.run_suite`); the peak RSS
    is that process's own (and its waited-for children's, e.g. xdist workers), from
    ``wait4`` — not the largest of every child this test process ever had, which under
    ``--dist loadfile`` includes the whole-suite run of every fault."""
    args = [sys.executable, "-m", "conformance", "run", "--providers", str(providers),
            "--report-dir", str(report_dir), "-p", "no:cacheprovider", "-q", *extra]
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(args, cwd=providers.parent, env=child_env(env), stdout=stdout,
                                stderr=stderr, text=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        stdout.seek(0)
        stderr.seek(0)
        out = RunOutput(proc.returncode, stdout.read(), stderr.read(), report_dir)
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return HostileRun(out, seconds, usage.ru_maxrss / scale)


def assert_sound(run: HostileRun, *, keys: Sequence[str] = (), seconds: float = 300) -> None:
    """Every guarantee a hostile provider must not break (module docstring)."""
    out = run.out
    console = out.stdout + out.stderr
    tail = out.stdout[-3000:] + out.stderr[-3000:]
    assert out.returncode == 0, tail
    assert "Traceback" not in console and "INTERNALERROR" not in console, tail
    for name in REPORTS:
        assert (out.report_dir / name).is_file(), f"{name} missing: {tail}"
    ET.parse(out.report_dir / "junit.xml")  # well-formed XML 1.0
    reference = {check: v for (provider, check), v in out.outcomes().items()
                 if provider == "reference"}
    assert set(reference) == {c.id for c in all_checks()}, "reference results lost"
    assert {c: v for c, v in judged(reference).items() if v[0] != "pass"} == {}
    assert run.peak_rss_mb < RSS_LIMIT_MB, run.peak_rss_mb
    assert run.seconds < seconds, run.seconds
    for key in keys:
        found = {"console": leaks(console, key)}
        for path in sorted(out.report_dir.rglob("*")):
            if path.is_file():
                found[str(path.relative_to(out.report_dir))] = leaks(
                    path.read_bytes().decode("utf-8", "replace"), key)
        assert not {where: names for where, names in found.items() if names}
