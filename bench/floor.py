"""The floor: the benchmark's home feed without GraphQL.

``GET /bench/feed?first=N`` answers with the same JSON as the benchmark's ``homeFeed``
query (``FEED_QUERY``) from the same datastore reads: the same domain operation for the
page (``feed.home_feed``: auth, budget charge and timeline in the first round trip, celebrity
merge, hydration with counts and viewer state) and the same loaders
for authors, counts and the viewer's likes, batched the same way. What it leaves out is
GraphQL: parsing, validation, costing, execution, per-field resolvers and result building
(the ``extensions.cost`` it answers with is worked out once per page size). The
feed/floor throughput ratio is therefore the share of the feed's capacity that GraphQL
leaves. Mounted by ``bench.server`` only, never by the app.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

import orjson
from graphql import get_operation_ast, parse
from starlette.requests import Request
from starlette.responses import Response

from starling.resolvers import feed
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, StarlingError
from starling.resolvers.limits import RateLimits, charge_cost
from starling.resolvers.pagination import DEFAULT_FIRST, encode_cursor
from starling.schema import schema
from starling.schema.cost import fragments_of, operation_cost
from starling.schema.limits import cost_report

PATH = "/bench/feed"

# The query the benchmark sends; the floor answers exactly what it asks for.
FEED_QUERY = """query HomeFeed($first: Int) {
  homeFeed(first: $first) {
    edges {
      cursor
      node {
        id text createdAt
        author { handle displayName }
        likeCount commentCount retweetCount viewerHasLiked
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}"""

Doc = dict[str, Any]


def _error(error: StarlingError) -> Response:
    body = {"errors": [{"message": str(error), "extensions": {"code": error.code}}], "data": None}
    return Response(orjson.dumps(body), media_type="application/json")


@lru_cache
def _cost(first: int, page_size_max: int, maximum: int) -> dict[str, int]:
    """``extensions.cost`` of ``FEED_QUERY`` for a page size, as the GraphQL endpoint reports it."""
    document = parse(FEED_QUERY)
    operation = get_operation_ast(document)
    assert operation is not None
    fragments = fragments_of(document.definitions)
    requested = operation_cost(schema._schema, operation, fragments, {"first": first}, page_size_max)
    return cost_report(requested, maximum)


def _first(value: str | None) -> int:
    if value is None:
        return DEFAULT_FIRST
    try:
        return int(value)
    except ValueError:
        raise BadUserInput(f"first must be a number, not {value!r}.") from None


async def floor_feed(request: Request) -> Response:
    services = request.app.state.services
    address = request.client.host if request.client else None
    ctx = RequestContext(
        services=services,
        authorization=request.headers.get("authorization"),
        client_address=address,
        limits=RateLimits(services, address) if services.settings.rate_limits_enabled else None,
    )
    try:
        first = _first(request.query_params.get("first"))
        settings = services.settings
        cost = dict(_cost(first, settings.page_size_max, settings.query_max_cost))
        feed.plan_home_feed(ctx, first, None)  # as schema.first_trip plans it
        remaining = await charge_cost(ctx, cost["requested"])  # what /graphql charges it
        if remaining is not None:
            cost["remaining"] = remaining
        needs = feed.PageNeeds(counts=True, viewer_state=True, authors=True)
        page = await feed.home_feed(ctx, first, None, needs)
    except StarlingError as error:
        return _error(error)
    loaders = await ctx.loaders()
    docs = page.items
    # A retweet shows its original's engagement (``schema.types.Tweet._engaged_id``).
    engaged = [doc.get("retweet_of") or doc["_id"] for doc in docs]
    authors, counts, liked = await asyncio.gather(
        loaders.users.load_many([doc["author_id"] for doc in docs]),
        loaders.counts.load_many(engaged),
        loaders.viewer_likes.load_many(engaged),
    )
    cursors = [encode_cursor(position) for position in page.positions]
    edges = [
        {
            "cursor": cursor,
            "node": {
                "id": str(doc["_id"]),
                "text": doc["text"],
                "createdAt": doc["created_at"].isoformat(),
                "author": {"handle": author["handle"], "displayName": author["display_name"]},
                "likeCount": count.like,
                "commentCount": count.comment,
                "retweetCount": count.retweet,
                "viewerHasLiked": has_liked,
            },
        }
        for cursor, doc, author, count, has_liked in zip(cursors, docs, authors, counts, liked, strict=True)
    ]
    page_info = {"hasNextPage": page.has_next_page, "endCursor": cursors[-1] if cursors else None}
    settings = ctx.services.settings
    body = {
        "data": {"homeFeed": {"edges": edges, "pageInfo": page_info}},
        "extensions": {"cost": cost},
    }
    return Response(orjson.dumps(body), media_type="application/json")
