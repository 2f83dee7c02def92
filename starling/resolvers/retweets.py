"""Retweets: a tweet of the retweeter's whose ``retweet_of`` is the original.

A retweet is published like any tweet (outbox, fan-out to the retweeter's followers, the
author's ``tweets_count``); its text is the original's. It carries a ``retweet_key``
(``loaders.engagement.retweet_key``) reserved in the ``retweet_keys`` collection
(``store.reservations``: the tweets' shard key cannot carry that uniqueness), so a user has
at most one live retweet of a tweet: retweeting again returns it. Retweeting a retweet retweets the
original. Retweeting your own tweet is allowed, as on Twitter.

Taking a retweet back (``undoRetweet``, deleting it, or deleting its original) is
``resolvers.tweets.retract``, which frees the key and moves the original's retweet count
in the same write, then deletes the reservation (a crash in between leaves it
reclaimable).

**Feed de-duplication** (``drop_hidden_retweets``). Within one page of a feed each
original is shown once, at its oldest entry: a retweet is hidden when the tweet it
retweets, or an earlier retweet of that tweet, is further down the same page. The reader
who just saw a tweet does not see it again because someone retweeted it shortly after.
The window is the page (the client's ``first``, at most ``page_size_max``): entries on
different pages are both shown. Mastodon applies a fall-off window of recent items at
fan-out time instead; applying the rule at read time keeps fan-out a plain ID insert and
lets the rule change without rewriting timelines.
"""

from __future__ import annotations

from starling.loaders.engagement import retweet_key
from starling.resolvers.activity import ActivityKind, record_activity
from starling.resolvers.context import RequestContext
from starling.resolvers.counting import counted_change
from starling.resolvers.engagement import engageable_target
from starling.resolvers.errors import Conflict, NotFound
from starling.resolvers.pagination import Page
from starling.resolvers.tweets import new_tweet_document, parse_tweet_id, publish, retract
from starling.store import reservations, viewer_engagement
from starling.store.counters import CounterKind
from starling.store.degrade import best_effort
from starling.store.documents import CachedTweetDoc, TweetDoc
from starling.store.services import Services
from starling.store.viewer_engagement import Engagement


async def retweet(ctx: RequestContext, tweet_id: str) -> TweetDoc:
    """Idempotent; returns the viewer's retweet."""
    viewer = await ctx.require_writer()
    _, original = await engageable_target(ctx, viewer.user_id, tweet_id)
    return await add_retweet(ctx.services, viewer.user_id, original)


async def add_retweet(services: Services, user_id: int, original: CachedTweetDoc) -> TweetDoc:
    """The user's retweet of ``original``: created and published, or the existing one.

    Durable once MongoDB has it; delivery goes through ``publish``'s outbox (Redis or the
    worker down delays it, never loses it) and the retweet count through
    ``resolvers.counting``."""
    key = retweet_key(user_id, original["_id"])
    existing = await _live_retweet(services, user_id, key)
    if existing is not None:
        return existing
    doc = new_tweet_document(services, user_id, original["text"], original.get("mention_ids", []))
    if original.get("media"):
        doc["media"] = original["media"]  # shown like its text; the original owns the objects
    doc["retweet_of"] = original["_id"]
    for warning in ("sensitive", "spoiler_text"):  # the text's content warning goes with it
        if warning in original:
            doc[warning] = original[warning]
    doc["retweet_key"] = key
    holder = await reservations.reserve(
        services.db.retweet_keys, key, "tweet_id", doc["_id"], _retweet_state(services, user_id)
    )
    if holder != doc["_id"]:
        existing = (
            None
            if holder is None
            else await services.db.tweets.find_one({"_id": holder, "author_id": user_id})
        )
        if existing is None:  # being made or taken back by another request right now
            raise Conflict("Your retweet of this tweet is being made or undone; try again.")
        return existing
    async with counted_change(services, original["_id"]) as change:
        await publish(services, doc)
        change.add(CounterKind.RETWEET, 1)
    await best_effort(
        "viewer engagement",
        viewer_engagement.record(services, user_id, Engagement.RETWEETED, original["_id"], done=True),
    )
    await record_activity(services, ActivityKind.RETWEET, user_id, original["_id"])  # best effort
    return doc


async def _live_retweet(services: Services, user_id: int, key: str) -> TweetDoc | None:
    """The user's live retweet under ``key``: one read targeted by the tweets' shard key."""
    return await services.db.tweets.find_one({"author_id": user_id, "retweet_key": key})


def _retweet_state(services: Services, author_id: int) -> reservations.HolderState:
    """A retweet key's holder is live while the retweet keeps its ``retweet_key``."""

    async def state(tweet_id: int) -> reservations.Holder:
        found = await services.db.tweets.find_one(
            {"_id": tweet_id, "author_id": author_id}, {"retweet_key": 1}
        )
        if found is None:
            return reservations.Holder.MISSING
        return reservations.Holder.LIVE if "retweet_key" in found else reservations.Holder.RELEASED

    return state


async def undo_retweet(ctx: RequestContext, tweet_id: str) -> bool:
    """Take back the viewer's retweet of a tweet (named by its ID, or by the ID of any
    retweet of it); False when there was none. Works after the original was deleted."""
    viewer = await ctx.require_writer()
    services = ctx.services
    tid = parse_tweet_id(tweet_id)
    named = await services.db.tweets.find_one({"_id": tid}, {"retweet_of": 1})
    if named is None:
        raise NotFound(f"No tweet {tweet_id}.")
    original_id = named.get("retweet_of", tid)
    mine = await _live_retweet(services, viewer.user_id, retweet_key(viewer.user_id, original_id))
    if mine is None:
        return False
    return await withdraw_retweet(services, mine)


async def withdraw_retweet(services: Services, retweet_doc: TweetDoc) -> bool:
    """Take a retweet back (see ``resolvers.tweets.retract``); True when it was live."""
    return await retract(
        services, retweet_doc["_id"], retweet_doc["author_id"], retweet_of=retweet_doc["retweet_of"]
    )


async def drop_hidden_retweets(
    ctx: RequestContext, page: Page[CachedTweetDoc], *, collapse: bool
) -> Page[CachedTweetDoc]:
    """A page without the retweets a reader should not see: those whose original is gone
    (deleted; ``workers.retweets`` takes them back soon after) and, with ``collapse``, the
    de-duplicated ones (module doc). One loader batch for the originals on the page."""
    original_ids = [doc["retweet_of"] for doc in page.items if doc.get("retweet_of") is not None]
    if not original_ids:
        return page
    originals = await (await ctx.loaders()).tweets.load_many(original_ids)
    live = {doc["_id"] for doc in originals if doc is not None}
    shown: set[int] = set()
    visible: list[CachedTweetDoc | None] = []  # None: hidden
    # Oldest first: the entry that reached the feed first is kept, later retweets repeat it.
    for doc in reversed(page.items):
        subject = doc.get("retweet_of", doc["_id"])
        hidden = subject != doc["_id"] and (subject not in live or (collapse and subject in shown))
        if not hidden:
            shown.add(subject)
        visible.append(None if hidden else doc)
    visible.reverse()
    return page.hydrated(visible)
