"""Media types and mutations (DESIGN.md §5.1). ``Tweet.media`` (``schema.types``) shows the
records a tweet embeds; the URLs come from the media store (``MEDIA_PUBLIC_BASE_URL``)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from starling.resolvers import media
from starling.resolvers.context import RequestContext
from starling.store.documents import MediaRecord
from starling.store.media import MediaStore

Info = strawberry.Info[RequestContext, None]


@strawberry.type(description="An image attached to a tweet (or uploaded, to be attached).")
class Media:
    id: strawberry.ID
    url: str
    thumbnail_url: str = strawberry.field(
        description="A still at most MEDIA_THUMBNAIL_PX (400) on its longer side."
    )
    content_type: str
    width: int
    height: int
    byte_size: int = strawberry.field(description="Of the stored image (metadata stripped).")
    alt_text: str | None

    @classmethod
    def from_record(cls, record: MediaRecord, store: MediaStore) -> Media:
        return cls(
            id=strawberry.ID(str(record["_id"])),
            url=store.public_url(record["key"]) if record["key"] else "",
            thumbnail_url=store.public_url(record["thumb_key"]) if record["thumb_key"] else "",
            content_type=record["content_type"],
            width=record["width"],
            height=record["height"],
            byte_size=record["byte_size"],
            alt_text=record.get("alt_text"),
        )


def media_of(info: Info, records: list[MediaRecord]) -> list[Media]:
    store = info.context.services.media
    return [Media.from_record(record, store) for record in records]


@strawberry.type(
    description="Where to upload a media item: a multipart POST to uploadUrl with every field of "
    "uploadFields, then the file as the last field (`file`), before expiresAt; then finalizeMedia."
)
class MediaUpload:
    media_id: strawberry.ID
    upload_url: str
    upload_fields: JSON
    expires_at: datetime


@strawberry.type
class MediaMutation:
    @strawberry.mutation(
        description="Start an upload of an image (image/jpeg, image/png, image/webp or image/gif, at "
        "most MEDIA_MAX_BYTES). Unattached media expire after MEDIA_UNATTACHED_SECONDS."
    )
    async def create_media_upload(
        self, info: Info, content_type: str, byte_size: int, alt_text: str | None = None
    ) -> MediaUpload:
        upload = await media.create_upload(info.context, content_type, byte_size, alt_text)
        return MediaUpload(
            media_id=strawberry.ID(str(upload.media_id)),
            upload_url=upload.form.url,
            upload_fields=JSON(upload.form.fields),
            expires_at=upload.form.expires_at,
        )

    @strawberry.mutation(
        description="Check the uploaded file (its real type must be the declared one), strip its "
        "metadata (EXIF, GPS), make its thumbnail. A bad file is refused (BAD_USER_INPUT) and deleted."
    )
    async def finalize_media(self, info: Info, media_id: strawberry.ID) -> Media:
        doc = await media.finalize(info.context, media_id)
        return Media.from_record(media.record_of(doc), info.context.services.media)

    @strawberry.mutation(
        description="Set or clear (null or blank) a media item's alt text; the uploader's only."
    )
    async def update_media_alt_text(
        self, info: Info, media_id: strawberry.ID, alt_text: str | None = None
    ) -> Media:
        doc = await media.update_alt_text(info.context, media_id, alt_text)
        return Media.from_record(media.record_of(doc), info.context.services.media)
