"""Media over HTTP, as a client does it, on both stores: the local one (Starling's upload
endpoint and its served folder) and S3 against a real S3-compatible server (moto's server
mode on a loopback port, reached through boto3 and plain HTTP, not a mock object).

Upload to the returned URL with the returned fields, finalize, post, read the feed of a
follower and fetch both URLs; the refusals (wrong type, too large, a fifth item, someone
else's media); GPS EXIF gone from the stored JPEG; deleting the tweet deletes its objects.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import piexif
import pytest
from moto.server import ThreadedMotoServer
from PIL import Image

from starling.store.media import MediaStore
from starling.store.monitoring import count_round_trips
from tests.api import Account, eventually
from tests.harness import Harness, started
from tests.live import free_port

MAX_BYTES = 200_000  # small, so a too-large file is quick to make
BUCKET = "starling-media-test"
PUBLIC_IMAGES_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}/i/*",
            }
        ],
    }
)

CREATE = """
mutation($type: String!, $size: Int!, $alt: String) {
  createMediaUpload(contentType: $type, byteSize: $size, altText: $alt) {
    mediaId uploadUrl uploadFields expiresAt
  }
}"""
FINALIZE = (
    "mutation($id: ID!) { finalizeMedia(mediaId: $id) { id url thumbnailUrl width height contentType } }"
)
POST = "mutation($text: String!, $media: [ID!]) { postTweet(text: $text, mediaIds: $media) { id } }"
MEDIA_FIELDS = "media { id url thumbnailUrl width height contentType byteSize altText }"
FEED = f"{{ homeFeed(first: 20) {{ edges {{ node {{ id text {MEDIA_FIELDS} }} }} }} }}"


def png(width: int = 640, height: int = 480) -> bytes:
    image = Image.new("RGB", (width, height), (30, 120, 200))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def noisy_png(side: int) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    image = Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    gps = {
        piexif.GPSIFD.GPSLatitudeRef: b"N",
        piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (2400, 100)),
        piexif.GPSIFD.GPSLongitudeRef: b"E",
        piexif.GPSIFD.GPSLongitude: ((2, 1), (21, 1), (300, 100)),
    }
    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"SecretCam"}, "GPS": gps})
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 50, 50)).save(out, format="JPEG", exif=exif)
    return out.getvalue()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
async def harness(
    request: pytest.FixtureRequest, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    overrides: dict[str, Any] = {"media_max_bytes": MAX_BYTES}
    if request.param == "local":
        overrides.update(media_store="local", media_local_dir=tmp_path / "media")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        if BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
            s3.create_bucket(Bucket=BUCKET)
            # What a deployment does (or lets its CDN do): checked images readable by anyone,
            # uploads not.
            s3.put_bucket_policy(Bucket=BUCKET, Policy=PUBLIC_IMAGES_POLICY)
        overrides.update(media_store="s3", media_s3_endpoint=endpoint, media_s3_bucket=BUCKET)
    async with started(redis_url, **overrides) as h:
        yield h


def _client(h: Harness, url: str) -> httpx.AsyncClient:
    """Starling's own URLs go to the app under test; the others (the S3 server) over the network."""
    return h.api.http if url.startswith(h.settings.public_url) else httpx.AsyncClient()


async def send_upload(h: Harness, url: str, fields: dict[str, str], data: bytes, content_type: str) -> int:
    client = _client(h, url)
    response = await client.post(url, data=fields, files={"file": ("upload", data, content_type)})
    if client is not h.api.http:
        await client.aclose()
    return response.status_code


async def fetch(h: Harness, url: str) -> httpx.Response:
    client = _client(h, url)
    response = await client.get(url)
    if client is not h.api.http:
        await client.aclose()
    return response


async def upload(
    h: Harness,
    who: Account,
    data: bytes,
    content_type: str,
    *,
    declared: str | None = None,
    alt: str | None = None,
) -> tuple[str, int]:
    """Create an upload and send the file: the media ID and the upload's HTTP status."""
    created = (
        await h.api.gql(
            CREATE, {"type": declared or content_type, "size": len(data), "alt": alt}, token=who.token
        )
    )["createMediaUpload"]
    status = await send_upload(
        h, created["uploadUrl"], created["uploadFields"], data, declared or content_type
    )
    return created["mediaId"], status


async def ready_media(
    h: Harness, who: Account, data: bytes, content_type: str, alt: str | None = None
) -> dict[str, Any]:
    media_id, status = await upload(h, who, data, content_type, alt=alt)
    assert status in (200, 201, 204), status
    return (await h.api.gql(FINALIZE, {"id": media_id}, token=who.token))["finalizeMedia"]


def store_of(h: Harness) -> MediaStore:
    return h.services.media


async def stored_keys(h: Harness, media_id: str) -> list[str]:
    doc = await h.services.db.media.find_one({"_id": int(media_id)})
    assert doc is not None
    return [doc["key"], doc["thumb_key"]]


async def test_upload_finalize_post_and_see_it_in_a_followers_feed(harness: Harness) -> None:
    h = harness
    alice, bob = await h.api.sign_up("alice"), await h.api.sign_up("bob")
    await h.api.follow(bob, alice)
    image = png(640, 480)
    media = await ready_media(h, alice, image, "image/png", alt="A blue rectangle")
    assert (media["width"], media["height"], media["contentType"]) == (640, 480, "image/png")
    tweet = (await h.api.gql(POST, {"text": "look", "media": [media["id"]]}, token=alice.token))["postTweet"]

    async def in_feed() -> bool:
        edges = (await h.api.gql(FEED, token=bob.token))["homeFeed"]["edges"]
        return any(edge["node"]["id"] == tweet["id"] for edge in edges)

    await eventually(in_feed)
    edges = (await h.api.gql(FEED, token=bob.token))["homeFeed"]["edges"]
    [shown] = [edge["node"]["media"] for edge in edges if edge["node"]["id"] == tweet["id"]]
    [item] = shown
    assert item["id"] == media["id"]
    assert (item["width"], item["height"], item["contentType"]) == (640, 480, "image/png")
    assert item["altText"] == "A blue rectangle"

    original = await fetch(h, item["url"])
    assert original.status_code == 200
    assert len(original.content) == item["byteSize"]
    with Image.open(io.BytesIO(original.content)) as stored:
        assert (stored.format, stored.size) == ("PNG", (640, 480))
    thumbnail = await fetch(h, item["thumbnailUrl"])
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as thumb:
        assert thumb.format == "PNG" and max(thumb.size) == h.settings.media_thumbnail_px
    assert thumbnail.headers["content-type"] == "image/png"

    # Media are embedded in the tweet (and its cache blob): selecting them costs the feed page
    # no round trip to MongoDB or Redis.
    plain = "{ homeFeed(first: 20) { edges { node { id text } } } }"
    with count_round_trips() as without_media:
        await h.api.gql(plain, token=bob.token)
    with count_round_trips() as with_media:
        await h.api.gql(FEED, token=bob.token)
    assert (with_media.mongo, with_media.redis) == (without_media.mongo, without_media.redis)

    # The cached tweet (a second read) shows the same media, and alt text can change.
    await h.api.gql(
        'mutation($id: ID!) { updateMediaAltText(mediaId: $id, altText: "Blue") { altText } }',
        {"id": media["id"]},
        token=alice.token,
    )
    edges = (await h.api.gql(FEED, token=bob.token))["homeFeed"]["edges"]
    assert [edge["node"]["media"][0]["altText"] for edge in edges if edge["node"]["media"]] == ["Blue"]


async def test_refusals(harness: Harness) -> None:
    h = harness
    alice, mallory = await h.api.sign_up("alice"), await h.api.sign_up("mallory")

    # Bytes that are not the declared type: refused at finalize, and the upload deleted.
    media_id, status = await upload(h, alice, png(), "image/png", declared="image/jpeg")
    assert status in (200, 201, 204)
    assert await h.api.error_codes(FINALIZE, {"id": media_id}, token=alice.token) == ["BAD_USER_INPUT"]
    assert await store_of(h).read(f"u/{media_id}", MAX_BYTES) is None
    not_an_image, _ = await upload(h, alice, b"GIF89a but not really", "image/gif")
    assert await h.api.error_codes(FINALIZE, {"id": not_an_image}, token=alice.token) == ["BAD_USER_INPUT"]

    # Over the size limit: declared, or sent anyway (the store refuses or finalize does).
    too_big = noisy_png(300)
    assert len(too_big) > MAX_BYTES
    assert await h.api.error_codes(
        CREATE, {"type": "image/png", "size": len(too_big)}, token=alice.token
    ) == ["BAD_USER_INPUT"]
    created = (await h.api.gql(CREATE, {"type": "image/png", "size": 1000}, token=alice.token))[
        "createMediaUpload"
    ]
    status = await send_upload(h, created["uploadUrl"], created["uploadFields"], too_big, "image/png")
    if h.settings.media_store == "local":
        assert status == 413
    assert await h.api.error_codes(FINALIZE, {"id": created["mediaId"]}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]
    assert await store_of(h).read(f"u/{created['mediaId']}", 10 * MAX_BYTES) is None

    # Unsupported types, and someone else's media.
    assert await h.api.error_codes(CREATE, {"type": "image/svg+xml", "size": 10}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]
    theirs = await ready_media(h, mallory, png(32, 32), "image/png")
    assert await h.api.error_codes(POST, {"text": "mine", "media": [theirs["id"]]}, token=alice.token) == [
        "FORBIDDEN"
    ]
    assert await h.api.error_codes(FINALIZE, {"id": theirs["id"]}, token=alice.token) == ["FORBIDDEN"]

    # A fifth item, an unknown one, an unfinalized one.
    mine = [(await ready_media(h, alice, png(16 + n, 16), "image/png"))["id"] for n in range(5)]
    assert await h.api.error_codes(POST, {"text": "five", "media": mine}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]
    assert await h.api.error_codes(POST, {"text": "x", "media": ["12345"]}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]
    pending, _ = await upload(h, alice, png(), "image/png")
    assert await h.api.error_codes(POST, {"text": "x", "media": [pending]}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]
    # Four are fine; attached ones cannot go on a second tweet.
    await h.api.gql(POST, {"text": "four", "media": mine[:4]}, token=alice.token)
    assert await h.api.error_codes(POST, {"text": "again", "media": mine[:1]}, token=alice.token) == [
        "BAD_USER_INPUT"
    ]


async def test_gps_exif_is_gone_from_the_stored_jpeg(harness: Harness) -> None:
    h = harness
    alice = await h.api.sign_up("alice")
    original = jpeg_with_gps()
    assert piexif.load(original)["GPS"]  # the test image does carry a position
    media = await ready_media(h, alice, original, "image/jpeg")
    stored = (await fetch(h, media["url"])).content
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and image.size == (300, 200)
        assert "exif" not in image.info
        assert not image.getexif()
    assert b"SecretCam" not in stored


async def test_deleting_the_tweet_deletes_its_objects(harness: Harness) -> None:
    h = harness
    alice = await h.api.sign_up("alice")
    media = await ready_media(h, alice, png(100, 80), "image/png")
    keys = await stored_keys(h, media["id"])
    assert all([await store_of(h).read(key, MAX_BYTES) for key in keys])
    tweet = (await h.api.gql(POST, {"text": "soon gone", "media": [media["id"]]}, token=alice.token))[
        "postTweet"
    ]
    assert await h.api.gql(
        "mutation($id: ID!) { deleteTweet(id: $id) }", {"id": tweet["id"]}, token=alice.token
    )

    async def objects_gone() -> bool:
        return all([await store_of(h).read(key, MAX_BYTES) is None for key in keys])

    await eventually(objects_gone)
    assert (await fetch(h, media["url"])).status_code in (403, 404)
    await eventually(lambda: _no_media_docs(h))


async def _no_media_docs(h: Harness) -> bool:
    return await h.services.db.media.count_documents({}) == 0


async def test_an_unreachable_s3_store_is_an_outage_not_a_crash(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finalizing while the bucket does not answer: a coded, retryable error (the media item
    stays pending, nothing is lost); creating an upload needs no call to the store."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    closed = f"http://127.0.0.1:{free_port()}"
    async with started(redis_url, media_store="s3", media_s3_endpoint=closed, media_s3_bucket=BUCKET) as h:
        alice = await h.api.sign_up("alice")
        created = (await h.api.gql(CREATE, {"type": "image/png", "size": 100}, token=alice.token))[
            "createMediaUpload"
        ]
        assert created["uploadUrl"].startswith(closed)
        body = await h.api.raw(FINALIZE, {"id": created["mediaId"]}, token=alice.token)
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert "try again" in error["message"]
        doc = await h.services.db.media.find_one({"_id": int(created["mediaId"])})
        assert doc is not None and doc["status"] == "pending"
