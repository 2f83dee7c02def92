"""Taking back the retweets of a deleted tweet.

Reads hide a retweet whose original is gone at once (``resolvers.retweets``); this job
retracts them for good, which takes them out of their retweeters' followers' timelines and
puts their authors' ``tweets_count`` right. A job handles ``retweet_cascade_batch`` of them
and enqueues the rest, recording the next round on the original (``retweets_round``); the
last one clears the original's ``retweets_pending`` marker.
Retracting is idempotent (``retract`` changes counts only when it deleted a live retweet),
so a job that dies half-way, or never ran, is simply run again by the repair cron
(``workers.repair``).
"""

from __future__ import annotations

from starling.resolvers.retweets import withdraw_retweet
from starling.store.jobs import RETRACT_RETWEETS, JobContext
from starling.store.services import Services


async def retract_retweets(ctx: JobContext, original_id: int, round: int = 0) -> str:
    services: Services = ctx["services"]
    original = await services.db.tweets.find_one({"_id": original_id}, {"deleted": 1})
    if original is not None and not original.get("deleted"):
        return "live"
    batch = services.settings.retweet_cascade_batch
    # Live retweets only: each one retracted loses its key and drops out of this query.
    retweets = (
        await services.db.tweets.find(
            {"retweet_of": original_id, "retweet_key": {"$exists": True}},
            {"author_id": 1, "retweet_of": 1},
        )
        .limit(batch)
        .to_list()
    )
    for retweet in retweets:
        await withdraw_retweet(services, retweet)
    if len(retweets) < batch:
        done = {"$unset": {"retweets_pending": "", "retweets_round": ""}}
        await services.db.tweets.update_one({"_id": original_id}, done)
        return "retracted"
    # Recorded before the next job exists: the repair cron re-enqueues this round, the ID of
    # the job pending or under way, not round 0 beside it (workers.repair).
    await services.db.tweets.update_one({"_id": original_id}, {"$set": {"retweets_round": round + 1}})
    await RETRACT_RETWEETS.enqueue(services.queue, original_id, round + 1)
    return "continued"
