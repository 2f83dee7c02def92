"""A small demo network for ``starling dev --seed``: made through the same domain
operations the API uses, so the data is exactly what clients would have created."""

from __future__ import annotations

import logging
import random

from starling.resolvers import accounts, follows, tweets
from starling.resolvers.context import RequestContext
from starling.store.services import Services

log = logging.getLogger(__name__)

DEMO_HANDLE = "demo"
DEMO_PASSWORD = "starling-demo"
USER_COUNT = 36
FOLLOWS_PER_USER = 8
TWEETS_PER_USER = 4
SEED = 7

_TOPICS = ["python", "graphql", "redis", "mongodb", "coffee", "music", "running", "books"]
_LINES = [
    "Shipping a small thing today. Feels good. #{t}",
    "Hot take: {t} is underrated. #{t}",
    "Anyone else up this early? #{t}",
    "Reading about {t} again, so much to learn #{t}",
    "Pairing with @{h} on something fun #{t}",
    "Weekend plans: {t}, then more {t}. #{t}",
]


def _handles(rng: random.Random) -> list[str]:
    return [DEMO_HANDLE] + [f"{rng.choice(_TOPICS)}_{n:02d}" for n in range(1, USER_COUNT)]


def demo_handles() -> list[str]:
    """The handles ``seed_demo`` creates (the README's examples mention some)."""
    return _handles(random.Random(SEED))


def _context(services: Services, token: str | None = None) -> RequestContext:
    return RequestContext(services=services, authorization=f"Bearer {token}" if token else None)


async def seed_demo(services: Services) -> None:
    """Create the demo network unless users already exist."""
    if await services.db.users.find_one({}, {"_id": 1}):
        log.info("demo data: users already exist, not seeding")
        return
    rng = random.Random(SEED)
    handles = _handles(rng)
    sessions = []
    for handle in handles:
        session = await accounts.sign_up(
            _context(services), handle, DEMO_PASSWORD, handle.replace("_", " ").title()
        )
        sessions.append(session)
    for session in sessions:
        ctx = _context(services, session.token)
        others = [s for s in sessions if s is not session]
        for other in rng.sample(others, FOLLOWS_PER_USER):
            await follows.follow(ctx, str(other.user["_id"]))
    for _ in range(TWEETS_PER_USER):
        for session in sessions:
            topic = rng.choice(_TOPICS)
            text = rng.choice(_LINES).format(t=topic, h=rng.choice(handles))
            await tweets.post_tweet(_context(services, session.token), text)
    log.info(
        "demo data: %d users; log in as @%s with password %r",
        len(handles),
        DEMO_HANDLE,
        DEMO_PASSWORD,
    )
