"""The floor: the benchmark's home feed without GraphQL.

``GET /bench/feed?first=N`` answers with the same JSON as the benchmark's ``homeFeed``
query (``FEED_QUERY``) from the same datastore reads: the same domain operation for the
page (``feed.home_feed``: auth, timeline, celebrity merge, hydration, after the query budget
charge every operation pays) and the same loaders
for authors, counts and the viewer's likes, batched the same way. What it leaves out is
GraphQL: parsing, validation, execution, per-field resolvers and result building. The
feed/floor throughput ratio is therefore the share of the feed's capacity that GraphQL
leaves. Mounted by ``bench.server`` only, never by the app.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from starling.resolvers import feed
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, StarlingError
from starling.resolvers.limits import RateLimits, charge_cost
from starling.resolvers.pagination import DEFAULT_FIRST, encode_cursor
from starling.schema.limits import DEFAULT_OPERATION_COST

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
        await charge_cost(ctx, DEFAULT_OPERATION_COST)  # what /graphql charges every operation
        page = await feed.home_feed(ctx, first, None)
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
    body = {"data": {"homeFeed": {"edges": edges, "pageInfo": page_info}}}
    return Response(orjson.dumps(body), media_type="application/json")
