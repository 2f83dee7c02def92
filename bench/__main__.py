"""Run the benchmarks and regenerate their report:

    python3 run.py bench                 # everything: every figure of bench/RESULTS.md
    python3 run.py bench --quick         # a small network and short runs, into a temp dir
    python3 run.py bench feed mixed      # some scenarios only (then `report` to redo RESULTS.md)

Scenarios: feed (homeFeed vs the floor at several concurrencies), write (postTweet under
load, post-to-visible latency), mixed (95% reads, 5% writes, post-to-visible latency),
probe (datastore round trips per page size), fanout, topologies (fan-out on one Redis and
on a Redis Cluster), subscribers, refusals, encodings (timeline encodings) and rebuild
(timeline rebuild cost) (``bench/<name>.py``),
report (``bench/RESULTS.md``, the chart and the README's headline, from the JSON results).
Results go to ``bench/results/`` (``--out`` to change). Not part of the default: profile
(pyinstrument profiles of the server during a feed run and a floor run, written beside the
server's log).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import probe, report, scenarios
from bench.load import ROOT, ServerProcess, wrk_binary

RESULTS = ROOT / "bench" / "results"
LOAD_SCENARIOS = ("feed", "write", "mixed")
OTHER_HARNESSES = ("fanout", "topologies", "subscribers", "refusals", "encodings", "rebuild")
ALL = (*LOAD_SCENARIOS, "probe", *OTHER_HARNESSES, "report")
EXTRA = ("profile",)  # not part of `all`: pyinstrument slows the server it profiles
SIZES = {
    "users": int,
    "follows_per_user": float,
    "tweets": int,
    "retweets": int,
    "likes": int,
    "comments": int,
}
PACKAGES = (
    "strawberry-graphql",
    "graphql-core",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "redis",
    "orjson",
)


def _output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT).stdout.strip()
    except OSError:
        return "?"


def machine_info(quick: bool) -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "wrk": _output([wrk_binary(), "-v"]).splitlines()[0] if _output([wrk_binary(), "-v"]) else "?",
        "redis": _output(["redis-server", "--version"]),
        "commit": _output(["git", "rev-parse", "--short", "HEAD"]),
        "packages": {name: _version(name) for name in PACKAGES},
        "quick": quick,
    }


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


async def run_load(
    server: ServerProcess, chosen: list[str], plan: scenarios.Plan, out: Path, machine: dict[str, Any]
) -> None:
    connections = 16
    if "feed" in chosen:
        result = await scenarios.feed_vs_floor(server, plan, out, machine)
        connections = result["headline"]["connections"]
    else:
        scenarios.write_bodies(server, scenarios.supports_persisted_queries(server))
    if "write" in chosen:
        await scenarios.write(server, plan, out, machine)
    if "mixed" in chosen:
        await scenarios.mixed(server, plan, out, machine, connections)
    if "profile" in chosen:
        # Profiles are for reading, not results: they go beside the server's log.
        await scenarios.profile(server, plan, server.run_dir, ("feed", "floor"))


def run_other(name: str, quick: bool, out: Path) -> None:
    """Another engineer's harness (bench/<name>.py), in its own process."""
    if not (ROOT / "bench" / f"{name}.py").exists():
        print(f"{name}: bench/{name}.py not present, skipped")
        return
    print(f"{name}: python -m bench.{name}")
    command = [sys.executable, "-m", f"bench.{name}", "--out", str(out), *(["--quick"] if quick else [])]
    subprocess.run(command, cwd=ROOT, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # No `choices`: argparse would refuse the empty default of nargs="*" (Python < 3.12).
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"{', '.join([*ALL, *EXTRA])}; default: all"
    )
    parser.add_argument("--quick", action="store_true", help="small network, short runs (a smoke test)")
    sizes = parser.add_argument_group("network size (default: bench.data.Spec; loads in about a minute)")
    for name, kind in SIZES.items():
        sizes.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, metavar="N")
    parser.add_argument(
        "--out", type=Path, help="results directory (default bench/results; --quick: a temp dir)"
    )
    args = parser.parse_args(argv)
    chosen = list(args.scenarios or ALL)
    unknown = sorted(set(chosen) - {*ALL, *EXTRA})
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    out = args.out or (Path(tempfile.mkdtemp(prefix="starling-bench-quick-")) if args.quick else RESULTS)
    plan = scenarios.Plan.quick() if args.quick else scenarios.Plan()
    machine = machine_info(args.quick)
    print(f"bench: {', '.join(chosen)} -> {out}")
    out.mkdir(parents=True, exist_ok=True)

    if any(name in chosen for name in (*LOAD_SCENARIOS, "profile")):
        run_dir = Path(tempfile.mkdtemp(prefix="starling-bench-run-"))
        print(f"starting the server under test (data load; log in {run_dir / 'server.log'})", flush=True)
        chosen_sizes = {name: getattr(args, name) for name in SIZES if getattr(args, name) is not None}
        server = ServerProcess.start(run_dir, args.quick, chosen_sizes)
        print(f"  network: {server.network}")
        try:
            asyncio.run(run_load(server, chosen, plan, out, machine))
        finally:
            server.stop()
    if "probe" in chosen:
        print("probe: datastore round trips per homeFeed page")
        probe.main(out)
    for name in OTHER_HARNESSES:
        if name in chosen:
            run_other(name, args.quick, out)
    if "report" in chosen:
        report.main(out, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
