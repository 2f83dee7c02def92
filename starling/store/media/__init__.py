"""Object storage for media: the ``MediaStore`` protocol and the store ``MEDIA_STORE`` names.

Two stores answer it: ``local`` (files under ``MEDIA_LOCAL_DIR``, uploaded through
Starling's own endpoint and served by Starling, the default) and ``s3`` (any S3-compatible
bucket, uploaded to by presigned POST and served by ``MEDIA_PUBLIC_BASE_URL``, a CDN).
Both take uploads as the same multipart form: the fields a ``UploadForm`` lists, then the
file, so a client has one upload path for either.

Object keys: ``u/<id>`` is what a client uploaded (unchecked, never served by Starling);
``i/<id>.<ext>`` and ``i/<id>-thumb.<ext>`` are the checked, stripped image and its
thumbnail (``resolvers.media``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from starling.config import Settings


class MediaStoreUnavailable(Exception):
    """The object store did not answer (or failed); the client may retry later. Media
    records are in MongoDB and every object operation is repeatable, so nothing is lost."""


class ObjectTooLarge(Exception):
    """An object is larger than the reader allows."""


@dataclass(frozen=True, slots=True)
class UploadForm:
    """Where and how a client uploads one object: a multipart POST to ``url`` with
    ``fields`` and then the file (field ``file``), accepted until ``expires_at``."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


class MediaStore(Protocol):
    async def upload_form(
        self, media_id: int, key: str, content_type: str, max_bytes: int, expires_at: datetime
    ) -> UploadForm:
        """A form the client uploads ``key`` with: only ``content_type``, 1..``max_bytes``."""
        ...

    async def read(self, key: str, max_bytes: int) -> bytes | None:
        """The object's bytes; None when there is none; ``ObjectTooLarge`` past ``max_bytes``
        (found before the object is read)."""
        ...

    async def write(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, keys: list[str]) -> None:
        """Delete the objects; a missing one is no error."""
        ...

    def public_url(self, key: str) -> str: ...

    async def close(self) -> None: ...


def open_media_store(settings: Settings) -> MediaStore:
    """The store ``MEDIA_STORE`` names, configured from the settings."""
    if settings.media_store == "s3":
        from starling.store.media.s3 import S3MediaStore  # boto3 loads only when used

        return S3MediaStore.from_settings(settings)
    from starling.store.media.local import LocalMediaStore

    return LocalMediaStore.from_settings(settings)
