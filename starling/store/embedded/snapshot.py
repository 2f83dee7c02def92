"""Snapshots of the embedded engine on disk: what lets ``starling dev`` remember its data.

A snapshot is one file of concatenated BSON documents: a header, then for each collection
a record (database, name, indexes, document count) followed by its documents. BSON keeps
every value as MongoDB would (64-bit integers beyond 2^53, datetimes, ObjectIds, binary),
and streaming one document per record keeps clear of BSON's 16 MB limit per document.

Writing is atomic: the file is written under a temporary name in the same directory,
fsynced, and moved over the previous snapshot with ``os.replace`` (then the directory is
fsynced), so a crash at any moment leaves the previous snapshot or the new one, never a
torn file. What a crash loses is what changed since the last snapshot.

The engine runs on the event loop thread and is not thread-safe, so a snapshot is
*encoded* there, in one synchronous step (a consistent point in time: no operation can
interleave), and only the file writing may run in another thread. Saves are ordered by
the engine's change count, so an older encoding never replaces a newer file.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions

from starling.store.embedded.client import EmbeddedMongoClient

log = logging.getLogger(__name__)

FORMAT = "starling-embedded-snapshot"
VERSION = 1
# Index options a snapshot keeps (what ``create_index`` accepts back).
_INDEX_OPTIONS = ("unique", "sparse", "expireAfterSeconds", "partialFilterExpression")
_CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True)


class SnapshotError(RuntimeError):
    """The file is not a snapshot this version can read."""


@dataclass(frozen=True, slots=True)
class Encoded:
    """A snapshot in memory: its bytes and the engine's change count when it was taken."""

    data: bytes
    changes: int
    documents: int


def encode(client: EmbeddedMongoClient) -> Encoded:
    """The engine's whole state as snapshot bytes (synchronous: call on the loop thread)."""
    engine = client._mongomock
    parts = [bson.encode({"format": FORMAT, "version": VERSION})]
    total = 0
    for db_name in engine.list_database_names():
        database = engine.get_database(db_name)
        for name in database.list_collection_names():
            collection = database.get_collection(name)
            documents = [bson.encode(doc, codec_options=_CODEC) for doc in collection.find({})]
            indexes = [
                {
                    "name": index_name,
                    "key": [[field, direction] for field, direction in info["key"]],
                    **{option: info[option] for option in _INDEX_OPTIONS if option in info},
                }
                for index_name, info in collection.index_information().items()
                if index_name != "_id_"
            ]
            header = {"database": db_name, "collection": name, "indexes": indexes, "count": len(documents)}
            parts.append(bson.encode(header))
            parts.extend(documents)
            total += len(documents)
    return Encoded(b"".join(parts), client.changes, total)


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as file:
        yield from bson.decode_file_iter(file, codec_options=_CODEC)


def load(client: EmbeddedMongoClient, path: Path) -> int:
    """Fill an empty engine from the snapshot at ``path``; returns the documents loaded.

    Documents go in before their indexes are created (faster, and a unique index then
    checks the loaded data as it would on a server)."""
    records = _records(path)
    try:
        header = next(records)
    except StopIteration:
        raise SnapshotError(f"{path} is empty") from None
    except bson.errors.BSONError as exc:
        raise SnapshotError(f"{path} is not a snapshot: {exc}") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise SnapshotError(f"{path} is not a version {VERSION} {FORMAT}")
    engine = client._mongomock
    total = 0
    for record in records:
        collection = engine.get_database(record["database"]).get_collection(record["collection"])
        documents = [next(records) for _ in range(record["count"])]
        if documents:
            collection.insert_many(documents)
        else:
            engine.get_database(record["database"]).create_collection(record["collection"])
        for index in record["indexes"]:
            options = {option: index[option] for option in _INDEX_OPTIONS if option in index}
            keys = [(field, direction) for field, direction in index["key"]]
            collection.create_index(keys, name=index["name"], **options)
        total += len(documents)
    # Loading is not a change: the file already holds it.
    client.changes = 0
    return total


class SnapshotFile:
    """The snapshot file of one engine, saved atomically and never older than the last save."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._saved_changes = -1

    @property
    def saved_changes(self) -> int:
        """The engine's change count the file holds (-1: nothing saved yet)."""
        return self._saved_changes

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, snapshot: Encoded) -> bool:
        """Write ``snapshot`` unless a newer one was already written (thread-safe)."""
        with self._lock:
            if snapshot.changes <= self._saved_changes:
                return False
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(snapshot.data)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temp, self.path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            _fsync_directory(self.path.parent)
            self._saved_changes = snapshot.changes
            return True

    def mark_saved(self, changes: int) -> None:
        """The file already holds the engine's state at ``changes`` (it was just loaded)."""
        self._saved_changes = changes

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
