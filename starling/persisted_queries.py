"""Automatic persisted queries: Apollo's APQ protocol over HTTP.

A client sends ``extensions: {"persistedQuery": {"version": 1, "sha256Hash": H}}`` and no
query text. When the process knows ``H`` it runs the query stored under it; otherwise it
answers the GraphQL error ``PersistedQueryNotFound`` (``extensions.code``
``PERSISTED_QUERY_NOT_FOUND``, HTTP 200), and the client sends the text with the hash once,
which is checked (SHA-256 of the text) and stored. Apollo Client, urql and Relay's APQ
links speak this; the two codes are the protocol's, beside those of DESIGN.md §5.

Each API process keeps its own bounded store (least recently used dropped,
``PERSISTED_QUERIES_MAX``; 0 turns APQ off): a process that does not know a hash just
asks for the text again, so nothing is shared between processes. A request then carries
a hash instead of the text and the server looks the text up rather than reading and
hashing it for the parser cache; ``bench/RESULTS.md`` has what that is worth.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from strawberry.http import GraphQLRequestData

NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"


class PersistedQueryError(Exception):
    """A persisted-query request the server cannot run; answered as a GraphQL error."""

    def __init__(self, message: str, code: str, status_code: int = 200) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status_code = status_code


class PersistedQueries:
    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._queries: OrderedDict[str, str] = OrderedDict()

    def resolve(self, request: GraphQLRequestData) -> None:
        """Fill in ``request.query`` from its hash, or remember the query under its hash;
        requests without the extension pass unchanged."""
        extension = (request.extensions or {}).get("persistedQuery")
        if extension is None:
            return
        if self._max_entries <= 0 or not isinstance(extension, dict) or extension.get("version") != 1:
            raise PersistedQueryError("PersistedQueryNotSupported", NOT_SUPPORTED)
        digest = extension.get("sha256Hash")
        if not isinstance(digest, str):
            raise PersistedQueryError("persistedQuery.sha256Hash must be a string.", "BAD_USER_INPUT", 400)
        digest = digest.lower()
        if request.query is None:
            query = self._queries.get(digest)
            if query is None:
                raise PersistedQueryError("PersistedQueryNotFound", NOT_FOUND)
            self._queries.move_to_end(digest)
            request.query = query
            return
        if hashlib.sha256(request.query.encode()).hexdigest() != digest:
            raise PersistedQueryError("provided sha does not match query", "BAD_USER_INPUT", 400)
        self._queries[digest] = request.query
        self._queries.move_to_end(digest)
        while len(self._queries) > self._max_entries:
            self._queries.popitem(last=False)
