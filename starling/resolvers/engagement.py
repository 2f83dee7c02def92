"""What a like, comment or retweet acts on."""

from __future__ import annotations

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import NotFound
from starling.resolvers.relations import forbid_if_blocked
from starling.resolvers.tweets import parse_tweet_id
from starling.store.documents import CachedTweetDoc


async def engagement_target(ctx: RequestContext, tweet_id: str) -> tuple[CachedTweetDoc, CachedTweetDoc]:
    """The live tweet a client named, and the tweet its engagement goes to: the same one,
    or for a retweet its original (as on Twitter, liking, commenting on or retweeting a
    retweet acts on the original). ``BAD_USER_INPUT`` for a malformed ID, ``NOT_FOUND``
    for an unknown or deleted tweet."""
    loaders = await ctx.loaders()
    named = await loaders.tweets.load(parse_tweet_id(tweet_id))
    if named is None:
        raise NotFound(f"No tweet {tweet_id}.")
    original_id = named.get("retweet_of")
    if original_id is None:
        return named, named
    original = await loaders.tweets.load(original_id)
    if original is None:
        raise NotFound(f"Tweet {tweet_id} is a retweet of a deleted tweet.")
    return named, original


async def engageable_target(
    ctx: RequestContext, viewer_id: int, tweet_id: str
) -> tuple[CachedTweetDoc, CachedTweetDoc]:
    """``engagement_target`` for an engagement a block forbids (like, retweet, comment,
    quote): ``FORBIDDEN`` when a block stands between the viewer and the author of the
    tweet named or of its original."""
    named, original = await engagement_target(ctx, tweet_id)
    await forbid_if_blocked(ctx, viewer_id, named["author_id"], original["author_id"])
    return named, original
