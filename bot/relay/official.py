"""Official format: multipart `POST /v1/videos`, poll `GET /v1/videos/{id}`; remixes.

`input_reference`: an uploaded image goes as a file part (first image only, the first
frame). An image given as a link is sent as a plain form field `input_reference=<url>`
(relays that re-host the official API accept it; the bot does not download it itself, so
a slow or hostile image host never ties up the bot).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from bot.catalogue import ModelEntry
from bot.relay.errors import InvalidResponseError
from bot.relay.http import RelayHTTP
from bot.relay.models import Event, Submitted, VideoRequest
from bot.relay.polling import Snapshot, Status, expected_seconds, follow
from bot.relay.task import find_link, find_thumbnail, parse_percent, parse_status, unwrap

SUBMIT_PATH = "/v1/videos"


def size_of(request: VideoRequest, entry: ModelEntry | None = None) -> str:
    """The entry's size for this orientation (its HD size when the render is HD); a model
    without an entry gets the standard 720p size."""
    size = entry.size(request) if entry is not None else None
    if size is not None:
        return size
    return "720x1280" if request.orientation == "portrait" else "1280x720"


def form_of(
    request: VideoRequest, entry: ModelEntry | None = None
) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    data = {
        "model": request.model,
        "prompt": request.full_prompt(),
        "size": size_of(request, entry),
        "seconds": str(request.duration),
        "watermark": "true" if request.watermark else "false",
    }
    files: dict[str, tuple[str, bytes, str]] = {}
    if request.images:
        image = request.images[0]
        if image.data is not None:
            files["input_reference"] = (image.filename, image.data, image.content_type)
        elif image.url is not None:
            data["input_reference"] = image.url
    return data, files


def parse_video(payload: Any) -> tuple[str, Snapshot]:
    """A video object (any dialect) as (id, snapshot)."""
    video = unwrap(payload)
    video_id = video.get("id") or video.get("task_id")
    if not isinstance(video_id, str | int) or not str(video_id):
        raise InvalidResponseError("the relay's video object has no id")
    status = parse_status(video.get("status"))
    url = find_link(video, succeeded=status is Status.SUCCEEDED)
    thumbnail = find_thumbnail(video)
    error = video.get("error")
    message, code = "", ""
    if isinstance(error, Mapping):
        message, code = str(error.get("message") or ""), str(error.get("code") or "")
    elif isinstance(error, str):
        message = error
    if status is Status.FAILED and not message:
        message = str(video.get("fail_reason") or "")
    return str(video_id), Snapshot(
        status, parse_percent(video.get("progress")), url, thumbnail, message, code
    )


async def generate(
    http: RelayHTTP,
    request: VideoRequest,
    *,
    deadline: float | None,
    expected: float | None = None,
    entry: ModelEntry | None = None,
) -> AsyncGenerator[Event, None]:
    if request.remix_of is not None:
        reply = await http.post_json(
            f"{SUBMIT_PATH}/{request.remix_of}/remix", {"prompt": request.full_prompt()}
        )
    else:
        data, files = form_of(request, entry)
        reply = await http.post_form(SUBMIT_PATH, data, files)
    started = http.clock.monotonic()
    video_id, first = parse_video(reply.data)
    yield Submitted(video_id)
    async for event in poll(
        http,
        video_id,
        deadline=deadline,
        expected=expected_seconds(request) if expected is None else expected,
        started=started,
        first=first,
        hint=reply.retry_after,
    ):
        yield event


def _snapshot(data: Any) -> Snapshot:
    return parse_video(data)[1]


def poll(
    http: RelayHTTP,
    video_id: str,
    *,
    deadline: float | None,
    expected: float,
    started: float | None = None,
    first: Snapshot | None = None,
    hint: float | None = None,
    immediate: bool = False,
) -> AsyncGenerator[Event, None]:
    return follow(
        http,
        f"{SUBMIT_PATH}/{video_id}",
        _snapshot,
        relay_id=video_id,
        fmt="official",
        deadline=deadline,
        expected=expected,
        started=started,
        first=first,
        hint=hint,
        immediate=immediate,
        content_path=content_path(video_id),
    )


def content_path(video_id: str) -> str:
    """Where OpenAI's API (and relays that copy it) serve the finished MP4, with the key."""
    return f"{SUBMIT_PATH}/{video_id}/content"
