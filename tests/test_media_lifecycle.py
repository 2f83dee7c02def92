"""What happens to media objects around the happy path, on the local store (the rules are the
store's callers', the same for S3): the deletion outbox repaired when its job was never
enqueued, a marker left on a tweet that was not deleted after all, unattached uploads
expiring, and the upload endpoint refusing forged, reused or misdirected forms."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from starling.resolvers import media
from starling.store.documents import utcnow
from starling.store.jobs import DELETE_TWEET_MEDIA
from starling.workers.media import repair_media_deletions
from tests.harness import Harness, started
from tests.test_media import CREATE, MAX_BYTES, POST, png, ready_media, send_upload, stored_keys

DELETE = "mutation($id: ID!) { deleteTweet(id: $id) }"


async def objects_present(h: Harness, keys: list[str]) -> list[bool]:
    return [await h.services.media.read(key, MAX_BYTES) is not None for key in keys]


async def test_a_deletion_never_enqueued_is_carried_out_by_the_repair_cron(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(redis_url, run_worker_in_process=False, media_max_bytes=MAX_BYTES) as h:
        alice = await h.api.sign_up("alice")
        item = await ready_media(h, alice, png(50, 50), "image/png")
        keys = await stored_keys(h, item["id"])
        tweet = (await h.api.gql(POST, {"text": "t", "media": [item["id"]]}, token=alice.token))["postTweet"]
        await h.run_worker()

        enqueue_job = h.services.queue.enqueue_job

        async def media_job_unreachable(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == DELETE_TWEET_MEDIA.name:
                raise RedisConnectionError("Redis is briefly down")
            return await enqueue_job(name, *args, **kwargs)

        monkeypatch.setattr(h.services.queue, "enqueue_job", media_job_unreachable)
        assert await h.api.gql(DELETE, {"id": tweet["id"]}, token=alice.token) == {"deleteTweet": True}
        monkeypatch.undo()
        await h.run_worker()
        assert await objects_present(h, keys) == [True, True]  # the job was never enqueued

        await asyncio.sleep(h.settings.outbox_repair_after_seconds + 0.1)
        await h.run_worker(crons=True)
        assert await objects_present(h, keys) == [False, False]
        assert await h.services.db.media.count_documents({}) == 0
        assert await repair_media_deletions({"services": h.services}) == 0


async def test_a_marker_on_a_tweet_that_was_not_deleted_keeps_its_media(redis_url: str) -> None:
    async with started(redis_url, run_worker_in_process=False, media_max_bytes=MAX_BYTES) as h:
        alice = await h.api.sign_up("alice")
        item = await ready_media(h, alice, png(50, 50), "image/png")
        keys = await stored_keys(h, item["id"])
        tweet = (await h.api.gql(POST, {"text": "t", "media": [item["id"]]}, token=alice.token))["postTweet"]
        # The process died between marking the media and deleting the tweet.
        await media.mark_for_deletion(h.services, int(tweet["id"]))
        assert await media.delete_tweet_media(h.services, int(tweet["id"])) == 0
        assert await objects_present(h, keys) == [True, True]
        assert await h.services.db.media.count_documents({"delete_pending": True}) == 0


async def test_unattached_media_expire_and_attached_ones_do_not(redis_url: str) -> None:
    async with started(redis_url, media_max_bytes=MAX_BYTES) as h:
        alice = await h.api.sign_up("alice")
        unattached = await ready_media(h, alice, png(40, 40), "image/png")
        attached = await ready_media(h, alice, png(41, 41), "image/png")
        await h.api.gql(POST, {"text": "t", "media": [attached["id"]]}, token=alice.token)
        unattached_keys = await stored_keys(h, unattached["id"])
        attached_keys = await stored_keys(h, attached["id"])

        assert await media.expire_media(h.services) == 0  # nothing is due yet
        later = utcnow() + timedelta(seconds=h.settings.media_unattached_seconds + 1)
        assert await media.expire_media(h.services, now=later) == 1
        assert await objects_present(h, unattached_keys) == [False, False]
        assert await objects_present(h, attached_keys) == [True, True]
        assert await h.services.db.media.find_one({"_id": int(unattached["id"])}) is None


async def test_a_claim_for_a_tweet_never_stored_is_released(redis_url: str) -> None:
    async with started(redis_url, media_max_bytes=MAX_BYTES) as h:
        alice = await h.api.sign_up("alice")
        item = await ready_media(h, alice, png(40, 40), "image/png")
        owner = int(alice.id)
        # Claimed for a tweet, then the process died before the tweet's insert.
        await media.attach(h.services, owner, [item["id"]], h.services.ids.next_id())
        later = utcnow() + timedelta(seconds=h.settings.outbox_repair_after_seconds + 1)
        assert await media.expire_media(h.services, now=later) == 0
        tweet = await h.api.gql(POST, {"text": "after all", "media": [item["id"]]}, token=alice.token)
        assert tweet["postTweet"]["id"]


async def test_the_upload_endpoint_refuses_forged_reused_and_misdirected_forms(redis_url: str) -> None:
    async with started(redis_url, media_max_bytes=MAX_BYTES) as h:
        alice = await h.api.sign_up("alice")
        data = png(20, 20)

        async def new_form() -> dict[str, Any]:
            created = await h.api.gql(CREATE, {"type": "image/png", "size": len(data)}, token=alice.token)
            form: dict[str, Any] = created["createMediaUpload"]
            return form

        form = await new_form()
        forged = {**form["uploadFields"], "signature": "0" * 64}
        assert await send_upload(h, form["uploadUrl"], forged, data, "image/png") == 403
        other_type = {**form["uploadFields"], "Content-Type": "image/gif"}
        assert await send_upload(h, form["uploadUrl"], other_type, data, "image/png") == 403
        other = await new_form()
        assert await send_upload(h, other["uploadUrl"], form["uploadFields"], data, "image/png") == 403

        assert await send_upload(h, form["uploadUrl"], form["uploadFields"], data, "image/png") == 204
        assert await send_upload(h, form["uploadUrl"], form["uploadFields"], data, "image/png") == 409
        no_file = await h.api.http.post(form["uploadUrl"], data=form["uploadFields"])
        assert no_file.status_code == 400 and no_file.json()["errors"][0]["extensions"]["code"]
        # What was uploaded is never served, checked or not.
        assert (await h.api.http.get(f"/media/u/{form['mediaId']}")).status_code == 404
        assert (await h.api.http.get(f"/media/i/{form['mediaId']}.png")).status_code == 404
        # Once finalized, the item takes no more uploads (the form is still unexpired).
        await h.api.gql(
            "mutation($id: ID!) { finalizeMedia(mediaId: $id) { id } }",
            {"id": form["mediaId"]},
            token=alice.token,
        )
        assert await send_upload(h, form["uploadUrl"], form["uploadFields"], data, "image/png") == 409
        assert await h.services.media.read(f"u/{form['mediaId']}", MAX_BYTES) is None
