"""Driving load: the server process, wrk runs, and what the server used meanwhile.

wrk (``/usr/bin/wrk``, Debian's package) runs outside the server and, in C with a Lua
script, costs far less CPU per request than any Python client; its own CPU time is
reported beside each run so that the share of the 2 cores it took is visible.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "wrk" / "starling.lua"
PACED_LUA = LUA.with_name("paced.lua")
READY_TIMEOUT_SECONDS = 600.0
# Before each run, wait for the rest of the machine to calm down (it may be shared).
QUIET_CORES = 0.25
QUIET_SAMPLE_SECONDS = 1.0
QUIET_WAIT_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- /proc accounting ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


def machine_busy_seconds() -> float:
    """CPU time spent by everything on the machine (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLOCK_TICKS


@dataclass
class Usage:
    """CPU used during one run, in cores (1.0 = one core busy all the time); ``other`` is
    everything else on the machine (other people's work on a shared machine), and
    ``other_before`` what it was just before the run started."""

    server_cores: float
    redis_cores: float
    wrk_cores: float
    other_cores: float
    other_before: float
    server_rss_mib: float

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 2) for key, value in asdict(self).items()}


@dataclass
class ServerProcess:
    """The server under test (``bench.server``) and the redis-server it started."""

    process: subprocess.Popen[bytes]
    port: int
    run_dir: Path
    network: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def redis_pids(self) -> list[int]:
        return children(self.process.pid)

    @classmethod
    def start(cls, run_dir: Path, quick: bool, sizes: dict[str, Any] | None = None) -> ServerProcess:
        """Start the server and wait until its network is loaded; ``sizes`` override fields
        of ``bench.data.Spec``."""
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "network.json").unlink(missing_ok=True)
        port = free_port()
        command = [sys.executable, "-m", "bench.server", "--run-dir", str(run_dir), "--port", str(port)]
        if quick:
            command.append("--quick")
        if sizes:
            command += ["--spec", json.dumps(sizes)]
        log = (run_dir / "server.log").open("wb")
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        server = cls(process=process, port=port, run_dir=run_dir)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        network = self.run_dir / "network.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bench server exited; see {self.run_dir / 'server.log'}")
            if network.exists():
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                        self.network = json.loads(network.read_text())
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("bench server not ready in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_snapshot(self) -> tuple[float, float, float]:
        """(server, redis, whole machine) CPU seconds so far."""
        redis = sum(cpu_seconds(pid) for pid in self.redis_pids)
        return cpu_seconds(self.process.pid), redis, machine_busy_seconds()


async def wait_for_quiet(server: ServerProcess) -> float:
    """Wait (at most ``QUIET_WAIT_SECONDS``) until the rest of the machine uses less than
    ``QUIET_CORES``; returns what it used in the last second looked at."""
    deadline = time.monotonic() + QUIET_WAIT_SECONDS
    while True:
        server_before, redis_before, machine_before = server.cpu_snapshot()
        await asyncio.sleep(QUIET_SAMPLE_SECONDS)
        server_after, redis_after, machine_after = server.cpu_snapshot()
        ours = (server_after - server_before) + (redis_after - redis_before)
        other = max(0.0, (machine_after - machine_before) - ours) / QUIET_SAMPLE_SECONDS
        if other < QUIET_CORES or time.monotonic() > deadline:
            return round(other, 2)


# -- wrk ------------------------------------------------------------------------------


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("bench: wrk not found; install it with `apt-get install wrk`")
    return found


@dataclass
class WrkRun:
    mode: str
    connections: int
    seconds: float
    threads: int
    result: dict[str, Any]
    usage: Usage

    @property
    def rps(self) -> float:
        return self.result["requests"] / (self.result["duration_us"] / 1e6)

    def latency_ms(self, name: str) -> float:
        return self.result["latency_us"][name] / 1000

    def summary(self) -> dict[str, Any]:
        latency = {name: round(self.latency_ms(name), 2) for name in ("p50", "p95", "p99", "mean", "max")}
        return {
            "mode": self.mode,
            "connections": self.connections,
            "threads": self.threads,
            "seconds": self.seconds,
            "requests": self.result["requests"],
            "rps": round(self.rps, 1),
            "latency_ms": latency,
            "errors": self.result["errors"] + sum(self.result["socket_errors"].values()),
            "sent": self.result["sent"],
            "usage": self.usage.as_dict(),
        }


async def run_wrk(
    server: ServerProcess,
    mode: str,
    connections: int,
    seconds: float,
    threads: int = 2,
    background: float | None = None,
    pause_ms: int = 0,
) -> WrkRun:
    """One wrk run against the server; CPU of server, redis, wrk and the rest measured.
    ``background``: the rest of the machine's load measured by the caller, which then has
    already waited for quiet (``wait_for_quiet``); else this waits. ``pause_ms``: each
    connection pauses this long before each request (``paced.lua``), for a rate below
    capacity."""
    threads = min(threads, connections)
    command = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(PACED_LUA if pause_ms else LUA),
        server.url,
        "--",
        mode,
        str(server.run_dir),
        *([str(pause_ms)] if pause_ms else []),
    ]
    if background is None:
        background = await wait_for_quiet(server)
    server_before, redis_before, machine_before = server.cpu_snapshot()
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    elapsed = time.monotonic() - started
    server_after, redis_after, machine_after = server.cpu_snapshot()
    lines = [line for line in stdout.decode().splitlines() if line.startswith("BENCH_JSON ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr.decode()}{stdout.decode()}")
    result = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    wrk_cpu = _child_cpu_seconds()
    server_cores = (server_after - server_before) / elapsed
    redis_cores = (redis_after - redis_before) / elapsed
    wrk_cores = wrk_cpu / elapsed
    machine_cores = (machine_after - machine_before) / elapsed
    usage = Usage(
        server_cores=server_cores,
        redis_cores=redis_cores,
        wrk_cores=wrk_cores,
        other_cores=max(0.0, machine_cores - server_cores - redis_cores - wrk_cores),
        other_before=background,
        server_rss_mib=rss_mib(server.process.pid),
    )
    return WrkRun(
        mode=mode, connections=connections, seconds=seconds, threads=threads, result=result, usage=usage
    )


_children_cpu_seen = 0.0


def _child_cpu_seconds() -> float:
    """CPU time of the child processes (wrk) reaped since the last call."""
    global _children_cpu_seen
    usage = os.times()
    total = usage.children_user + usage.children_system
    spent, _children_cpu_seen = total - _children_cpu_seen, total
    return spent
