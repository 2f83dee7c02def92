"""`starling dev` (or `serve`) as a real child process, for tests of the command itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.live import free_port

STARTUP_SECONDS = 60
STOP_SECONDS = 30
# Variables of the test run's own environment that would point the child elsewhere.
_INHERITED_OUT = ("REDIS_URL", "MONGODB_URL", "TOKEN_SECRET", "STARLING_DATA_DIR", "PUBLIC_URL")


def redis_servers(parent: int | None = None) -> set[int]:
    """PIDs of running redis-servers (only the children of ``parent`` when given)."""
    command = (
        ["pgrep", "-f", "redis-server"]
        if parent is None
        else ["pgrep", "-P", str(parent), "-f", "redis-server"]
    )
    found = subprocess.run(command, capture_output=True, text=True).stdout
    return {int(pid) for pid in found.split() if _running(int(pid))}


def _running(pid: int) -> bool:
    """Not gone and not a zombie (a killed process's orphans wait to be reaped by init)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class StarlingProcess:
    """A started ``python -m starling.cli <args>``; ``stop()`` returns its whole output."""

    process: subprocess.Popen[str]
    base_url: str
    output: str = field(default="")

    @classmethod
    def start(
        cls, args: Sequence[str], *, data_dir: Path | None = None, env: Mapping[str, str] | None = None
    ) -> StarlingProcess:
        child_env = {k: v for k, v in os.environ.items() if k not in _INHERITED_OUT}
        if data_dir is not None:
            child_env["STARLING_DATA_DIR"] = str(data_dir)
        child_env.update(env or {})
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "starling.cli", *args, "--port", str(port)],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return cls(process, f"http://127.0.0.1:{port}")

    def wait_ready(self) -> None:
        """Until ``/readyz`` answers 200 (the lifespan, seeding included, has run)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"starling exited early:\n{self.stop()}")
            try:
                if httpx.get(f"{self.base_url}/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"starling did not become ready:\n{self.stop()}")
            time.sleep(0.2)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> str:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.output += self.process.communicate(timeout=STOP_SECONDS)[0] or ""
        return self.output
