"""In-process MongoDB engine: a thin async adapter over ``mongomock``.

Production code talks to MongoDB through PyMongo's native async API
(:class:`pymongo.AsyncMongoClient`). Tests and the embedded dev mode have no server, so they
hand the very same production code an :class:`EmbeddedMongoClient` instead. This package only
translates between the two worlds; it must never grow behaviour that production code would
have to know about:

* every method mirrors the name, signature and return type of its ``Async*`` counterpart
  (results are the real :mod:`pymongo.results` classes, errors the real :mod:`pymongo.errors`);
* every operation is one "round trip": it publishes ``started`` then ``succeeded``/``failed``
  to the registered :class:`pymongo.monitoring.CommandListener` objects under the real MongoDB
  command name, so round-trip budgets measured in tests mean the same thing in production;
* mongomock is synchronous and not thread-safe, so operations run directly on the event loop
  thread, after one ``asyncio.sleep(0)`` that stands in for the network wait (production code
  always suspends on a database call; code that only works without that suspension is a bug we
  want tests to catch).

* mongomock answers every query by scanning the whole collection; here a query that pins
  ``_id`` or the leading field of a declared index to values reads only those documents
  (``FieldIndexes``), so costs grow with the result as they do on a server, not with the
  collection (the benchmark loads thousands of documents).

mongomock's own ``bulk_write`` is broken with pymongo >= 4.11 (it passes ``sort=`` to its bulk
builder), so bulk requests are translated here from pymongo's operation objects.

The package, one module per concern:

* ``client``: the async collection API (``EmbeddedMongoClient``, ``EmbeddedDatabase``,
  ``EmbeddedCollection``) and its round trips;
* ``cursors``: ``EmbeddedCursor`` and ``EmbeddedCommandCursor``;
* ``indexes``: the index emulation (``FieldIndexes`` and the lookup helpers);
* ``events``: ``EmbeddedCommandEvent``, what command listeners receive;
* ``bulk``: translating pymongo's bulk requests into write commands.
"""

from starling.store.embedded.client import EmbeddedCollection, EmbeddedDatabase, EmbeddedMongoClient
from starling.store.embedded.cursors import EmbeddedCommandCursor, EmbeddedCursor
from starling.store.embedded.events import EmbeddedCommandEvent

__all__ = [
    "EmbeddedCollection",
    "EmbeddedCommandCursor",
    "EmbeddedCommandEvent",
    "EmbeddedCursor",
    "EmbeddedDatabase",
    "EmbeddedMongoClient",
]
