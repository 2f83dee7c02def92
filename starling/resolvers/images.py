"""What ``finalizeMedia`` does to an uploaded image's bytes (Pillow): find its real type,
check it, and re-encode it without metadata, with a thumbnail.

The type comes from the bytes, never from what the client declared (which must match).
Re-encoding is how metadata goes: Pillow writes EXIF, XMP and text chunks only when asked,
so the stored image carries no GPS position, camera serial or comment; the EXIF orientation
is applied to the pixels first, so a photo still shows the right way up. The ICC colour
profile is kept (it is not personal, and colours would shift without it). Animated GIF and
WebP keep their frames and timing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

# Pillow format -> MIME type, for the formats Starling accepts.
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
# Thumbnails are stills: a GIF's first frame becomes a PNG.
THUMBNAIL_FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "PNG"}
# More pixels than this (a 50-megapixel photo) is refused before decoding: a small file can
# declare enormous dimensions (a decompression bomb).
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 90
# Frame info an animation needs; every other info key (comments, XMP, EXIF) is dropped.
FRAME_KEYS = ("duration", "transparency", "disposal", "blend")


class NotAnImage(Exception):
    """The bytes are not an acceptable image (or not of the declared type); the message says
    why, for the client."""


@dataclass(frozen=True, slots=True)
class CleanImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes
    thumbnail_type: str
    thumbnail_extension: str


def clean_image(data: bytes, declared_type: str, thumbnail_px: int) -> CleanImage:
    """The image re-encoded without metadata, and its thumbnail; ``NotAnImage`` when the
    bytes are no JPEG, PNG, WebP or GIF, not ``declared_type``, too large or damaged."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return _clean(image, declared_type, thumbnail_px)
        except NotAnImage:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise NotAnImage("The file is not a JPEG, PNG, WebP or GIF image.") from None
        except (OSError, SyntaxError, ValueError, EOFError):  # what Pillow raises on damaged data
            raise NotAnImage("The image is damaged or truncated.") from None


def _clean(image: Image.Image, declared_type: str, thumbnail_px: int) -> CleanImage:
    kind = image.format or ""
    if kind not in CONTENT_TYPES:
        raise NotAnImage("The file is not a JPEG, PNG, WebP or GIF image.")
    if CONTENT_TYPES[kind] != declared_type:
        raise NotAnImage(f"The file is {CONTENT_TYPES[kind]}, not {declared_type} as declared.")
    if image.width * image.height > MAX_PIXELS:
        raise NotAnImage(f"The image has more than {MAX_PIXELS:,} pixels.")
    icc_profile = image.info.get("icc_profile")
    if getattr(image, "n_frames", 1) > 1:
        frames = [_bare(frame) for frame in ImageSequence.Iterator(image)]
    else:
        frames = [_bare(ImageOps.exif_transpose(image))]
    first = frames[0]
    options: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if kind == "JPEG":
        options["quality"] = JPEG_QUALITY
    if len(frames) > 1:
        options.update(
            save_all=True,
            append_images=frames[1:],
            duration=[frame.info.get("duration", 100) for frame in frames],
            loop=image.info.get("loop", 0),
        )
    out = io.BytesIO()
    first.save(out, format=kind, **options)

    thumb = first.copy()
    thumb.thumbnail((thumbnail_px, thumbnail_px))
    thumb_kind = THUMBNAIL_FORMATS[kind]
    if thumb_kind == "JPEG" and thumb.mode not in ("RGB", "L"):
        thumb = thumb.convert("RGB")
    elif thumb.mode == "P":
        thumb = thumb.convert("RGBA")
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, format=thumb_kind)
    return CleanImage(
        data=out.getvalue(),
        content_type=CONTENT_TYPES[kind],
        extension=EXTENSIONS[kind],
        width=first.width,
        height=first.height,
        thumbnail=thumb_out.getvalue(),
        thumbnail_type=CONTENT_TYPES[thumb_kind],
        thumbnail_extension=EXTENSIONS[thumb_kind],
    )


def _bare(frame: Image.Image) -> Image.Image:
    """A copy of the frame with no metadata but what drawing it needs."""
    copy = frame.copy()
    copy.info = {key: frame.info[key] for key in FRAME_KEYS if key in frame.info}
    return copy
