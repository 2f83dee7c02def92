"""Posting, deleting and reading tweets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starling.loaders.engagement import retweet_key
from starling.resolvers import media
from starling.resolvers.activity import ActivityKind, record_activity
from starling.resolvers.context import RequestContext
from starling.resolvers.counting import counted_change
from starling.resolvers.errors import BadUserInput, Forbidden, NotFound
from starling.resolvers.mentions import mentioned_user_ids
from starling.resolvers.notifications import request_notification
from starling.resolvers.pagination import Page, check_first, find_page
from starling.resolvers.relations import tweet_visible
from starling.resolvers.text import clean_text, hashtags_in, words_in
from starling.store import reservations, trends, user_cache, viewer_engagement
from starling.store.counters import CounterKind
from starling.store.degrade import best_effort
from starling.store.documents import CachedTweetDoc, Document, TweetDoc, encode_tweet, utcnow
from starling.store.ids import parse_id
from starling.store.jobs import FANOUT_TWEET, RETRACT_RETWEETS, RETRACT_TWEET
from starling.store.notifications import NotificationKind
from starling.store.pubsub.publishing import queue_post_events
from starling.store.services import Services
from starling.store.tweets import LIVE
from starling.store.viewer_engagement import Engagement


def parse_tweet_id(value: str) -> int:
    try:
        return parse_id(value)
    except ValueError:
        raise BadUserInput(f"{value!r} is not a tweet ID.") from None


async def publish(services: Services, doc: TweetDoc) -> None:
    """Make a tweet durable, then visible.

    The MongoDB insert carries ``fanout_pending`` (the outbox marker): until the fan-out job
    clears it, the worker's repair cron re-enqueues the job. So a crash, a Redis outage or
    a lost job after the insert delays delivery but never loses the tweet.
    """
    doc["fanout_pending"] = True
    await services.db.tweets.insert_one(doc)
    await services.db.users.update_one({"_id": doc["author_id"]}, {"$inc": {"tweets_count": 1}})
    await user_cache.forget(services, doc["author_id"])
    if doc.get("retweet_of") is None:
        await _count_trends(services, doc["_id"], doc["hashtags"], 1)
    await best_effort(f"delivery of tweet {doc['_id']}", _deliver_now(services, doc))


async def _deliver_now(services: Services, doc: TweetDoc) -> None:
    keys = services.keys
    author_id = doc["author_id"]
    async with (
        services.redis.pipeline(transaction=False) as pipe,
        services.queue_redis.pipeline(transaction=False) as events,
    ):
        pipe.set(keys.tweet(doc["_id"]), encode_tweet(doc), ex=services.settings.tweet_cache_ttl_seconds)
        # The author sees their own tweet at once; followers get it from the fan-out job.
        services.timelines.add_to_timelines(pipe, [keys.home_timeline(author_id)], [doc["_id"]])
        services.timelines.add_author_tweet(pipe, keys.author_tweets(author_id), doc["_id"])
        queue_post_events(events, keys, author_id, doc["_id"])
        # Written, then announced: a live feed resuming with ``after`` reads the timeline
        # after it listens, so it must never hear of a tweet its read could still miss.
        await pipe.execute()
        await events.execute()
    await FANOUT_TWEET.enqueue(services.queue, doc["_id"])


async def _count_trends(services: Services, tweet_id: int, hashtags: list[str], delta: int) -> None:
    """Count an original's hashtags in or out of trends (``store.trends``). Redis down: the
    change is lost, and trends miscount it until its hour leaves the window."""
    await best_effort("trend counts", trends.record(services, tweet_id, hashtags, delta))


def new_tweet_document(services: Services, author_id: int, text: str, mention_ids: list[int]) -> TweetDoc:
    return {
        "_id": services.ids.next_id(),
        "author_id": author_id,
        "text": text,
        "created_at": utcnow(),
        "hashtags": hashtags_in(text),
        "words": words_in(text),  # what `search` matches (resolvers.search)
        "mention_ids": mention_ids,
        "like_count": 0,
        "comment_count": 0,
        "retweet_count": 0,
        "quote_count": 0,
    }


@dataclass(frozen=True, slots=True)
class PostOptions:
    """What ``postTweet`` takes beside its text (each addition to the mutation is a field)."""

    quote_of: str | None = None  # the ID of the tweet quoted (a retweet: its original)
    sensitive: bool = False  # a content warning
    spoiler_text: str | None = None  # what the warning says; validated like text
    media_ids: Sequence[str] | None = None  # up to 4 of the viewer's finalized media


async def post_tweet(ctx: RequestContext, text: str, options: PostOptions = PostOptions()) -> TweetDoc:
    """Post a tweet; a quote (``options.quote_of``) of a tweet that is gone or behind a block
    is ``NOT_FOUND`` (the quoter cannot see it), and counts on the quoted tweet."""
    viewer = await ctx.require_writer()
    services = ctx.services
    text = clean_text(text, services.settings.text_max, "Tweet text")
    spoiler = (
        None
        if options.spoiler_text is None
        else clean_text(options.spoiler_text, services.settings.spoiler_text_max, "Spoiler text")
    )
    quoted = await _quoted(ctx, options.quote_of)
    mention_ids = await mentioned_user_ids(services, text, viewer.user_id)
    doc = new_tweet_document(services, viewer.user_id, text, mention_ids)
    if options.media_ids:  # claimed for this tweet before it is stored (resolvers.media)
        doc["media"] = await media.attach(services, viewer.user_id, options.media_ids, doc["_id"])
    if options.sensitive or spoiler is not None:  # a spoiler text is a warning by itself
        doc["sensitive"] = True
    if spoiler is not None:
        doc["spoiler_text"] = spoiler
    if quoted is None:
        await publish(services, doc)
    else:
        doc["quote_of"] = quoted["_id"]
        async with counted_change(services, quoted["_id"]) as change:
            await publish(services, doc)
            change.add(CounterKind.QUOTE, 1)
        await record_activity(services, ActivityKind.QUOTE, viewer.user_id, quoted["_id"])  # best effort
    await media.settle(services, doc.get("media", []))
    if mention_ids:  # best effort, by the worker (resolvers.notifications)
        await request_notification(services, NotificationKind.MENTION, viewer.user_id, tweet_id=doc["_id"])
    return doc


async def _quoted(ctx: RequestContext, quote_of: str | None) -> CachedTweetDoc | None:
    """The live tweet a quote embeds (a retweet's original), visible to the viewer."""
    if quote_of is None:
        return None
    named = await tweet_visible(ctx, await (await ctx.loaders()).tweets.load(parse_tweet_id(quote_of)))
    original_id = named.get("retweet_of") if named is not None else None
    original = named if original_id is None else await (await ctx.loaders()).tweets.load(original_id)
    if original is None:
        raise NotFound(f"No tweet {quote_of} to quote.")
    return original


async def delete_tweet(ctx: RequestContext, tweet_id: str) -> bool:
    viewer = await ctx.require_viewer()
    services = ctx.services
    tid = parse_tweet_id(tweet_id)
    doc = await services.db.tweets.find_one(
        {"_id": tid, **LIVE}, {"author_id": 1, "retweet_of": 1, "media": 1, "quote_of": 1}
    )
    if doc is None:
        raise NotFound(f"No tweet {tweet_id}.")
    if doc["author_id"] != viewer.user_id:
        raise Forbidden("You can only delete your own tweets.")
    # A retweet's media are its original's, which keeps them.
    owns_media = bool(doc.get("media")) and doc.get("retweet_of") is None
    if owns_media:
        await media.mark_for_deletion(services, tid)  # the outbox marker first
    await retract(
        services, tid, viewer.user_id, retweet_of=doc.get("retweet_of"), quote_of=doc.get("quote_of")
    )
    if owns_media:
        await media.request_deletion(services, tid)
    if doc.get("retweet_of") is None:
        # Its retweets go too: reads hide them at once, the job retracts them
        # (workers.retweets). Redis down: they stay hidden, and the repair cron enqueues the
        # job later (the original carries the ``retweets_pending`` marker until it is done).
        await best_effort(
            f"retraction of the retweets of {tid}", RETRACT_RETWEETS.enqueue(services.queue, tid)
        )
    return True


async def retract(
    services: Services,
    tweet_id: int,
    author_id: int,
    retweet_of: int | None = None,
    quote_of: int | None = None,
) -> bool:
    """Soft-delete a tweet and take it out of every feed; False when it was gone already.

    Reads stop showing it at once (hydration skips deleted tweets); the job then removes
    the ID from followers' timelines so the space is reclaimed. A retweet (``retweet_of``:
    its original) gives up its ``retweet_key`` in the same write and then its
    ``retweet_keys`` reservation, so its author may retweet again, and leaves the
    original's retweet count (``resolvers.counting``). An
    original gets the ``retweets_pending`` marker in the same write: until the job that
    retracts its retweets (``workers.retweets``) clears it, the repair cron re-enqueues that
    job, so a Redis outage or a lost job leaves no retweet counted in its author's
    ``tweets_count``. A quote (``quote_of``: the tweet it embeds) leaves that tweet's quote
    count the same way."""
    deletion: Document = {"deleted": True, "deleted_at": utcnow()}
    if retweet_of is None:
        deletion["retweets_pending"] = True
    counted, kind = (
        (retweet_of, CounterKind.RETWEET) if retweet_of is not None else (quote_of, CounterKind.QUOTE)
    )
    async with counted_change(services, counted) as change:
        # The document before the write (None: gone already), for its hashtags.
        retracted = await services.db.tweets.find_one_and_update(
            {"_id": tweet_id, **LIVE},
            {"$set": deletion, "$unset": {"retweet_key": ""}},
            projection={"hashtags": 1},
        )
        if retracted is not None and counted is not None:
            change.add(kind, -1)
    if retweet_of is not None:  # also when retried: only frees a reservation naming this tweet
        await reservations.release(
            services.db.retweet_keys, retweet_key(author_id, retweet_of), "tweet_id", tweet_id
        )
    if retracted is not None:
        if retweet_of is None:
            await _count_trends(services, tweet_id, retracted.get("hashtags", []), -1)
        await services.db.users.update_one({"_id": author_id}, {"$inc": {"tweets_count": -1}})
        await user_cache.forget(services, author_id)
        if retweet_of is not None:
            await best_effort(
                "viewer engagement",
                viewer_engagement.record(services, author_id, Engagement.RETWEETED, retweet_of, done=False),
            )
    await best_effort(f"retraction of tweet {tweet_id}", _retract_now(services, tweet_id, author_id))
    return retracted is not None


async def _retract_now(services: Services, tweet_id: int, author_id: int) -> None:
    keys = services.keys
    async with services.redis.pipeline(transaction=False) as pipe:
        pipe.delete(keys.tweet(tweet_id))
        services.timelines.remove_from_timelines(
            pipe, [keys.home_timeline(author_id), keys.author_tweets(author_id)], [tweet_id]
        )
        await pipe.execute()
    await RETRACT_TWEET.enqueue(services.queue, tweet_id)


async def get_tweet(ctx: RequestContext, tweet_id: str) -> CachedTweetDoc | None:
    """The tweet; None when unknown, deleted, or behind a block (``resolvers.relations``)."""
    tid = parse_tweet_id(tweet_id)
    return await tweet_visible(ctx, await (await ctx.loaders()).tweets.load(tid))


async def quotes_of(
    ctx: RequestContext, tweet_id: int, first: int | None, after: str | None
) -> Page[TweetDoc]:
    """The tweet's live quotes, newest first."""
    first = check_first(first, ctx.services.settings.page_size_max)
    return await find_page(ctx.services.db.tweets, {"quote_of": tweet_id, **LIVE}, first, after)


async def user_tweets(
    ctx: RequestContext, user_id: int, first: int | None, after: str | None
) -> Page[TweetDoc]:
    """The user's tweets and retweets, newest first; none behind a block (``resolvers.relations``)."""
    first = check_first(first, ctx.services.settings.page_size_max)
    if (await ctx.relations()).blocks_between(user_id):
        return Page(items=[], positions=[], has_next_page=False)
    return await find_page(ctx.services.db.tweets, {"author_id": user_id, **LIVE}, first, after)
