"""Comments on tweets: oldest first, removable by their author or the tweet's author."""

from __future__ import annotations

from starling.resolvers.activity import ActivityKind, record_activity
from starling.resolvers.context import RequestContext
from starling.resolvers.counting import counted_change
from starling.resolvers.engagement import engageable_target
from starling.resolvers.errors import BadUserInput, Forbidden, NotFound
from starling.resolvers.pagination import Page, check_first, find_page
from starling.resolvers.text import clean_text
from starling.store.counters import CounterKind
from starling.store.documents import CommentDoc, utcnow
from starling.store.ids import parse_id
from starling.store.services import Services


async def add_comment(ctx: RequestContext, tweet_id: str, text: str) -> CommentDoc:
    """Comment on a tweet (on a retweet: on its original). Text follows the tweet rules."""
    viewer = await ctx.require_writer()
    services = ctx.services
    text = clean_text(text, services.settings.text_max, "Comment text")
    _, target = await engageable_target(ctx, viewer.user_id, tweet_id)
    comment: CommentDoc = {
        "_id": services.ids.next_id(),
        "tweet_id": target["_id"],
        "author_id": viewer.user_id,
        "text": text,
        "created_at": utcnow(),
    }
    await store_comment(services, comment)
    return comment


async def store_comment(services: Services, comment: CommentDoc) -> None:
    """Insert a comment; durable once MongoDB has it, and the tweet's comment count follows
    (``resolvers.counting``: when Redis is down it catches up at the next recount)."""
    async with counted_change(services, comment["tweet_id"]) as change:
        await services.db.comments.insert_one(comment)
        change.add(CounterKind.COMMENT, 1)
    await record_activity(  # best effort
        services, ActivityKind.COMMENT, comment["author_id"], comment["tweet_id"], comment["_id"]
    )


async def delete_comment(ctx: RequestContext, comment_id: str) -> bool:
    """The comment's author or the tweet's author may delete it; anyone else is
    ``FORBIDDEN``. A comment on a deleted tweet is gone with it (``NOT_FOUND``)."""
    viewer = await ctx.require_viewer()
    services = ctx.services
    try:
        cid = parse_id(comment_id)
    except ValueError:
        raise BadUserInput(f"{comment_id!r} is not a comment ID.") from None
    comment = await services.db.comments.find_one({"_id": cid})
    tweet = await (await ctx.loaders()).tweets.load(comment["tweet_id"]) if comment else None
    if comment is None or tweet is None:
        raise NotFound(f"No comment {comment_id}.")
    if viewer.user_id not in (comment["author_id"], tweet["author_id"]):
        raise Forbidden("Only the comment's author or the tweet's author can delete a comment.")
    await remove_comment(services, comment)
    return True


async def remove_comment(services: Services, comment: CommentDoc) -> bool:
    """Delete a comment; True when it was still there. Redis down: as ``store_comment``."""
    async with counted_change(services, comment["tweet_id"]) as change:
        result = await services.db.comments.delete_one({"_id": comment["_id"]})
        if not result.deleted_count:
            return False
        change.add(CounterKind.COMMENT, -1)
    return True


async def tweet_comments(
    ctx: RequestContext, tweet_id: int, first: int | None, after: str | None
) -> Page[CommentDoc]:
    """The tweet's comments, oldest first, without those of users a block stands between
    with the viewer (``resolvers.relations``)."""
    first = check_first(first, ctx.services.settings.page_size_max)
    page = await find_page(ctx.services.db.comments, {"tweet_id": tweet_id}, first, after, newest_first=False)
    hidden = (await ctx.relations()).hidden_everywhere
    return page.hydrated([None if doc["author_id"] in hidden else doc for doc in page.items])
