"""What can be checked of docker/ without a Docker engine: the files the image copies
exist, and the commands the compose file runs are commands the image has."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

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


def test_the_queue_role_never_evicts_and_the_data_role_evicts_only_keys_with_a_ttl() -> None:
    compose = yaml.safe_load(COMPOSE)
    services = compose["services"]
    queue, data = services["redis-queue"]["command"], services["redis-data"]["command"]
    assert queue[queue.index("--maxmemory-policy") + 1] == "noeviction"
    assert queue[queue.index("--appendonly") + 1] == "yes"
    assert data[data.index("--maxmemory-policy") + 1] == "volatile-lru"
    for role in ("api", "worker"):
        env = services[role]["environment"]
        assert env["QUEUE_REDIS_URL"].startswith("redis://redis-queue")


def test_the_cluster_overlay_points_the_data_role_at_the_cluster() -> None:
    overlay = yaml.safe_load((ROOT / "docker" / "compose.cluster.yaml").read_text())
    services = overlay["services"]
    nodes = [name for name in services if name.startswith("redis-node-")]
    assert len(nodes) == 3
    for node in nodes:
        assert "--cluster-enabled yes" in services[node]["command"]
        assert f"--cluster-announce-hostname {node}" in services[node]["command"]
    for role in ("api", "worker"):
        assert services[role]["environment"]["REDIS_CLUSTER"] == "true"
        assert services[role]["environment"]["REDIS_URL"].startswith("redis://redis-node-")
