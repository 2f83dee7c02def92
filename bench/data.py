"""The benchmark's social network: users, a power-law follower graph, tweets, retweets,
likes and comments, loaded into a running server's datastores.

The data is what the API would have made, written through the API's own code:

- users, likes, comments and retweets go through the domain operations (``accounts.sign_up``,
  ``likes.like_tweet``, ``comments.add_comment``, ``retweets.retweet``) with a signed-in
  request context, exactly as the GraphQL mutations call them. Passwords are hashed with
  the server's argon2 settings, which the benchmark makes cheap (``server.bench_settings``).
- follows and tweets, the bulk, use a fast path: documents built as ``follows.follow`` and
  ``tweets.new_tweet_document`` build them, inserted in batches with the counters
  (``followers_count``, ``tweets_count``...) the single operations would have left, in the
  state a completed fan-out leaves (no outbox marker). Redis then gets what the API keeps
  there: tweet cache blobs, each author's recent tweets and every home timeline, the latter
  built by the API's own rebuild (``feed.rebuild_timeline``), and every tweet's counts, read
  once through ``store.counters`` as a first reader would. ``tests/test_bench_data.py``
  checks that the fast path leaves the same documents as the single operations.

Popularity follows Zipf's law: a few users are followed by most others (celebrities, whose
tweets are merged at read time when they pass ``celebrity_followers``) and most by a few.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starling.resolvers import accounts, comments, feed, likes, retweets
from starling.resolvers.context import RequestContext
from starling.resolvers.errors import StarlingError
from starling.resolvers.mentions import mentioned_user_ids
from starling.resolvers.tweets import new_tweet_document
from starling.store import trends as trend_counts
from starling.store.counters import Counters
from starling.store.documents import encode_tweet
from starling.store.follows import new_edge
from starling.store.services import Services

Doc = dict[str, Any]
T = TypeVar("T")

PASSWORD = "bench-password"
INSERT_BATCH = 1000
COUNTS_BATCH = 500
TOPICS = ["python", "graphql", "redis", "mongodb", "coffee", "music", "running", "books", "cats", "rust"]
LINES = [
    "Shipping a small thing today, feels good #{t}",
    "Hot take: {t} is underrated and everyone should try it at least once #{t}",
    "Anyone else up this early? Thinking about {t} again",
    "Reading about {t} all evening, so much to learn #{t} #learning",
    "Pairing with @{h} on {t} stuff, great fun",
    "Weekend plans: {t}, then more {t}. #{t}",
    "Thread: what I wish I had known about {t} when I started (1/n)",
    "Small wins: finally fixed that {t} bug that bit us for weeks #{t}",
]
COMMENTS = ["So true!", "Interesting, thanks for sharing", "Hard disagree :)", "+1", "Where can I read more?"]


@dataclass(frozen=True, slots=True)
class Spec:
    """Sizes and shape of the generated network (all deterministic given ``seed``)."""

    users: int = 2000
    follows_per_user: float = 25.0  # mean; the spread is log-normal
    tweets: int = 20_000
    retweets: int = 300
    likes: int = 6000
    comments: int = 1200
    zipf: float = 1.0  # popularity exponent of the follower graph
    celebrity_share: float = 0.25  # more followers than this share of users = celebrity
    seed: int = 42

    @property
    def celebrity_followers(self) -> int:
        """The server's ``celebrity_followers`` for this network."""
        return max(1, int(self.users * self.celebrity_share))

    @classmethod
    def quick(cls) -> Spec:
        return cls(users=600, tweets=6000, retweets=100, likes=2000, comments=400)


@dataclass(frozen=True, slots=True)
class Graph:
    """Who follows whom, by user index (not yet IDs)."""

    followees: list[list[int]]

    def followers(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in self.followees]
        for follower, followees in enumerate(self.followees):
            for followee in followees:
                out[followee].append(follower)
        return out


def _zipf_weights(count: int, exponent: float, rng: random.Random) -> list[float]:
    """Zipf weights (rank ``r`` weighs ``1 / r**exponent``) dealt to users in random order."""
    ranks = list(range(1, count + 1))
    rng.shuffle(ranks)
    return [1.0 / rank**exponent for rank in ranks]


def follower_graph(spec: Spec) -> Graph:
    """Each user follows a log-normal number of others, picked by Zipf popularity."""
    rng = random.Random(spec.seed)
    weights = _zipf_weights(spec.users, spec.zipf, rng)
    population = range(spec.users)
    sigma = 1.0
    mu = math.log(spec.follows_per_user) - sigma**2 / 2
    followees: list[list[int]] = []
    for user in population:
        want = min(spec.users - 1, max(1, round(rng.lognormvariate(mu, sigma))))
        chosen: dict[int, None] = {}
        for _ in range(20):  # bounded: popular picks repeat, so draw in rounds
            for pick in rng.choices(population, weights, k=2 * want):
                if pick != user:
                    chosen[pick] = None
            if len(chosen) >= want:
                break
        followees.append(list(chosen)[:want])
    return Graph(followees)


@dataclass
class Network:
    """What the load generator needs to know about the loaded network."""

    user_ids: list[int]
    tokens: list[str]
    followers: list[list[int]]  # by user index
    tweet_ids: list[int]
    celebrity_followers: int
    timings: dict[str, float] = field(default_factory=dict)

    def visibility_pairs(self, count: int, seed: int) -> list[tuple[int, int]]:
        """(author, follower) index pairs: the follower's feed must show the author's post."""
        rng = random.Random(seed)
        fanned_out = [
            user for user, fans in enumerate(self.followers) if 0 < len(fans) <= self.celebrity_followers
        ]
        return [(author, rng.choice(self.followers[author])) for author in rng.sample(fanned_out, count)]

    def summary(self) -> dict[str, Any]:
        degrees = sorted((len(fans) for fans in self.followers), reverse=True)
        return {
            "users": len(self.user_ids),
            "follows": sum(degrees),
            "tweets": len(self.tweet_ids),
            "most_followed": degrees[:5],
            "median_followers": degrees[len(degrees) // 2],
            "celebrities": sum(1 for d in degrees if d > self.celebrity_followers),
            "celebrity_followers": self.celebrity_followers,
            "load_seconds": self.timings,
        }


def _context(services: Services, token: str | None = None) -> RequestContext:
    return RequestContext(services=services, authorization=f"Bearer {token}" if token else None)


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def _each(items: Iterable[T], operation: Callable[[T], Awaitable[Any]]) -> int:
    """Run a domain operation per item; a refusal (e.g. a tweet deleted meanwhile) is skipped."""
    done = 0
    for item in items:
        try:
            await operation(item)
            done += 1
        except StarlingError:
            pass
    return done


async def load(services: Services, spec: Spec, log: Callable[[str], None] = print) -> Network:
    """Fill the (empty) datastores of ``services`` with the network of ``spec``."""
    rng = random.Random(spec.seed + 1)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.perf_counter() - started, 2)
        log(f"  {name}: {timings[name]} s")
        started = time.perf_counter()

    graph = follower_graph(spec)
    sessions = [
        await accounts.sign_up(_context(services), f"u{n:05d}", PASSWORD, f"User {n}")
        for n in range(spec.users)
    ]
    user_ids = [session.user["_id"] for session in sessions]
    tokens = [session.token for session in sessions]
    handles = [session.user["handle"] for session in sessions]
    lap("users (sign_up)")

    await _insert_follows(services, graph, user_ids)
    lap("follows (bulk)")

    tweet_ids, authors = await _insert_tweets(services, spec, rng, user_ids, handles)
    lap("tweets (bulk)")

    followers = graph.followers()
    originals = rng.sample(range(len(tweet_ids)), min(spec.retweets, len(tweet_ids)))
    await _each(
        originals,
        lambda t: retweets.retweet(
            _context(services, tokens[_fan(rng, followers, authors[t])]), str(tweet_ids[t])
        ),
    )
    lap("retweets (retweet)")

    # People like and comment on what they see: a follower of the author reacts.
    await _each(
        (rng.randrange(len(tweet_ids)) for _ in range(spec.likes)),
        lambda t: likes.like_tweet(
            _context(services, tokens[_fan(rng, followers, authors[t])]), str(tweet_ids[t])
        ),
    )
    lap("likes (like_tweet)")
    await _each(
        range(spec.comments),
        lambda _: _comment(services, rng, tokens, followers, authors, tweet_ids),
    )
    lap("comments (add_comment)")

    for user_id in user_ids:
        await feed.rebuild_timeline(services, user_id)
    counters = Counters(services)
    for batch in _batches(tweet_ids, COUNTS_BATCH):
        await counters.read(batch)
    lap("timelines and counts (rebuild, first read)")
    return Network(
        user_ids=user_ids,
        tokens=tokens,
        followers=followers,
        tweet_ids=tweet_ids,
        celebrity_followers=services.settings.celebrity_followers,
        timings=timings,
    )


def _fan(rng: random.Random, followers: list[list[int]], author: int) -> int:
    """A random follower of the author (the author when nobody follows them)."""
    fans = followers[author]
    return rng.choice(fans) if fans else author


async def _comment(
    services: Services,
    rng: random.Random,
    tokens: list[str],
    followers: list[list[int]],
    authors: list[int],
    tweet_ids: list[int],
) -> None:
    pick = rng.randrange(len(tweet_ids))
    ctx = _context(services, tokens[_fan(rng, followers, authors[pick])])
    await comments.add_comment(ctx, str(tweet_ids[pick]), rng.choice(COMMENTS))


async def _insert_follows(services: Services, graph: Graph, user_ids: list[int]) -> None:
    """Follow edges as ``follows.follow`` writes them, and the counts it moves."""
    edges = [
        new_edge(services, user_ids[follower], user_ids[followee])
        for follower, followees in enumerate(graph.followees)
        for followee in followees
    ]
    for batch in _batches(edges, INSERT_BATCH):
        await services.db.follows.insert_many(list(batch))
    following = Counter(edge["follower_id"] for edge in edges)
    followers = Counter(edge["followee_id"] for edge in edges)
    for user_id in user_ids:
        counts = {"following_count": following[user_id], "followers_count": followers[user_id]}
        await services.db.users.update_one({"_id": user_id}, {"$inc": counts})


async def _insert_tweets(
    services: Services, spec: Spec, rng: random.Random, user_ids: list[int], handles: list[str]
) -> tuple[list[int], list[int]]:
    """Tweets as ``tweets.post_tweet`` publishes them once fan-out is done; returns their IDs
    (oldest first) and authors (user indexes)."""
    activity = _zipf_weights(len(user_ids), 0.8, rng)
    authors = rng.choices(range(len(user_ids)), activity, k=spec.tweets)
    docs: list[Doc] = []
    for author in authors:
        topic = rng.choice(TOPICS)
        text = rng.choice(LINES).format(t=topic, h=rng.choice(handles))
        mentions = await mentioned_user_ids(services, text, user_ids[author]) if "@" in text else []
        docs.append(new_tweet_document(services, user_ids[author], text, mentions))
    for batch in _batches(docs, INSERT_BATCH):
        await services.db.tweets.insert_many(list(batch))
    for doc in docs:  # trends count them as publishing does (all are recent originals)
        await trend_counts.record(services, doc["_id"], doc["hashtags"], 1)
    per_author = Counter(doc["author_id"] for doc in docs)
    for author_id, count in per_author.items():
        await services.db.users.update_one({"_id": author_id}, {"$inc": {"tweets_count": count}})
    keys, ttl = services.keys, services.settings.tweet_cache_ttl_seconds
    recent: dict[int, list[int]] = {}
    for doc in docs:
        recent.setdefault(doc["author_id"], []).append(doc["_id"])
    for batch in _batches(docs, INSERT_BATCH):
        async with services.redis.pipeline(transaction=False) as pipe:
            for doc in batch:
                pipe.set(keys.tweet(doc["_id"]), encode_tweet(doc), ex=ttl)
            await pipe.execute()
    for author_id, ids in recent.items():
        await services.timelines.store_author_tweets(keys.author_tweets(author_id), ids)
    return [doc["_id"] for doc in docs], authors
