import io

import pytest
from PIL import Image

from bot.images import AttachmentError, check_declared, reference_image


def png(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


def test_a_real_png_becomes_a_reference_image() -> None:
    image = reference_image("cat.png", png(), max_bytes=1_000_000)
    assert image.content_type == "image/png" and image.data == png()


def test_the_bytes_decide_not_the_name() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "JPEG")
    assert reference_image("photo.png", buffer.getvalue(), 1_000_000).content_type == "image/jpeg"


def test_a_pdf_renamed_png_is_refused() -> None:
    with pytest.raises(AttachmentError) as info:
        reference_image("notes.png", b"%PDF-1.7\n" + b"x" * 200, 1_000_000)
    assert info.value.code == "image_undecodable" and "notes.png" in info.value.message


def test_truncated_png_is_refused() -> None:
    with pytest.raises(AttachmentError):
        reference_image("half.png", png(64, 64)[:60], 1_000_000)


def test_size_and_type_are_checked_before_download() -> None:
    with pytest.raises(AttachmentError) as info:
        check_declared("big.png", "image/png", 50 * 1_048_576, 10 * 1_048_576)
    assert info.value.code == "image_too_large" and "50.0 MB" in info.value.message
    with pytest.raises(AttachmentError) as info:
        check_declared("clip.mp4", "video/mp4", 10, 10_000)
    assert info.value.code == "not_an_image"
