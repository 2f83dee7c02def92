"""What can be checked of docker/ without a Docker engine: the files the image copies
exist, and the commands the compose file runs are commands the image has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from starling.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = (ROOT / "docker" / "compose.yaml").read_text()


def test_dockerfile_copies_files_that_exist() -> None:
    sources = [
        source
        for line in DOCKERFILE.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    ]
    assert sources, "no COPY found"
    for source in sources:
        assert (ROOT / source).exists(), source


def test_compose_runs_starling_commands_that_exist() -> None:
    subcommands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    commands = [json.loads(found) for found in re.findall(r'command: (\["starling".*\])', COMPOSE)]
    assert {command[1] for command in commands} == {"serve", "worker"}
    for command in commands:
        build_parser().parse_args(command[1:])
        assert command[1] in subcommands
    assert "${TOKEN_SECRET:?" in COMPOSE
