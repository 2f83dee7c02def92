"""The Mutation root."""

from __future__ import annotations

import strawberry

from starling.resolvers import (
    accounts,
    bookmarks,
    comments,
    follows,
    likes,
    notifications,
    relations,
    retweets,
    tweets,
)
from starling.schema.media import MediaMutation
from starling.schema.notifications import Marker, MarkerTimeline
from starling.schema.types import AuthPayload, Comment, Info, Tweet, User
from starling.store.relations import RelationKind


def _auth_payload(session: accounts.Session) -> AuthPayload:
    return AuthPayload(token=session.token, user=User.from_doc(session.user))


@strawberry.type
class Mutation(MediaMutation):
    @strawberry.mutation(description="Create an account; the handle is unique case-insensitively.")
    async def sign_up(
        self, info: Info, handle: str, password: str, display_name: str | None = None
    ) -> AuthPayload:
        return _auth_payload(await accounts.sign_up(info.context, handle, password, display_name))

    @strawberry.mutation
    async def log_in(self, info: Info, handle: str, password: str) -> AuthPayload:
        return _auth_payload(await accounts.log_in(info.context, handle, password))

    @strawberry.mutation(description="Revoke the token this request was made with.")
    async def log_out(self, info: Info) -> bool:
        return await accounts.log_out(info.context)

    @strawberry.mutation(
        description="Replace the viewer's password. Every token of the viewer stops working (open "
        "WebSockets close); use the fresh one returned."
    )
    async def change_password(self, info: Info, old_password: str, new_password: str) -> AuthPayload:
        return _auth_payload(await accounts.change_password(info.context, old_password, new_password))

    @strawberry.mutation
    async def update_profile(
        self, info: Info, display_name: str | None = None, bio: str | None = None
    ) -> User:
        return User.from_doc(await accounts.update_profile(info.context, display_name, bio))

    @strawberry.mutation(
        description="Post a tweet; quoteOf: a tweet it embeds (a retweet: its original); sensitive, "
        "spoilerText: a content warning (a spoilerText implies sensitive); mediaIds: up to 4 of the "
        "viewer's finalized media."
    )
    async def post_tweet(
        self,
        info: Info,
        text: str,
        quote_of: strawberry.ID | None = None,
        sensitive: bool | None = False,
        spoiler_text: str | None = None,
        media_ids: list[strawberry.ID] | None = None,
    ) -> Tweet:
        options = tweets.PostOptions(
            quote_of=quote_of, sensitive=bool(sensitive), spoiler_text=spoiler_text, media_ids=media_ids
        )
        return Tweet.from_doc(await tweets.post_tweet(info.context, text, options))

    @strawberry.mutation
    async def delete_tweet(self, info: Info, id: strawberry.ID) -> bool:
        return await tweets.delete_tweet(info.context, id)

    @strawberry.mutation(
        description="Idempotent: retweeting again returns the same retweet. A retweet of a retweet "
        "retweets the original."
    )
    async def retweet(self, info: Info, tweet_id: strawberry.ID) -> Tweet:
        return Tweet.from_doc(await retweets.retweet(info.context, tweet_id))

    @strawberry.mutation(
        description="Take back the viewer's retweet of the tweet (or of the original a retweet "
        "points at); false when there was none."
    )
    async def undo_retweet(self, info: Info, tweet_id: strawberry.ID) -> bool:
        return await retweets.undo_retweet(info.context, tweet_id)

    @strawberry.mutation(description="Idempotent; liking a retweet likes its original. Returns the tweet.")
    async def like_tweet(self, info: Info, tweet_id: strawberry.ID) -> Tweet:
        return Tweet.from_doc(await likes.like_tweet(info.context, tweet_id))

    @strawberry.mutation(description="Idempotent; returns the tweet.")
    async def unlike_tweet(self, info: Info, tweet_id: strawberry.ID) -> Tweet:
        return Tweet.from_doc(await likes.unlike_tweet(info.context, tweet_id))

    @strawberry.mutation(description="Comment on a tweet (on a retweet: on its original).")
    async def add_comment(self, info: Info, tweet_id: strawberry.ID, text: str) -> Comment:
        return Comment.from_doc(await comments.add_comment(info.context, tweet_id, text))

    @strawberry.mutation(description="The comment's author or the tweet's author may delete a comment.")
    async def delete_comment(self, info: Info, id: strawberry.ID) -> bool:
        return await comments.delete_comment(info.context, id)

    @strawberry.mutation(description="Idempotent; returns the followee.")
    async def follow(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(await follows.follow(info.context, user_id))

    @strawberry.mutation(description="Idempotent; returns the user no longer followed.")
    async def unfollow(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(await follows.unfollow(info.context, user_id))

    @strawberry.mutation(
        description="Idempotent; returns the user. Ends follows both ways; while it stands neither "
        "sees the other and interactions between you are FORBIDDEN."
    )
    async def block(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(
            await relations.set_relation(info.context, RelationKind.BLOCK, user_id, add=True)
        )

    @strawberry.mutation(description="Idempotent; returns the user.")
    async def unblock(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(
            await relations.set_relation(info.context, RelationKind.BLOCK, user_id, add=False)
        )

    @strawberry.mutation(
        description="Idempotent; returns the user. Their tweets, retweets and notifications leave "
        "the viewer's home feed and notifications; they are not told."
    )
    async def mute(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(await relations.set_relation(info.context, RelationKind.MUTE, user_id, add=True))

    @strawberry.mutation(description="Idempotent; returns the user.")
    async def unmute(self, info: Info, user_id: strawberry.ID) -> User:
        return User.from_doc(
            await relations.set_relation(info.context, RelationKind.MUTE, user_id, add=False)
        )

    @strawberry.mutation(
        description="Idempotent; bookmarking a retweet bookmarks its original. Returns the tweet."
    )
    async def bookmark(self, info: Info, tweet_id: strawberry.ID) -> Tweet:
        return Tweet.from_doc(await bookmarks.bookmark(info.context, tweet_id))

    @strawberry.mutation(description="Idempotent; returns the tweet.")
    async def unbookmark(self, info: Info, tweet_id: strawberry.ID) -> Tweet:
        return Tweet.from_doc(await bookmarks.unbookmark(info.context, tweet_id))

    @strawberry.mutation(description="Mark the viewer's notifications read; returns how many were unread.")
    async def mark_notifications_read(self, info: Info) -> int:
        return await notifications.mark_all_read(info.context)

    @strawberry.mutation(
        description="Move the viewer's read marker on a timeline forward; an older ID never moves it back."
    )
    async def update_marker(
        self, info: Info, timeline: MarkerTimeline, last_read_id: strawberry.ID
    ) -> Marker:
        return Marker.from_doc(await notifications.update_marker(info.context, timeline, last_read_id))
