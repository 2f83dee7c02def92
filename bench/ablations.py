"""The speed-ups taken away again, one at a time, for before/after figures from one run.

The server under test mounts, beside the real ``/graphql``, GraphQL endpoints that serve
the same ``homeFeed`` with some of the speed-ups of ``bench/RESULTS.md`` switched off:

    /bench/graphql/plain      Strawberry as it comes: no parser or validation cache (each
                              request parsed, held to the limits and validated anew),
                              ``json.dumps`` responses, no page prefetch
    /bench/graphql/caches     + parser and validation caches (``schema.limits``)
    /bench/graphql/orjson     + orjson responses
    /bench/graphql/prefetch   + page prefetch: the production schema and view, with
                              graphql-core completing every field (no compiled plans)
    /graphql                  + compiled execution (the production endpoint, query text)
    /graphql, by hash         + automatic persisted queries (production, as clients send it)

Each variant differs from the one above by one lever, so the ladder's steps are the levers'
worth. "No page prefetch" is the production ``Tweet`` type on a ``homeFeed`` that does not
call ``tweet_connection``: its fields then load per field and per tweet, as before the
prefetch existed. "No compiled execution" is ``GRAPHQL_COMPILED_EXECUTION=false``
(``schema.execution``). Only the benchmark mounts these endpoints.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.asgi import GraphQL

from starling.app import StarlingGraphQL
from starling.config import Settings
from starling.persisted_queries import PersistedQueries
from starling.resolvers import feed
from starling.schema import StarlingSchema, build_schema
from starling.schema.budget import QueryBudget
from starling.schema.connections import DEFAULT_PAGE_SIZE, Connection, connection_of
from starling.schema.errors import ErrorCodes
from starling.schema.execution import GraphQLCoreExecutor
from starling.schema.limits import Documents, OperationLimits
from starling.schema.types import Info, Tweet

PATH = "/bench/graphql/{variant}"


@strawberry.type(name="Query")
class UnprefetchedQuery:
    @strawberry.field(description="homeFeed without the page prefetch.")
    async def home_feed(
        self,
        info: Info,
        first: int | None = DEFAULT_PAGE_SIZE,
        after: str | None = strawberry.UNSET,
    ) -> Connection[Tweet]:
        return connection_of(await feed.home_feed(info.context, first, after), Tweet.from_doc)


class StandardJsonGraphQL(StarlingGraphQL):
    """Strawberry's own response encoding (``json.dumps``) instead of orjson."""

    def encode_json(self, data: object) -> str | bytes:
        return GraphQL.encode_json(self, data)


def _schema(cached: bool) -> StarlingSchema:
    settings = Settings() if cached else Settings(query_cache_max_entries=0)
    documents = Documents.from_settings(settings)
    # The query budget is no speed-up: every variant pays it, as production does.
    extensions: list[Any] = [ErrorCodes, lambda: OperationLimits(documents), QueryBudget]
    return StarlingSchema(
        query=UnprefetchedQuery, extensions=extensions, execution_context_class=GraphQLCoreExecutor
    )


def variants() -> dict[str, StarlingGraphQL]:
    """Variant name -> its ASGI view (mount each at ``PATH.format(variant=name)``)."""
    no_apq = PersistedQueries(0, 0, 0)
    plain, cached = _schema(cached=False), _schema(cached=True)
    settings = Settings(graphql_compiled_execution=False)
    # The production schema (its extensions included) but for the compiled execution.
    uncompiled = build_schema(
        Documents.from_settings(settings), compiled_execution=settings.graphql_compiled_execution
    )
    return {
        "plain": StandardJsonGraphQL(plain, persisted_queries=no_apq),
        "caches": StandardJsonGraphQL(cached, persisted_queries=no_apq),
        "orjson": StarlingGraphQL(cached, persisted_queries=no_apq),
        "prefetch": StarlingGraphQL(uncompiled, persisted_queries=no_apq),
    }
