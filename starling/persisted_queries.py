"""Automatic persisted queries: Apollo's APQ protocol over HTTP.

A client sends ``extensions: {"persistedQuery": {"version": 1, "sha256Hash": H}}`` and no
query text. When the process knows ``H`` it runs the query stored under it; otherwise it
answers the GraphQL error ``PersistedQueryNotFound`` (``extensions.code``
``PERSISTED_QUERY_NOT_FOUND``, HTTP 200), and the client sends the text with the hash once,
which is checked (SHA-256 of the text) and stored. Apollo Client, urql and Relay's APQ
links speak this; the two codes are the protocol's, beside those of DESIGN.md §5.

Each API process keeps its own store, bounded in entries (``PERSISTED_QUERIES_MAX``; 0
turns APQ off) and in bytes (``PERSISTED_QUERIES_MAX_BYTES``), least recently used dropped;
a query longer than ``PERSISTED_QUERIES_ENTRY_MAX_BYTES`` runs but is not stored (the client
just sends its text again next time). A process that does not know a hash asks for the text
again, so nothing is shared between processes. A request then carries
a hash instead of the text and the server looks the text up rather than reading and
hashing it for the parser cache; ``bench/RESULTS.md`` has what that is worth.
"""

from __future__ import annotations

import hashlib

from strawberry.http import GraphQLRequestData

from starling.lru import BoundedLRU

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
# What an entry costs beside its text: the hash key, the map's slot, object headers.
ENTRY_OVERHEAD_BYTES = 256


class PersistedQueryError(Exception):
    """A persisted-query request the server cannot run; answered as a GraphQL error."""

    def __init__(self, message: str, code: str, status_code: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code


class PersistedQueries:
    def __init__(self, max_entries: int, max_bytes: int, entry_max_bytes: int) -> None:
        self._queries: BoundedLRU[str, str] = BoundedLRU(max_entries, max_bytes, entry_max_bytes)

    def resolve(self, request: GraphQLRequestData) -> None:
        """Fill in ``request.query`` from its hash, or remember the query under its hash;
        requests without the extension pass unchanged."""
        extension = (request.extensions or {}).get("persistedQuery")
        if extension is None:
            return
        if self._queries.max_entries <= 0 or not isinstance(extension, dict) or extension.get("version") != 1:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED)
        digest = extension.get("sha256Hash")
        if not isinstance(digest, str):
            raise PersistedQueryError("persistedQuery.sha256Hash must be a string.", "BAD_USER_INPUT", 400)
        digest = digest.lower()
        if request.query is None:
            query = self._queries.get(digest)
            if query is None:
                raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND)
            request.query = query
            return
        text = request.query.encode()
        if hashlib.sha256(text).hexdigest() != digest:
            raise PersistedQueryError("provided sha does not match query", "BAD_USER_INPUT", 400)
        self._queries.put(digest, request.query, len(text) + ENTRY_OVERHEAD_BYTES)
