"""Redis Cluster: a private one on loopback ports, for the tests, the benchmarks and
``starling dev`` without a ``REDIS_URL``-given cluster.

Built from the installed ``redis-server``: ``masters`` nodes in cluster mode, the 16,384
slots split evenly between them (``CLUSTER ADDSLOTSRANGE``), joined with ``CLUSTER MEET``,
ready once every node reports ``cluster_state:ok``. No replicas, no persistence.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import redis

from starling.store.redis import STARTUP_TIMEOUT_SECONDS, PrivateRedisServer

SLOTS = 16384
NODE_TIMEOUT_MS = 2000
# A node also listens on its port + 10000 (the cluster bus).
BUS_PORT_OFFSET = 10000


@dataclass
class PrivateRedisCluster:
    masters: int = 3
    nodes: list[PrivateRedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A cluster URL: any node's; the client discovers the others."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> str:
        try:
            for _ in range(self.masters):
                node = PrivateRedisServer(
                    port=_free_node_port(),
                    extra_args=[
                        "--cluster-enabled", "yes",
                        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                        # Each node's own file, in its own working directory.
                        "--cluster-config-file", "nodes.conf",
                    ]
                )  # fmt: skip
                node.start()
                self.nodes.append(node)
            self._form()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _form(self) -> None:
        clients = [redis.Redis(port=node.port) for node in self.nodes]
        per_node = SLOTS // len(clients)
        for index, client in enumerate(clients):
            first = index * per_node
            last = SLOTS - 1 if index == len(clients) - 1 else first + per_node - 1
            client.cluster("ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            clients[0].cluster("MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not all(_cluster_ok(client, len(clients)) for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the private Redis Cluster did not reach cluster_state:ok")
            time.sleep(0.05)
        for client in clients:
            client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()


def _cluster_ok(client: redis.Redis, masters: int) -> bool:
    """The node sees the whole cluster, every slot served."""
    info: dict[str, str] = client.cluster("INFO")  # type: ignore[assignment]  # sync client: a dict
    return info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == masters


def _free_node_port() -> int:
    """A free loopback port whose cluster bus port is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port
