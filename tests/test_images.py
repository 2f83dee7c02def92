"""What finalizeMedia does to the bytes (``resolvers.images``), format by format: metadata
gone, pixels and animation kept, orientation applied, damaged or disguised files refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from starling.resolvers.images import NotAnImage, clean_image

THUMBNAIL_PX = 64
EXIF_ORIENTATION = 0x0112
ROTATED_90 = 6  # "rotate 90° clockwise to display"


def encoded(image: Image.Image, kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=kind, **options)
    return out.getvalue()


def test_png_text_chunks_are_dropped_and_pixels_kept() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home address: 1 Secret Lane")
    image = Image.new("RGB", (120, 90), (10, 200, 30))
    cleaned = clean_image(encoded(image, "PNG", pnginfo=info), "image/png", THUMBNAIL_PX)
    assert b"Secret Lane" not in cleaned.data
    with Image.open(io.BytesIO(cleaned.data)) as stored:
        assert stored.size == (120, 90) and stored.getpixel((5, 5)) == (10, 200, 30)
    with Image.open(io.BytesIO(cleaned.thumbnail)) as thumb:
        assert thumb.size == (64, 48)


def test_exif_orientation_is_applied_before_exif_goes() -> None:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATED_90
    photo = encoded(Image.new("RGB", (200, 100), (1, 2, 3)), "JPEG", exif=exif.tobytes())
    cleaned = clean_image(photo, "image/jpeg", THUMBNAIL_PX)
    assert (cleaned.width, cleaned.height) == (100, 200)  # shown upright
    with Image.open(io.BytesIO(cleaned.data)) as stored:
        assert EXIF_ORIENTATION not in stored.getexif()


def test_an_animated_gif_keeps_its_frames_and_gets_a_still_thumbnail() -> None:
    frames = [Image.new("RGB", (40, 40), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    gif = encoded(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0, comment=b"hi"
    )
    with Image.open(io.BytesIO(gif)) as original:
        assert original.n_frames == 3 and original.info["comment"] == b"hi"
    cleaned = clean_image(gif, "image/gif", THUMBNAIL_PX)
    with Image.open(io.BytesIO(cleaned.data)) as stored:
        assert stored.n_frames == 3
        assert "comment" not in stored.info
    assert cleaned.thumbnail_type == "image/png"


def test_webp_is_accepted() -> None:
    cleaned = clean_image(encoded(Image.new("RGB", (30, 20)), "WEBP"), "image/webp", THUMBNAIL_PX)
    assert (cleaned.content_type, cleaned.width, cleaned.height) == ("image/webp", 30, 20)


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (encoded(Image.new("RGB", (8, 8)), "PNG"), "image/jpeg"),  # disguised
        (encoded(Image.new("RGB", (8, 8)), "BMP"), "image/png"),  # not an accepted format
        (encoded(Image.new("RGB", (64, 64)), "PNG")[:60], "image/png"),  # truncated
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png"),
        (b"", "image/png"),
    ],
)
def test_what_is_refused(data: bytes, declared: str) -> None:
    with pytest.raises(NotAnImage):
        clean_image(data, declared, THUMBNAIL_PX)
