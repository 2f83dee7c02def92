"""Search: tweets by words and #hashtags, users by handle or display-name prefix, trends.

**Tweets** (``search_tweets``). A query is split as tweets are (``text.search_terms``):
``#tag`` terms must be among the tweet's hashtags, every other word among its ``words``
(stored at write time: NFC, lower-cased, whole words, so matching is case-insensitive and
never matches inside a word). All terms are required. Only live originals are searched: a
retweet repeats its original's text, so it would only duplicate the original in the
results. Tweets written before ``words`` existed match by hashtag only. Newest first, paged
by ``_id`` like every connection.

**Users** (``search_users``). The query, without a leading ``@``, lower-cased, is a prefix
of ``handle_lower`` or of ``display_name_lower`` (stored at sign-up and profile update;
users from before it match by handle only). Both are index range scans. Handle matches come
first, then display-name matches, each in alphabetical order, each user once; users a block
stands between with the viewer are left out.

**Trends** (``trends``). The hashtags of live original tweets of the last 24 hours (the
current hour and the 23 before it), by number of tweets, ties alphabetically: hourly counts
kept in Redis as tweets are posted and deleted (``store.trends``), summed on read. The top
``TRENDS_MAX`` are cached in Redis for ``TRENDS_CACHE_SECONDS``. No MongoDB on the request
path: with Redis down ``trends`` answers INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import unicodedata

import orjson

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput
from starling.resolvers.pagination import Page, check_first, find_page
from starling.resolvers.relations import visible_tweets
from starling.resolvers.text import search_terms
from starling.store import trends as trend_counts
from starling.store.documents import Document, TweetDoc, UserDoc
from starling.store.tweets import LIVE

SEARCH_USERS_DEFAULT = 10
TRENDS_DEFAULT = 10
TRENDS_MAX = 50
ORIGINALS = {"retweet_of": {"$exists": False}}
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def _clean_query(query: str, maximum: int) -> str:
    cleaned = unicodedata.normalize("NFC", query).strip()
    if len(cleaned) > maximum:
        raise BadUserInput(f"A search query is at most {maximum} characters, got {len(cleaned)}.")
    return cleaned


async def search_tweets(
    ctx: RequestContext, query: str, first: int | None, after: str | None
) -> Page[TweetDoc]:
    settings = ctx.services.settings
    first = check_first(first, settings.page_size_max)
    hashtags, words = search_terms(_clean_query(query, settings.search_query_max))
    if not hashtags and not words:
        raise BadUserInput("Search for at least one word or #hashtag.")
    match: Document = {**LIVE, **ORIGINALS}
    if words:
        match["words"] = {"$all": words}
    if hashtags:
        match["hashtags"] = {"$all": hashtags}
    page = await find_page(ctx.services.db.tweets, match, first, after, projection={"words": 0})
    return await visible_tweets(ctx, page, feed=False)  # none behind a block


def prefix_range(prefix: str) -> Document:
    """The strings starting with ``prefix`` (non-empty), as an index range: code-point order
    (MongoDB's, for UTF-8) puts them between ``prefix`` and ``prefix`` with its last
    character incremented."""
    stem = prefix
    while stem and ord(stem[-1]) == _MAX_CODE_POINT:  # nothing sorts after it: bump the one before
        stem = stem[:-1]
    if not stem:
        return {"$gte": prefix}
    following = ord(stem[-1]) + 1
    if following in _SURROGATES:  # not a character; the next one is
        following = _SURROGATES.stop
    return {"$gte": prefix, "$lt": stem[:-1] + chr(following)}


async def search_users(ctx: RequestContext, query: str, first: int | None) -> list[UserDoc]:
    settings = ctx.services.settings
    limit = check_first(SEARCH_USERS_DEFAULT if first is None else first, settings.page_size_max)
    prefix = _clean_query(query, settings.search_query_max).removeprefix("@").lower()
    if not prefix:
        raise BadUserInput("Search for at least one character of a handle or display name.")
    users = ctx.services.db.users
    projection = {"password_hash": 0}
    # Users a block stands between with the viewer are not found (resolvers.relations).
    hidden = sorted((await ctx.relations()).hidden_everywhere)
    by_handle: Document = {
        "handle_lower": prefix_range(prefix),
        **({"_id": {"$nin": hidden}} if hidden else {}),
    }
    found = await users.find(by_handle, projection).sort("handle_lower", 1).limit(limit).to_list()
    if len(found) < limit:
        left_out = [*hidden, *(doc["_id"] for doc in found)]
        by_name = {"display_name_lower": prefix_range(prefix), "_id": {"$nin": left_out}}
        found += await (
            users.find(by_name, projection)
            .sort([("display_name_lower", 1), ("_id", 1)])
            .limit(limit - len(found))
        ).to_list()
    return found


async def trends(ctx: RequestContext, limit: int | None) -> list[tuple[str, int]]:
    """The top ``limit`` (hashtag, tweet count) pairs (module doc)."""
    limit = TRENDS_DEFAULT if limit is None else limit
    if not 1 <= limit <= TRENDS_MAX:
        raise BadUserInput(f"`limit` must be between 1 and {TRENDS_MAX}, got {limit}.")
    services = ctx.services
    cached = await services.redis.get(services.keys.trends())
    if cached is not None:
        rows = orjson.loads(cached)
    else:
        rows = await trend_counts.top(services, TRENDS_MAX)
        if services.settings.trends_cache_seconds > 0:
            ttl_ms = int(services.settings.trends_cache_seconds * 1000)
            await services.redis.set(services.keys.trends(), orjson.dumps(rows), px=ttl_ms)
    # The top TRENDS_MAX in a total order: any shorter top list is a prefix of it.
    return [(tag, count) for tag, count in rows[:limit]]
