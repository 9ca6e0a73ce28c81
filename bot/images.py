"""Reference images: checked before anything is spent.

Discord reports whatever content type the uploader's client guessed, and a renamed PDF
is still a PDF, so the bytes are decoded with Pillow and the real format decides.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from bot.relay.models import ImageInput, InvalidRequest

_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
MAX_PIXELS = 40_000_000


class AttachmentError(InvalidRequest):
    """An attachment can't be used as a reference image; `name` is the file's name."""

    def __init__(self, code: str, message: str, name: str, **params: object) -> None:
        super().__init__(code, message, name=name, **params)
        self.name = name


def check_declared(name: str, content_type: str | None, size: int, max_bytes: int) -> None:
    """Reject from metadata alone, before downloading: wrong kind or too big."""
    if content_type and not content_type.startswith("image/"):
        raise AttachmentError(
            "not_an_image", f"{name} is not an image; attach a PNG, JPEG or WebP.", name
        )
    if size > max_bytes:
        raise AttachmentError(
            "image_too_large",
            f"{name} is {size / 1_048_576:.1f} MB; images must be under "
            f"{max_bytes / 1_048_576:.0f} MB.",
            name,
            limit_mb=round(max_bytes / 1_048_576),
        )


def reference_image(name: str, data: bytes, max_bytes: int) -> ImageInput:
    """Decode `data` and return it as an image the relay accepts, or raise `AttachmentError`."""
    check_declared(name, None, len(data), max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                if image.width * image.height > MAX_PIXELS:
                    raise Image.DecompressionBombError("too many pixels")
                image.verify()
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ):
        raise AttachmentError(
            "image_undecodable",
            f"{name} could not be read as an image; attach a PNG, JPEG or WebP.",
            name,
        ) from None
    content_type = _FORMATS.get(kind)
    if content_type is None:
        raise AttachmentError(
            "not_an_image", f"{name} is not an image; attach a PNG, JPEG or WebP.", name
        )
    return ImageInput(data=data, content_type=content_type, filename=name)
