"""What a user asks for, what the relay reports back, in one shape for every relay format.

`VideoRequest` is validated once, by the relay rules in `shared/relay-api.md`, and every
backend maps it to its own wire format. Each rejection is an `InvalidRequest` carrying a
stable `code` (for translations) and one sentence a user can act on.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Orientation = Literal["portrait", "landscape"]
RelayFormat = Literal["chat", "task", "official"]
#: `no_answer`: the relay holds the job but its status reads are failing; still waiting.
Phase = Literal["queued", "rendering", "checking", "finishing", "no_answer"]

MAX_PROMPT_CHARS = 4000
#: The most reference images any request may carry (the /video options); a model's
#: catalogue entry may allow fewer.
MAX_IMAGES = 3
#: Durations any model could mean; each model's own list is in the catalogue.
MAX_DURATION = 300
_MENTION_AT_END = re.compile(r"(?:^|\s)@[\w.-]+$")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif"})


class InvalidRequest(ValueError):
    """The request breaks a relay rule. `message` is the sentence shown to the user."""

    def __init__(self, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.params = params


def _default_model() -> str:
    """The shipped catalogue's default model; an operator's default replaces it when the
    request is resolved (`Catalogue.resolve`), since the field was not set."""
    from bot.catalogue import shipped_catalogue  # the catalogue imports this module

    return shipped_catalogue().default.name


class ImageInput(BaseModel):
    """A reference image: raw bytes with their content type, a URL the relay can fetch, or
    `ref`, the SHA-256 of bytes the store keeps outside the job's row.

    A stored job carries only `ref` (see `bot.store.images`): three 10 MB images inline
    made every read of the row decode 40 MB. The engine swaps the bytes back in just
    before the relay is called; backends only ever see `url` or `data`.
    Bytes are base64 in JSON: pydantic's default (UTF-8) cannot serialise binary images.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    url: str | None = None
    data: bytes | None = Field(default=None, repr=False)
    ref: str | None = None
    content_type: str = "image/png"
    filename: str = "image.png"

    @model_validator(mode="after")
    def _one_source(self) -> ImageInput:
        if sum(source is not None for source in (self.url, self.data, self.ref)) != 1:
            raise InvalidRequest("image_source", "Each image needs either a link or a file.")
        if self.url is not None and not self.url.startswith(("http://", "https://", "data:")):
            raise InvalidRequest("image_url", "Image links must start with http:// or https://.")
        if self.url is None and self.content_type not in IMAGE_TYPES:
            raise InvalidRequest(
                "image_type", "Reference images must be PNG, JPEG, WebP or GIF files."
            )
        return self

    def as_data_url(self) -> str:
        """The image as the relay accepts it inline: a link, or a `data:` URL."""
        if self.url is not None:
            return self.url
        assert self.data is not None
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"

    def as_base64(self) -> str:
        assert self.data is not None
        return base64.b64encode(self.data).decode()


class Shot(BaseModel):
    """One storyboard shot; the relay detects the `Shot n / duration / Scene` shape."""

    model_config = ConfigDict(frozen=True)

    duration: Annotated[float, Field(gt=0)]
    scene: Annotated[str, Field(min_length=1, max_length=1000)]


class CameoClip(BaseModel):
    """A clip to lift a character from inline (task format `character_url`)."""

    model_config = ConfigDict(frozen=True)

    url: str
    start: float
    end: float

    @model_validator(mode="after")
    def _span(self) -> CameoClip:
        check_timestamps(self.start, self.end)
        return self

    @property
    def timestamps(self) -> str:
        return format_timestamps(self.start, self.end)


def check_timestamps(start: float, end: float) -> None:
    """The relay lifts a character from a 1–3 second span of the clip."""
    if start < 0 or end <= start:
        raise InvalidRequest(
            "timestamps_order", "The end time must come after the start time (in seconds)."
        )
    if not 1 <= end - start <= 3:
        raise InvalidRequest(
            "timestamps_span", "The character clip must span 1 to 3 seconds; adjust start or end."
        )


def format_timestamps(start: float, end: float) -> str:
    return f"{start:g},{end:g}"


class VideoRequest(BaseModel):
    """One video a user asked for, checked for what holds for every model.

    What the chosen model supports (its durations, HD, images, storyboard…) is its
    catalogue entry's to say: `Catalogue.resolve` checks that, fills the model's own
    default duration, and drops HD where the model ignores it, before a job is stored.
    """

    model_config = ConfigDict(frozen=True)

    prompt: str
    orientation: Orientation = "portrait"
    duration: Annotated[int, Field(ge=1, le=MAX_DURATION)] = 10
    hd: bool = False
    model: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        default_factory=_default_model
    )
    images: tuple[ImageInput, ...] = ()
    storyboard: tuple[Shot, ...] = ()
    cameo: CameoClip | None = None
    watermark: bool = False
    private: bool = False
    remix_of: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        """Trim, but keep the space relays need around a character `@username` at either end."""
        value = value.strip()
        if value.startswith("@"):
            value = " " + value
        if _MENTION_AT_END.search(value):
            value += " "
        return value

    @model_validator(mode="after")
    def _rules(self) -> VideoRequest:
        if not self.prompt and not self.storyboard:
            raise InvalidRequest("prompt_empty", "Describe the video you want in the prompt.")
        if len(self.full_prompt()) > MAX_PROMPT_CHARS:
            chars = len(self.full_prompt())
            raise InvalidRequest(
                "prompt_too_long",
                f"Your prompt is {chars:,} characters; keep it under {MAX_PROMPT_CHARS:,}.",
                chars=chars,
                max=MAX_PROMPT_CHARS,
            )
        if len(self.images) > MAX_IMAGES:
            raise InvalidRequest(
                "too_many_images", f"Attach at most {MAX_IMAGES} reference images.", max=MAX_IMAGES
            )
        if self.storyboard:
            total = sum(shot.duration for shot in self.storyboard)
            if abs(total - self.duration) > 0.05:
                raise InvalidRequest(
                    "storyboard_total",
                    f"The shots add up to {total:g} s but the video is {self.duration} s; "
                    "make them match.",
                    total=f"{total:g}",
                    duration=self.duration,
                )
        if self.remix_of is not None and (self.images or self.storyboard):
            raise InvalidRequest(
                "remix_options", "A remix takes only a new prompt; drop the images or storyboard."
            )
        return self

    @property
    def effective_hd(self) -> bool:
        """Whether the render is HD. A resolved request (`Catalogue.resolve`) keeps `hd` only
        where its model honours it (sora-2-pro ignores HD at 25 s), so this is `hd`."""
        return self.hd

    def full_prompt(self) -> str:
        """The prompt as sent: storyboard shots are rendered in the shape relays detect."""
        if not self.storyboard:
            return self.prompt
        shots = "\n\n".join(
            f"Shot {n}:\nduration: {shot.duration:g}sec\nScene: {shot.scene}"
            for n, shot in enumerate(self.storyboard, 1)
        )
        return f"{self.prompt}\n\n{shots}" if self.prompt else shots

    @classmethod
    def build(cls, **fields: Any) -> VideoRequest:
        """Validate, raising `InvalidRequest` with one sentence instead of pydantic's report."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise _first_sentence(exc) from None


def _first_sentence(exc: ValidationError) -> InvalidRequest:
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InvalidRequest):
            return cause
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "request"
    return InvalidRequest(
        "invalid_" + re.sub(r"\W+", "_", field), f"Check {field}: {error['msg']}."
    )


# Events a backend yields while a video renders. Every format yields the same three.


@dataclass(frozen=True, slots=True)
class Submitted:
    """The relay accepted the job. `relay_id` lets polling resume after a restart.

    `relay` and `format` name which relay took it, when a pool of relays chose one.
    """

    relay_id: str | None
    relay: str | None = None
    format: RelayFormat | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """A step forward: `percent` in 0–100 when the relay says it, and the phase."""

    percent: float | None
    phase: Phase
    message: str = ""


@dataclass(frozen=True, slots=True)
class VideoResult:
    """The finished video: a public `url`, or only a `content_path` on the relay.

    OpenAI's own video object carries no link at all; the file is served by
    `GET /v1/videos/{id}/content` with the relay key. Then `url` is None and
    `content_path` names that path (relative to the relay's base URL).
    """

    url: str | None
    relay_id: str | None
    format: RelayFormat
    thumbnail_url: str | None = None
    content_path: str | None = None

    @property
    def location(self) -> str:
        """Where the file is: the public link, else the relay path (it starts with "/")."""
        location = self.url or self.content_path
        assert location is not None, "a finished video has a link or a content path"
        return location


@dataclass(frozen=True, slots=True)
class Finished:
    result: VideoResult


Event = Submitted | Progress | Finished


@dataclass(frozen=True, slots=True)
class Character:
    """A cameo the relay made; prompts use it as ` @username `."""

    id: str
    username: str
    permalink: str | None = None
    profile_picture_url: str | None = None
