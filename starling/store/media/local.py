"""The embedded media store: files in a folder, uploaded and served through Starling.

An upload form carries a policy (what may be uploaded: the key, its type, its largest size,
until when) and its HMAC under a key derived from ``TOKEN_SECRET``, the way an S3 presigned
POST carries its signed policy; the endpoint (``starling.media_routes``) checks both before
it writes a byte. The token is single-use: the upload is created exclusively, so a second
POST of the same form finds the object there and is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import orjson

from starling.config import Settings
from starling.store.media import MediaStoreUnavailable, ObjectTooLarge, UploadForm

SIGNING_CONTEXT = b"starling media upload v1"
COPY_CHUNK_BYTES = 64 * 1024
UPLOAD_ROUTE = "/media/upload"
SERVED_ROUTE = "/media"
SERVED_PREFIX = "i/"  # only checked images are served; uploads (``u/``) never are


def local_media_dir(settings: Settings) -> Path:
    return settings.media_local_dir or settings.starling_data_dir / "media"


class InvalidUpload(Exception):
    """An upload form that was not issued by this store, is expired or was altered."""


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """What a verified upload form allows."""

    key: str
    content_type: str
    max_bytes: int


class LocalMediaStore:
    def __init__(self, root: Path, secret: str, public_base_url: str, upload_base_url: str) -> None:
        self.root = root
        self._key = hmac.new(secret.encode(), SIGNING_CONTEXT, hashlib.sha256).digest()
        self._public_base_url = public_base_url.rstrip("/")
        self._upload_base_url = upload_base_url.rstrip("/")
        (root / SERVED_PREFIX).mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalMediaStore:
        return cls(
            local_media_dir(settings),
            settings.token_secret or "",
            settings.media_public_base_url or settings.public_url + SERVED_ROUTE,
            settings.public_url + UPLOAD_ROUTE,
        )

    def _path(self, key: str) -> Path:
        # Keys are made by Starling (``u/<id>``, ``i/<id>.png``), never by a client; the
        # check keeps a forged one inside the folder all the same.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"media key {key!r} leaves the media folder")
        return path

    def _sign(self, policy: str) -> str:
        return hmac.new(self._key, policy.encode(), hashlib.sha256).hexdigest()

    async def upload_form(
        self, media_id: int, key: str, content_type: str, max_bytes: int, expires_at: datetime
    ) -> UploadForm:
        policy = base64.urlsafe_b64encode(
            orjson.dumps({"key": key, "type": content_type, "max": max_bytes, "exp": expires_at.timestamp()})
        ).decode()
        fields = {"key": key, "Content-Type": content_type, "policy": policy, "signature": self._sign(policy)}
        return UploadForm(url=f"{self._upload_base_url}/{media_id}", fields=fields, expires_at=expires_at)

    def verify(self, fields: dict[str, str]) -> UploadGrant:
        """What the form fields allow; ``InvalidUpload`` unless this store signed them and
        they are unexpired and unaltered."""
        policy, signature = fields.get("policy", ""), fields.get("signature", "")
        if not hmac.compare_digest(self._sign(policy), signature):
            raise InvalidUpload("The upload form's signature does not match.")
        try:
            terms = orjson.loads(base64.urlsafe_b64decode(policy))
        except ValueError:
            raise InvalidUpload("The upload form's policy is unreadable.") from None
        if terms["exp"] < datetime.now(UTC).timestamp():
            raise InvalidUpload("The upload form has expired.")
        if fields.get("key") != terms["key"] or fields.get("Content-Type") != terms["type"]:
            raise InvalidUpload("The upload form's fields do not match its policy.")
        return UploadGrant(key=terms["key"], content_type=terms["type"], max_bytes=terms["max"])

    async def accept(self, grant: UploadGrant, source: BinaryIO) -> None:
        """Store an upload (once: ``FileExistsError`` if it is there already), at most
        ``grant.max_bytes`` (``ObjectTooLarge``, and nothing kept)."""
        await asyncio.to_thread(self._copy_bounded, self._path(grant.key), source, grant.max_bytes)

    @staticmethod
    def _copy_bounded(path: Path, source: BinaryIO, max_bytes: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with path.open("xb") as target:
            try:
                while chunk := source.read(COPY_CHUNK_BYTES):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ObjectTooLarge(f"the upload is over {max_bytes:,} bytes")
                    target.write(chunk)
            except BaseException:
                target.close()
                path.unlink(missing_ok=True)
                raise

    async def read(self, key: str, max_bytes: int) -> bytes | None:
        return await asyncio.to_thread(self._read, self._path(key), max_bytes)

    @staticmethod
    def _read(path: Path, max_bytes: int) -> bytes | None:
        try:
            if path.stat().st_size > max_bytes:
                raise ObjectTooLarge(f"the object is over {max_bytes:,} bytes")
            return path.read_bytes()
        except FileNotFoundError:
            return None

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(self._write, self._path(key), data)
        except OSError as exc:  # a full or read-only disk: an outage, not a bad request
            raise MediaStoreUnavailable(f"the local media store failed: {exc}") from exc

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Written beside and renamed: a reader never sees half a file.
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    async def delete(self, keys: list[str]) -> None:
        for key in keys:
            self._path(key).unlink(missing_ok=True)

    def public_url(self, key: str) -> str:
        return f"{self._public_base_url}/{key}"

    async def close(self) -> None:
        return None
