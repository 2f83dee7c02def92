"""Media: uploads, their check (``finalizeMedia``), alt text, attaching them to tweets, and
deleting their objects when their tweet goes or they were never attached.

**Life of a media item.** ``createMediaUpload`` stores a pending ``media`` document and
answers an upload form (``store.media``); the client uploads to ``u/<id>``.
``finalizeMedia`` reads the object back, checks and re-encodes it (``resolvers.images``),
writes ``i/<id>.<ext>`` and its thumbnail, and marks the document ready. ``postTweet``
claims up to ``MEDIA_PER_TWEET`` ready items of the viewer's and embeds their records in the
tweet (so feeds show media with no extra round trip); from then on they are the tweet's.

**No object is orphaned.** Every object's key is in its document before the object is
written, and a document goes only after its objects. Unattached documents carry
``expires_at``: the expiry cron deletes them once past it (a crash between claiming media
and storing the tweet leaves a claim on a tweet that does not exist, which the cron
releases the same way). Deleting a tweet first marks its media ``delete_pending`` (the
outbox marker), then deletes the tweet, then enqueues the deletion job; the repair cron
re-enqueues the job for markers left behind, and the job deletes objects only of tweets
that are really deleted (a crash before the tweet's deletion just clears the marker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from starling.resolvers.context import RequestContext
from starling.resolvers.errors import BadUserInput, Forbidden, NotFound
from starling.resolvers.images import CONTENT_TYPES, NotAnImage, clean_image
from starling.resolvers.text import clean_text
from starling.store.degrade import best_effort
from starling.store.documents import Document, MediaDoc, MediaRecord, utcnow
from starling.store.ids import parse_id
from starling.store.jobs import DELETE_TWEET_MEDIA
from starling.store.media import ObjectTooLarge, UploadForm
from starling.store.services import Services

log = logging.getLogger(__name__)

MEDIA_PER_TWEET = 4  # the contract's limit (DESIGN.md §5.1)
ALT_TEXT_MAX = 1500  # characters, as Mastodon allows
PENDING, READY = "pending", "ready"
EXPIRY_BATCH = 200
ACCEPTED_TYPES = frozenset(CONTENT_TYPES.values())


@dataclass(frozen=True, slots=True)
class MediaUpload:
    media_id: int
    form: UploadForm


def parse_media_id(value: str) -> int:
    try:
        return parse_id(value)
    except ValueError:
        raise BadUserInput(f"{value!r} is not a media ID.") from None


def clean_alt_text(alt_text: str | None) -> str | None:
    if alt_text is None or not alt_text.strip():
        return None
    return clean_text(alt_text, ALT_TEXT_MAX, "Alt text")


def record_of(doc: MediaDoc) -> MediaRecord:
    """The part of a media document a tweet embeds."""
    return {
        "_id": doc["_id"],
        "key": doc["key"],
        "thumb_key": doc["thumb_key"],
        "content_type": doc["content_type"],
        "width": doc["width"],
        "height": doc["height"],
        "byte_size": doc["byte_size"],
        "alt_text": doc.get("alt_text"),
    }


def object_keys(doc: MediaDoc) -> list[str]:
    return [key for key in (doc.get("upload_key"), doc.get("key"), doc.get("thumb_key")) if key]


async def create_upload(
    ctx: RequestContext, content_type: str, byte_size: int, alt_text: str | None
) -> MediaUpload:
    viewer = await ctx.require_writer()
    services = ctx.services
    settings = services.settings
    if content_type not in ACCEPTED_TYPES:
        raise BadUserInput(f"Media must be one of {', '.join(sorted(ACCEPTED_TYPES))}, not {content_type!r}.")
    if not 1 <= byte_size <= settings.media_max_bytes:
        raise BadUserInput(f"byteSize must be 1..{settings.media_max_bytes:,} bytes, not {byte_size:,}.")
    alt = clean_alt_text(alt_text)
    media_id = services.ids.next_id()
    now = utcnow()
    doc: MediaDoc = {
        "_id": media_id,
        "owner_id": viewer.user_id,
        "status": PENDING,
        "upload_key": f"u/{media_id}",
        "declared_type": content_type,
        "key": "",
        "thumb_key": "",
        "content_type": content_type,
        "width": 0,
        "height": 0,
        "byte_size": 0,
        "alt_text": alt,
        "created_at": now,
        "expires_at": now + timedelta(seconds=settings.media_unattached_seconds),
    }
    await services.db.media.insert_one(doc)
    expires_at = now + timedelta(seconds=settings.media_upload_seconds)
    form = await services.media.upload_form(
        media_id, doc["upload_key"], content_type, settings.media_max_bytes, expires_at
    )
    return MediaUpload(media_id=media_id, form=form)


async def _own_media(ctx: RequestContext, media_id: str) -> tuple[int, MediaDoc]:
    viewer = await ctx.require_writer()
    doc = await ctx.services.db.media.find_one({"_id": parse_media_id(media_id)})
    if doc is None:
        raise NotFound(f"No media {media_id}.")
    if doc["owner_id"] != viewer.user_id:
        raise Forbidden("That media item is someone else's.")
    return viewer.user_id, doc


async def finalize(ctx: RequestContext, media_id: str) -> MediaDoc:
    _, doc = await _own_media(ctx, media_id)
    if doc["status"] == READY:
        return doc  # finalizing twice is harmless
    services = ctx.services
    settings = services.settings
    try:
        data = await services.media.read(doc["upload_key"], settings.media_max_bytes)
    except ObjectTooLarge:
        await services.media.delete([doc["upload_key"]])
        raise BadUserInput(f"The upload is over {settings.media_max_bytes:,} bytes.") from None
    if data is None:
        raise BadUserInput("Nothing was uploaded for this media item yet.")
    try:
        image = await asyncio.to_thread(clean_image, data, doc["declared_type"], settings.media_thumbnail_px)
    except NotAnImage as exc:
        await services.media.delete([doc["upload_key"]])
        raise BadUserInput(str(exc)) from None
    mid = doc["_id"]
    keys = {"key": f"i/{mid}.{image.extension}", "thumb_key": f"i/{mid}-thumb.{image.thumbnail_extension}"}
    # The keys first: an object Starling writes is always named in its document (module doc).
    await services.db.media.update_one({"_id": mid}, {"$set": keys})
    await asyncio.gather(
        services.media.write(keys["key"], image.data, image.content_type),
        services.media.write(keys["thumb_key"], image.thumbnail, image.thumbnail_type),
    )
    ready: Document = {
        **keys,
        "status": READY,
        "content_type": image.content_type,
        "thumb_content_type": image.thumbnail_type,
        "width": image.width,
        "height": image.height,
        "byte_size": len(image.data),
    }
    await services.db.media.update_one({"_id": mid}, {"$set": ready})
    # What the client uploaded is not needed any more (and was never served).
    await services.media.delete([doc["upload_key"]])
    finished: MediaDoc = {**doc, **ready}  # type: ignore[typeddict-item]
    return finished


async def update_alt_text(ctx: RequestContext, media_id: str, alt_text: str | None) -> MediaDoc:
    _, doc = await _own_media(ctx, media_id)
    services = ctx.services
    alt = clean_alt_text(alt_text)
    await services.db.media.update_one({"_id": doc["_id"]}, {"$set": {"alt_text": alt}})
    tweet_id = doc.get("tweet_id")
    if tweet_id is not None:
        # The tweet and its retweets embed the record (and Redis caches it with them).
        retweets = await services.db.tweets.find({"retweet_of": tweet_id}, {"_id": 1}).to_list()
        holders = [tweet_id, *(retweet["_id"] for retweet in retweets)]
        await services.db.tweets.update_many(
            {"_id": {"$in": holders}, "media._id": doc["_id"]}, {"$set": {"media.$.alt_text": alt}}
        )
        await best_effort(
            f"cache refresh of tweet {tweet_id}",
            services.redis.delete(*(services.keys.tweet(holder) for holder in holders)),
        )
    doc["alt_text"] = alt
    return doc


async def attach(
    services: Services, owner_id: int, media_ids: Sequence[str] | None, tweet_id: int
) -> list[MediaRecord]:
    """Claim the media for a tweet about to be stored (``tweet_id``) and return the records it
    embeds: at most ``MEDIA_PER_TWEET``, each the owner's, ready and not attached yet."""
    if not media_ids:
        return []
    if len(media_ids) > MEDIA_PER_TWEET:
        raise BadUserInput(f"A tweet holds at most {MEDIA_PER_TWEET} media items, not {len(media_ids)}.")
    ids = [parse_media_id(value) for value in media_ids]
    if len(set(ids)) != len(ids):
        raise BadUserInput("A media item is listed twice.")
    found = {doc["_id"]: doc for doc in await services.db.media.find({"_id": {"$in": ids}}).to_list()}
    for mid in ids:
        doc = found.get(mid)
        if doc is None:
            raise BadUserInput(f"No media {mid}.")
        if doc["owner_id"] != owner_id:
            raise Forbidden(f"Media {mid} is someone else's.")
        if doc["status"] != READY:
            raise BadUserInput(f"Media {mid} is not finalized (finalizeMedia).")
        if doc.get("tweet_id") is not None:
            raise BadUserInput(f"Media {mid} is attached to another tweet already.")
    # Claimed in one conditional write, so two tweets racing for an item cannot both get it;
    # the expiry moves out of the way of the tweet's insert (``settle`` then clears it).
    grace = utcnow() + timedelta(seconds=services.settings.outbox_repair_after_seconds)
    claimed = await services.db.media.update_many(
        {"_id": {"$in": ids}, "owner_id": owner_id, "status": READY, "tweet_id": None},
        {"$set": {"tweet_id": tweet_id, "expires_at": grace}},
    )
    if claimed.modified_count != len(ids):
        await release(services, tweet_id)
        raise BadUserInput("A media item was attached to another tweet meanwhile.")
    return [record_of(found[mid]) for mid in ids]


async def release(services: Services, tweet_id: int) -> None:
    """Give back the media claimed for a tweet that was never stored (unattached again, they
    expire as if new)."""
    expires_at = utcnow() + timedelta(seconds=services.settings.media_unattached_seconds)
    await services.db.media.update_many(
        {"tweet_id": tweet_id}, {"$unset": {"tweet_id": ""}, "$set": {"expires_at": expires_at}}
    )


async def settle(services: Services, records: list[MediaRecord]) -> None:
    """The tweet holding these media is stored: they no longer expire."""
    if records:
        ids = [record["_id"] for record in records]
        await services.db.media.update_many({"_id": {"$in": ids}}, {"$unset": {"expires_at": ""}})


async def mark_for_deletion(services: Services, tweet_id: int) -> None:
    """Before a tweet with media is deleted: the outbox marker on its media (module doc)."""
    await services.db.media.update_many(
        {"tweet_id": tweet_id}, {"$set": {"delete_pending": True, "delete_marked_at": utcnow()}}
    )


async def request_deletion(services: Services, tweet_id: int) -> None:
    """After the tweet's deletion: its media go by a job (Redis down: by the repair cron)."""
    await best_effort(
        f"deletion of the media of tweet {tweet_id}", DELETE_TWEET_MEDIA.enqueue(services.queue, tweet_id)
    )


async def delete_tweet_media(services: Services, tweet_id: int) -> int:
    """The job: delete the objects, then the documents, of a deleted tweet's media; how many
    items went. A tweet that is not deleted after all keeps them (module doc)."""
    tweet = await services.db.tweets.find_one({"_id": tweet_id}, {"deleted": 1})
    marked = {"tweet_id": tweet_id, "delete_pending": True}
    if tweet is not None and not tweet.get("deleted"):
        await services.db.media.update_many(
            marked, {"$unset": {"delete_pending": "", "delete_marked_at": ""}}
        )
        return 0
    return await _delete_documents(services, await services.db.media.find(marked).to_list())


async def _delete_documents(services: Services, docs: list[MediaDoc]) -> int:
    if not docs:
        return 0
    await services.media.delete([key for doc in docs for key in object_keys(doc)])
    await services.db.media.delete_many({"_id": {"$in": [doc["_id"] for doc in docs]}})
    return len(docs)


async def expire_media(services: Services, now: datetime | None = None) -> int:
    """The expiry cron: delete media never attached past their ``expires_at``, and release
    the claims of tweets that were never stored (module doc); how many items were deleted."""
    expired = await (
        services.db.media.find({"expires_at": {"$lt": now or utcnow()}}).limit(EXPIRY_BATCH).to_list()
    )
    claims = {doc["tweet_id"] for doc in expired if doc.get("tweet_id") is not None}
    if claims:
        tweets = await services.db.tweets.find({"_id": {"$in": list(claims)}}, {"_id": 1}).to_list()
        stored = {tweet["_id"] for tweet in tweets}
        # Stored, but the process stopped before ``settle``; or never stored at all.
        await settle(services, [record_of(doc) for doc in expired if doc.get("tweet_id") in stored])
        for tweet_id in claims - stored:
            await release(services, tweet_id)
    gone = await _delete_documents(services, [doc for doc in expired if doc.get("tweet_id") is None])
    if gone:
        log.info("deleted %d media never attached to a tweet", gone)
    return gone


async def stale_deletions(services: Services, cutoff: datetime) -> list[int]:
    """Tweets whose media deletion was marked before ``cutoff`` and not done yet."""
    docs = (
        await services.db.media.find(
            {"delete_pending": True, "delete_marked_at": {"$lt": cutoff}}, {"tweet_id": 1}
        )
        .limit(EXPIRY_BATCH)
        .to_list()
    )
    return sorted({doc["tweet_id"] for doc in docs})
