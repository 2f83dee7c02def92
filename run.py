"""Bootstrap and run Starling with nothing but Python >= 3.11 installed.

    python3 run.py dev --seed                    # dev server (in-memory MongoDB, seeded)
    python3 run.py test [pytest args...]         # test suite
    python3 run.py lint                          # ruff check, ruff format --check, mypy, import contract
    python3 run.py bench [args...]               # benchmarks (python -m bench)
    python3 run.py serve|worker|export-schema [args...]

Uses ``uv`` from PATH, or installs it into a private ``.tools/`` venv, then runs
``uv sync --frozen --extra test`` to create/update ``.venv`` from ``uv.lock`` and
hands over to the tool inside ``.venv`` with ``os.execv`` (signals go straight to it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
TOOLS = ROOT / ".tools"
STARLING_COMMANDS = ("dev", "serve", "worker", "export-schema")
COMMANDS = (*STARLING_COMMANDS, "test", "lint", "bench")
EXTRAS = {"bench": ("test", "bench")}


def say(message: str) -> None:
    # stderr, so that e.g. `run.py export-schema > schema.graphql` stays clean.
    print(f"run.py: {message}", file=sys.stderr, flush=True)


def works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def find_uv() -> str:
    """Return a working ``uv``: from PATH, else from ``.tools/`` (created on demand)."""
    on_path = shutil.which("uv")
    if on_path and works([on_path, "--version"]):  # pyenv shims may exist but not work
        return on_path
    tool_uv = TOOLS / "bin" / "uv"
    if not (tool_uv.exists() and works([str(tool_uv), "--version"])):
        say("uv not found; installing it into .tools/")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOLS)], check=True)
        pip = [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--disable-pip-version-check", "uv"], check=True)
    return str(tool_uv)


def sync(uv: str, extras: tuple[str, ...]) -> dict[str, str]:
    """Create/update ``.venv`` from ``uv.lock``; return the environment for the child.

    ``--inexact`` keeps packages of other extras (the benchmark's) already installed."""
    env = dict(os.environ)
    # uv's default project environment is ./.venv; only override a foreign setting.
    if Path(env.get("UV_PROJECT_ENVIRONMENT", VENV)).resolve() != VENV:
        env["UV_PROJECT_ENVIRONMENT"] = str(VENV)
    env.pop("VIRTUAL_ENV", None)  # an unrelated active venv only makes uv warn
    extra_args = [arg for extra in extras for arg in ("--extra", extra)]
    say(f"syncing .venv from uv.lock (extras: {', '.join(extras)})")
    cmd = [uv, "sync", "--quiet", "--frozen", "--inexact", *extra_args, "--project", str(ROOT)]
    result = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        say(f"uv sync failed (exit {result.returncode})")
        sys.exit(result.returncode)
    return env


LINTERS = (
    ("ruff check", ["ruff", "check"]),
    ("ruff format", ["ruff", "format", "--check"]),
)
# Whole-package checks: they take no paths.
PACKAGE_LINTERS = (
    ("mypy", ["mypy", "starling"]),
    ("import contract", ["lint-imports"]),
)


def lint(bin_dir: Path, paths: list[str], env: dict[str, str]) -> int:
    """Run every linter (all of them, even after a failure); non-zero when any failed."""
    failed = []
    for name, (tool, *args) in [*((n, [*c, *paths]) for n, c in LINTERS), *PACKAGE_LINTERS]:
        say(f"lint: {name}")
        if subprocess.run([str(bin_dir / tool), *args], env=env, check=False).returncode != 0:
            failed.append(name)
    if failed:
        say(f"lint failed: {', '.join(failed)}")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        say(f"usage: python3 run.py {{{','.join(COMMANDS)}}} [args...]")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    command, rest = argv[0], argv[1:]
    env = sync(find_uv(), EXTRAS.get(command, ("test",)))
    os.chdir(ROOT)
    bin_dir = VENV / "bin"
    # Like `uv run`: the child (and anything it spawns) sees .venv as the active venv.
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    if command == "lint":
        return lint(bin_dir, rest or ["."], env)
    if command == "test":
        python = str(bin_dir / "python")
        os.execve(python, [python, "-m", "pytest", *rest], env)
    if command == "bench":
        python = str(bin_dir / "python")
        os.execve(python, [python, "-m", "bench", *rest], env)
    starling = str(bin_dir / "starling")
    os.execve(starling, [starling, command, *rest], env)
    return 0  # unreachable


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
