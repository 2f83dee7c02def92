"""``FeedEvent``, what ``homeFeedEvents`` streams: a tweet entered the feed, or left it."""

from __future__ import annotations

from typing import Annotated

import strawberry

from starling.resolvers.live import FeedChange
from starling.schema.types import Tweet


@strawberry.type(description="A tweet entered the viewer's home feed.")
class TweetPosted:
    tweet: Tweet


@strawberry.type(
    description="A tweet left the viewer's home feed: it, or the original it retweets, was deleted."
)
class TweetDeleted:
    tweet_id: strawberry.ID


FeedEvent = Annotated[
    TweetPosted | TweetDeleted,
    strawberry.union("FeedEvent", description="A change to the viewer's home feed."),
]


def feed_event(change: FeedChange) -> TweetPosted | TweetDeleted:
    if change.tweet is None:
        return TweetDeleted(tweet_id=strawberry.ID(str(change.tweet_id)))
    return TweetPosted(tweet=Tweet.from_doc(change.tweet))
