"""Task format: `POST /v2/videos/generations`, then poll `GET /v2/videos/generations/{id}`.

`parse_task` reads every polling dialect of relay-api.md §7 (statuses in either case,
progress as "35%", 35 or 0.35, the link in any of the seen places, the `{"code", "data"}`
wrapper) into one `Snapshot`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from contextlib import ExitStack
from typing import Any

from bot.catalogue import ModelEntry
from bot.relay.callbacks import Hook, Wake
from bot.relay.errors import InvalidResponseError, TaskNotFoundError
from bot.relay.http import RelayHTTP, classify
from bot.relay.models import Event, Submitted, VideoRequest
from bot.relay.polling import Snapshot, Status, expected_seconds, follow

SUBMIT_PATH = "/v2/videos/generations"

_STATUSES: dict[str, Status] = {
    "not_start": Status.QUEUED,
    "submitted": Status.QUEUED,
    "queued": Status.QUEUED,
    "queuing": Status.QUEUED,
    "pending": Status.QUEUED,
    "unknown": Status.QUEUED,
    "created": Status.QUEUED,
    "waiting": Status.QUEUED,
    "": Status.QUEUED,
    "in_progress": Status.RUNNING,
    "processing": Status.RUNNING,
    "running": Status.RUNNING,
    "generating": Status.RUNNING,
    "success": Status.SUCCEEDED,
    "succeeded": Status.SUCCEEDED,
    "completed": Status.SUCCEEDED,
    "complete": Status.SUCCEEDED,
    "finished": Status.SUCCEEDED,
    "failure": Status.FAILED,
    "failed": Status.FAILED,
    "fail": Status.FAILED,
    "error": Status.FAILED,
    "cancelled": Status.CANCELLED,
    "canceled": Status.CANCELLED,
}


def parse_status(value: Any) -> Status:
    key = str(value if value is not None else "").strip().lower().replace("-", "_")
    try:
        return _STATUSES[key]
    except KeyError:
        raise InvalidResponseError(f"unknown task status {value!r}") from None


def parse_percent(value: Any) -> float | None:
    """ "35%", 35, 35.0, 0.35 and "0.35" all mean 35 %; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    fraction_allowed = isinstance(value, float)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.endswith("%"):
            text = text[:-1].strip()
        elif "." in text:
            fraction_allowed = True
        try:
            number = float(text)
        except ValueError:
            return None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if fraction_allowed and 0 < number <= 1.0:
        number *= 100
    return max(0.0, min(100.0, round(number, 1)))


_URL = re.compile(r"https?://\S+", re.I)

# Where relays put the finished video's link (relay-api.md §7), best first. Every format
# that answers a JSON object reads them all: a relay built for one format often answers
# in another's dialect.
_LINK_FIELDS: tuple[tuple[str, ...], ...] = (
    ("data", "output"),
    ("data", "outputs"),
    ("data", "video_url"),
    ("data", "url"),
    ("result_url",),
    ("video_url",),
    ("url",),
    ("output",),
    ("outputs",),
    ("metadata", "url"),
    ("data", "metadata", "url"),
    ("result", "url"),
    ("result", "video_url"),
)
_THUMBNAIL_FIELDS: tuple[tuple[str, ...], ...] = (
    ("data", "thumbnail"),
    ("data", "thumbnail_url"),
    ("thumbnail_url",),
    ("thumbnail",),
    ("metadata", "thumbnail_url"),
)


def _first_url(*candidates: Any) -> str | None:
    for value in candidates:
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, Mapping):
            value = value.get("url") or value.get("video_url")
        if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
            return value.strip()
    return None


def _at(obj: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def find_link(obj: Mapping[str, Any], *, succeeded: bool = False) -> str | None:
    """The video link in a task or video object, wherever this relay's dialect puts it.

    `succeeded`: old relays put the link in `fail_reason` on success; only then is that
    field read as a link.
    """
    link = _first_url(*(_at(obj, path) for path in _LINK_FIELDS))
    if link is None and succeeded:
        link = _first_url(obj.get("fail_reason"))
    return link


def find_thumbnail(obj: Mapping[str, Any]) -> str | None:
    return _first_url(*(_at(obj, path) for path in _THUMBNAIL_FIELDS))


def unwrap(payload: Any) -> Mapping[str, Any]:
    """Strip the `{"code": "success", "data": {...}}` wrapper; raise on `task_not_exist`."""
    if not isinstance(payload, Mapping):
        raise InvalidResponseError(f"expected a JSON object, got {type(payload).__name__}")
    if "code" in payload and "status" not in payload and "task_id" not in payload:
        code = str(payload.get("code") or "")
        message = str(payload.get("message") or payload.get("msg") or "")
        data = payload.get("data")
        if code in ("success", "0", "200") and isinstance(data, Mapping):
            return data
        if code == "task_not_exist" or "task_not_exist" in message:
            raise TaskNotFoundError(message or code)
        if isinstance(data, Mapping) and code in ("", "ok"):
            return data
        raise classify(message or code, code=code)
    if "error" in payload and "status" not in payload:
        error = payload["error"]
        if isinstance(error, Mapping):
            raise classify(str(error.get("message") or ""), code=str(error.get("code") or ""))
    return payload


def parse_task(payload: Any) -> Snapshot:
    task = unwrap(payload)
    status = parse_status(task.get("status"))
    fail_reason = str(task.get("fail_reason") or task.get("error") or "")
    url = find_link(task, succeeded=status is Status.SUCCEEDED)
    percent = parse_percent(task.get("progress"))
    error = "" if status is Status.SUCCEEDED else fail_reason
    return Snapshot(status, percent, url, find_thumbnail(task), error)


def submit_body(
    request: VideoRequest, *, notify_hook: str | None = None, entry: ModelEntry | None = None
) -> dict[str, Any]:
    """The task body; `entry` (the model's catalogue entry) gives its aspect ratio and
    whether HD holds at this duration (a model without one: 9:16 or 16:9, HD as asked)."""
    aspect = "9:16" if request.orientation == "portrait" else "16:9"
    hd = request.effective_hd
    if entry is not None:
        shape = entry.orientations.get(request.orientation)
        aspect = shape.aspect_ratio if shape is not None else aspect
        hd = entry.effective_hd(request)
    body: dict[str, Any] = {
        "prompt": request.full_prompt(),
        "model": request.model,
        "aspect_ratio": aspect,
        "hd": hd,
        "duration": str(request.duration),
        "watermark": request.watermark,
        "private": request.private,
    }
    if request.images:
        body["images"] = [
            image.url if image.url is not None else image.as_base64() for image in request.images
        ]
    if request.cameo is not None:
        body["character_url"] = request.cameo.url
        body["character_timestamps"] = request.cameo.timestamps
    if notify_hook is not None:
        body["notify_hook"] = notify_hook
    return body


def _task_id(payload: Any) -> str:
    data = unwrap(payload)
    task_id = data.get("task_id") or data.get("id")
    if not isinstance(task_id, str | int) or not str(task_id):
        raise InvalidResponseError("the relay accepted the task but sent no task_id")
    return str(task_id)


async def generate(
    http: RelayHTTP,
    request: VideoRequest,
    *,
    deadline: float | None,
    expected: float | None = None,
    hook: Hook | None = None,
    entry: ModelEntry | None = None,
) -> AsyncGenerator[Event, None]:
    """Submit, then poll. `expected`: the history's estimate of the render time (else
    the default for the request); `hook`: ask the relay to call back when it ends."""
    body = submit_body(request, notify_hook=None if hook is None else hook.url, entry=entry)
    reply = await http.post_json(SUBMIT_PATH, body)
    started = http.clock.monotonic()
    task_id = _task_id(reply.data)
    with ExitStack() as stack:
        # Listening before the job is announced: a quick refusal may call back at once.
        wake = (
            None
            if hook is None
            else stack.enter_context(hook.callbacks.expect(hook.relay, task_id))
        )
        yield Submitted(task_id)
        async for event in poll(
            http,
            task_id,
            deadline=deadline,
            expected=expected_seconds(request) if expected is None else expected,
            started=started,
            hint=reply.retry_after,
            wake=wake,
        ):
            yield event


def poll(
    http: RelayHTTP,
    task_id: str,
    *,
    deadline: float | None,
    expected: float,
    started: float | None = None,
    hint: float | None = None,
    immediate: bool = False,
    wake: Wake | None = None,
) -> AsyncGenerator[Event, None]:
    return follow(
        http,
        f"{SUBMIT_PATH}/{task_id}",
        parse_task,
        relay_id=task_id,
        fmt="task",
        deadline=deadline,
        expected=expected,
        started=started,
        hint=hint,
        immediate=immediate,
        wake=wake,
    )


async def resume(
    http: RelayHTTP,
    task_id: str,
    *,
    deadline: float | None,
    expected: float,
    started: float | None = None,
    hook: Hook | None = None,
) -> AsyncGenerator[Event, None]:
    """Poll a task submitted earlier; its submit asked for callbacks if `hook` is set now."""
    with ExitStack() as stack:
        wake = (
            None
            if hook is None
            else stack.enter_context(hook.callbacks.expect(hook.relay, task_id))
        )
        async for event in poll(
            http,
            task_id,
            deadline=deadline,
            expected=expected,
            started=started,
            immediate=True,
            wake=wake,
        ):
            yield event
