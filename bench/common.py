"""Shared helpers of the benchmarks: server processes, wrk, percentiles, /proc, result files.

Every process started here is stopped in a `finally`; every wait is bounded in time.
Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out"
WRK_INSTALL = "apt-get update -qq && apt-get install -y -qq wrk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def oscartes_command() -> list[str]:
    """The `oscartes` console script of this interpreter's environment (else `python -m node.cli`)."""
    script = Path(sys.executable).parent / "oscartes"
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


def oscartes(*args: str, timeout: float = 600.0) -> str:
    """Run one `oscartes` command to completion; its output, or an error with its stderr."""
    done = subprocess.run([*oscartes_command(), *args], capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"oscartes {' '.join(args)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout.strip()


def http_get(url: str, accept: str = "*/*", timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on loopback: (status, headers, body); HTTP errors are answers, not exceptions."""
    if not url.startswith(f"http://{HOST}:"):
        raise ValueError(f"benchmarks only talk to {HOST}: {url}")
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-chars:] if self.log.exists() else ""


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            status, _, _ = http_get(server.url(path), timeout=2.0)
            if status == 200:
                return
            last = f"status {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TimeoutError(f"{server.name} not ready on {server.url(path)} after {timeout:.0f}s ({last}):\n"
                       f"{server.log_tail()}")  # fmt: skip


def _stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGINT (aiohttp's graceful exit runs the cleanup contexts), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def serving(name: str, argv: Sequence[str], port: int, ready_path: str = "/", timeout: float = 120.0,
            env: Mapping[str, str] | None = None) -> Iterator[Server]:  # fmt: skip
    """Start a server process, wait until `ready_path` answers 200, and always stop it."""
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / f"{name}.log"
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would block the server
        process = subprocess.Popen(list(argv), stdout=sink, stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})})  # fmt: skip
        server = Server(name, process, port, log)
        try:
            _wait_ready(server, ready_path, timeout)
            yield server
        finally:
            _stop(process)


def hello_server(port: int) -> Any:
    """The baseline: a minimal aiohttp app in its own process (bench/hello.py)."""
    return serving("hello", [sys.executable, "-m", "bench.hello", "--port", str(port)], port)


def node_server(data: Path, port: int, timeout: float = 300.0, name: str = "node",
                env: Mapping[str, str] | None = None) -> Any:  # fmt: skip
    argv = [*oscartes_command(), "serve", "--data", str(data), "--host", HOST, "--port", str(port)]
    return serving(name, argv, port, "/ns/context.jsonld", timeout, env)


# -- wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    errors: int
    non_2xx: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Read `wrk --latency` output; errors and non-2xx answers are counted, not hidden."""
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M)}
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s+(\d+) requests in", output, re.M)
    if rps is None or total is None or len(pct) != 4:
        raise ValueError(f"cannot read wrk output:\n{output}")
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = sum(int(g) for g in socket_errors.groups()) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(float(rps.group(1)), pct["50"], pct["75"], pct["90"], pct["99"], int(total.group(1)),
                     errors, int(non_2xx.group(1)) if non_2xx else 0)  # fmt: skip


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        sys.exit(f"wrk is not installed: as root, run `{WRK_INSTALL}` (or `make bench`, which does it)")
    return path


def run_wrk(url: str, accept: str, threads: int, connections: int, seconds: float,
            script: Path | None = None) -> WrkResult:  # fmt: skip
    if not url.startswith(f"http://{HOST}:"):
        raise ValueError(f"wrk only loads {HOST}: {url}")
    argv = [require_wrk(), "--latency", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
            "--timeout", "5s", "-H", f"Accept: {accept}", *(["-s", str(script)] if script else []), url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout)


# -- figures --------------------------------------------------------------------------------


def rotating_script(paths: Sequence[str], name: str) -> Path:
    """A wrk Lua script that asks for `paths` in turn (one Lua state per wrk thread)."""
    OUT.mkdir(parents=True, exist_ok=True)
    listing = OUT / f"{name}.paths"
    listing.write_text("".join(f"{p}\n" for p in paths), encoding="utf-8")
    script = OUT / f"{name}.lua"
    script.write_text(
        f'local paths = {{}}\nfor line in io.lines("{listing}") do paths[#paths + 1] = line end\n'
        "local i = 0\nrequest = function()\n  i = i + 1\n"
        "  return wrk.format(nil, paths[(i % #paths) + 1])\nend\n",
        encoding="utf-8",
    )
    return script


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of an empty sample")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM... of a live process, in kB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key.startswith("Vm") and value.strip().endswith("kB"):
            fields[key] = int(value.split()[0])
    return fields


def machine() -> dict[str, str]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    return {"nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
            "kernel": platform.release()}  # fmt: skip


def code_version() -> str:
    """The commit measured (read-only git), with "+changes" when the work tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=BENCH_DIR, timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=BENCH_DIR, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def row(label: str, value: float, unit: str = "") -> str:
    return f"  {label:<44} {value:>12,.2f} {unit}".rstrip()


def write_json(path: str | None, name: str, result: Any) -> None:
    """Print the result as JSON and, with --json PATH, save it (run_all reads it back)."""
    data = asdict(result) if hasattr(result, "__dataclass_fields__") else result
    text = json.dumps(
        {"benchmark": name, "machine": machine(), "code": code_version(), **data}, indent=2, ensure_ascii=False
    )
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")
