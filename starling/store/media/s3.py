"""The S3 media store: any S3-compatible bucket through boto3, its blocking calls in a thread.

Clients upload straight to the bucket with a presigned POST whose policy pins the key, the
``Content-Type`` and the size range, so no image body passes through the API servers.
Objects are read back from ``MEDIA_PUBLIC_BASE_URL`` (a CDN in front of the bucket) or, unset,
the bucket's own URL. Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, profiles, instance roles).

Finalizing deletes ``u/<id>``, but a presigned POST stays usable until it expires, so a
client could upload there again: a bucket lifecycle rule expiring ``u/`` after a day
reclaims such objects (README).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from starling.config import Settings
from starling.store.media import MediaStoreUnavailable, ObjectTooLarge, UploadForm

MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys
CACHE_CONTROL = "public, max-age=31536000, immutable"  # a key's bytes never change
# A request in a GraphQL mutation: fail in seconds rather than hold the request for boto's
# default minute of retries.
CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 20
MAX_ATTEMPTS = 3

T = TypeVar("T")


async def _call(function: Callable[..., T], /, **arguments: Any) -> T:
    """A blocking boto3 call in a thread; its failures as ``MediaStoreUnavailable``."""
    try:
        return await asyncio.to_thread(functools.partial(function, **arguments))
    except (BotoCoreError, ClientError) as exc:
        raise MediaStoreUnavailable(f"the S3 media store failed: {exc}") from exc


class S3MediaStore:
    def __init__(self, client: Any, bucket: str, public_base_url: str) -> None:
        self._client = client
        self._bucket = bucket
        self._public_base_url = public_base_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> S3MediaStore:
        endpoint = settings.media_s3_endpoint
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=settings.media_s3_region,
            # S3-compatible servers (MinIO, moto, Ceph) mostly want path-style addresses.
            config=Config(
                s3={"addressing_style": "path" if endpoint else "auto"},
                signature_version="s3v4",
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                read_timeout=READ_TIMEOUT_SECONDS,
                retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            ),
        )
        bucket = settings.media_s3_bucket or ""
        default_base = (
            f"{endpoint.rstrip('/')}/{bucket}"
            if endpoint
            else f"https://{bucket}.s3.{settings.media_s3_region}.amazonaws.com"
        )
        return cls(client, bucket, settings.media_public_base_url or default_base)

    async def upload_form(
        self, media_id: int, key: str, content_type: str, max_bytes: int, expires_at: datetime
    ) -> UploadForm:
        seconds = max(1, int((expires_at - datetime.now(UTC)).total_seconds()))
        post = await _call(
            self._client.generate_presigned_post,
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=seconds,
        )
        return UploadForm(url=post["url"], fields=dict(post["fields"]), expires_at=expires_at)

    async def read(self, key: str, max_bytes: int) -> bytes | None:
        return await _call(self._read, key=key, max_bytes=max_bytes)

    def _read(self, key: str, max_bytes: int) -> bytes | None:
        try:
            head = self._client.head_object(Bucket=self._bucket, Key=key)
            if head["ContentLength"] > max_bytes:
                raise ObjectTooLarge(f"the object is over {max_bytes:,} bytes")
            body: bytes = self._client.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in MISSING_CODES:
                return None
            raise
        return body

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        await _call(
            self._client.put_object,
            Bucket=self._bucket,
            Key=key,
            Body=data,
            ContentType=content_type,
            CacheControl=CACHE_CONTROL,
        )

    async def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), DELETE_BATCH):
            objects = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
            await _call(
                self._client.delete_objects, Bucket=self._bucket, Delete={"Objects": objects, "Quiet": True}
            )

    def public_url(self, key: str) -> str:
        return f"{self._public_base_url}/{key}"

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
