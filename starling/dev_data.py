"""What ``starling dev`` keeps across restarts, under ``STARLING_DATA_DIR`` (``.starling/``).

* ``token_secret``: a development ``TOKEN_SECRET`` generated once (mode 0600), so a token a
  client holds stays valid after a restart (unless ``TOKEN_SECRET`` is set, which wins);
* ``embedded.bson``: a snapshot of the embedded MongoDB engine (``store.embedded.snapshot``),
  loaded at start, saved every ``DEV_SNAPSHOT_SECONDS`` when something changed and on
  shutdown. A crash (SIGKILL, power loss) loses the changes since the last save.

Redis is not kept: the private redis-server starts empty and everything in it is derived
from MongoDB and rebuilt the way it is after any Redis loss (timelines on read, counters
by recount, revocations at start-up, the outbox by its repair cron).

Why not a package: ``litemongo`` (LGPL) replaces mongomock with its own vendored fork and
an SQLite file per collection, written through on every operation; ``mongomock-persistence``
monkeypatches mongomock globally, drops indexes and writes JSON non-atomically when the
store is garbage collected. A snapshot of the engine this project already has is smaller
than either integration and keeps BSON's types exactly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from starling.store.embedded.client import EmbeddedMongoClient
from starling.store.embedded.snapshot import SnapshotFile, encode, load
from starling.store.services import Services

log = logging.getLogger(__name__)

SNAPSHOT_NAME = "embedded.bson"
TOKEN_SECRET_NAME = "token_secret"
TOKEN_SECRET_BYTES = 32

StartHook = Callable[[Services], Awaitable[None]]


class DevData:
    """The data directory of ``starling dev``."""

    def __init__(self, directory: Path, *, snapshot_seconds: float) -> None:
        self.directory = directory
        self.snapshot = SnapshotFile(directory / SNAPSHOT_NAME)
        self.snapshot_seconds = snapshot_seconds
        self._saver: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, directory: Path, *, snapshot_seconds: float, reset: bool) -> DevData:
        if reset and directory.exists():
            shutil.rmtree(directory)
            log.info("dev data: %s reset (starting empty)", directory)
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, snapshot_seconds=snapshot_seconds)

    def token_secret(self) -> str:
        """The stable development secret, generated on first use."""
        path = self.directory / TOKEN_SECRET_NAME
        if path.exists():
            return path.read_text().strip()
        secret = secrets.token_urlsafe(TOKEN_SECRET_BYTES)
        temp = path.with_suffix(".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secret + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        log.info("dev data: generated a development TOKEN_SECRET in %s", path)
        return secret

    def restore(self, client: EmbeddedMongoClient) -> int:
        """Load the last snapshot into an empty engine; returns the documents loaded."""
        if not self.snapshot.exists():
            log.info("dev data: no snapshot in %s, starting empty", self.directory)
            return 0
        documents = load(client, self.snapshot.path)
        self.snapshot.mark_saved(client.changes)
        log.info("dev data: loaded %d documents from %s", documents, self.snapshot.path)
        return documents

    def save(self, client: EmbeddedMongoClient) -> None:
        """Save now, synchronously (at shutdown, once the event loop is gone)."""
        if self.snapshot.write(encode(client)):
            log.info("dev data: saved to %s", self.snapshot.path)

    def keep_saving(self, client: EmbeddedMongoClient) -> StartHook:
        """A start-up hook that saves every ``snapshot_seconds`` while something changed."""

        async def start(services: Services) -> None:
            # Cancelled with the event loop; the final save is ``save`` after it.
            self._saver = asyncio.create_task(self._save_periodically(client), name="dev-data-saver")

        return start

    async def _save_periodically(self, client: EmbeddedMongoClient) -> None:
        while True:
            await asyncio.sleep(self.snapshot_seconds)
            if client.changes <= self.snapshot.saved_changes:
                continue
            snapshot = encode(client)  # on the loop thread: a consistent point in time
            try:
                await asyncio.to_thread(self.snapshot.write, snapshot)
            except OSError:
                log.exception("dev data: could not save %s (will retry)", self.snapshot.path)
