"""Chat format: a streamed `POST /v1/chat/completions` whose "model" renders a video.

The stream is read live, event by event. Each delta's `content` and `reasoning_content`
text is fed to `ChatTranscript`, which reads progress, the task id, the link and failures
from the many text dialects. However the stream ends (`[DONE]`, a `finish_reason`, or just
closing, even mid-line), its last line is read whole, so a bare signed link there counts.
The silence allowed between two chunks is the relay's `stream_idle` (minutes: a relay may
say nothing while the job waits upstream), not the per-request timeout. A chat stream
cannot be resumed: if it is cut before a link, the job fails with
`StreamInterruptedError`. A link, once seen, wins over any error stated after it: the
relay billed that video.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, Literal

import httpx

from bot.catalogue import ModelEntry
from bot.relay.chat_text import ChatTranscript, parse_final_message
from bot.relay.errors import (
    InvalidResponseError,
    PolicyStage,
    RelayError,
    StreamInterruptedError,
    TimedOutError,
    classify_failure,
)
from bot.relay.http import MAX_DETAIL_CHARS, RelayHTTP
from bot.relay.models import Event, Finished, Progress, Submitted, VideoRequest, VideoResult
from bot.relay.polling import CHECKING_PERCENT

log = logging.getLogger("bot.relay")

PATH = "/v1/chat/completions"
#: The duration a chat family renders when none is named, for a model with no entry.
_PLAIN_DURATION = 10
ChatStyle = Literal["suffix", "prefix"]


def model_and_prompt(
    request: VideoRequest, style: ChatStyle, chat_model: str, entry: ModelEntry | None = None
) -> tuple[str, str]:
    """The wishes as model-name suffixes (`sora_video2-portrait-hd-15s`) or prompt words.

    The model family is the entry's `chat.family`, else the relay's `chat_model`; the
    entry's `chat.plain_duration` is the one the family renders unnamed (a model without
    an entry: 10 s, the sora chat family's)."""
    prompt = request.full_prompt()
    family = chat_model
    plain: int | None = _PLAIN_DURATION
    hd = request.effective_hd
    if entry is not None:
        family = entry.chat.family or chat_model
        plain = entry.chat.plain_duration
        hd = entry.effective_hd(request)
    if style == "suffix":
        model = f"{family}-{request.orientation}"
        if hd:
            model += "-hd"
        if request.duration != plain:
            model += f"-{request.duration}s"
        return model, prompt
    words = ["竖屏" if request.orientation == "portrait" else "横屏"]
    if request.duration != plain:
        words.append(f"{request.duration}s")
    if hd:
        words.append("高清")
    return family, " ".join([*words, prompt])


def body_of(
    request: VideoRequest, style: ChatStyle, chat_model: str, entry: ModelEntry | None = None
) -> dict[str, Any]:
    model, prompt = model_and_prompt(request, style, chat_model, entry)
    content: str | list[dict[str, Any]]
    if request.images:
        content = [{"type": "text", "text": prompt}]
        content += [
            {"type": "image_url", "image_url": {"url": image.as_data_url()}}
            for image in request.images
        ]
    else:
        content = prompt
    return {
        "model": model,
        "stream": True,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": content}],
    }


def _texts(part: Mapping[str, Any]) -> list[str]:
    texts = []
    for key in ("reasoning_content", "content"):
        value = part.get(key)
        if isinstance(value, str) and value:
            texts.append(value)
    return texts


def _failure(http: RelayHTTP, text: str, last_percent: float | None) -> RelayError:
    """A failure the stream's text states (`❌ 生成失败: …`), classified by what it says."""
    detail = http.redact(text)[:MAX_DETAIL_CHARS]
    return classify_failure(detail, default_stage=_stage(last_percent))


async def sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data` of each Server-Sent Event, including a last one the relay never ended.

    Relays close streams without the blank line that ends an event (and without
    `[DONE]`); a strict SSE reader drops that event, and with it the video link.
    Lines end at CR, LF or CRLF only (JSON may carry U+2028 unescaped).
    """
    buffer = ""
    data: list[str] = []
    async for text in response.aiter_text():
        buffer += text
        while True:
            cut = min((i for i in (buffer.find("\n"), buffer.find("\r")) if i >= 0), default=-1)
            if cut < 0 or (buffer[cut] == "\r" and cut == len(buffer) - 1):
                break  # no line end yet, or a CR whose LF may be in the next chunk
            line = buffer[:cut]
            step = 2 if buffer.startswith("\r\n", cut) else 1
            buffer = buffer[cut + step :]
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
                continue
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value[1:] if value.startswith(" ") else value)
    line = buffer.rstrip("\r")
    name, _, value = line.partition(":")
    if name == "data":
        data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


async def generate(
    http: RelayHTTP,
    request: VideoRequest,
    *,
    style: ChatStyle,
    chat_model: str,
    deadline: float | None,
    entry: ModelEntry | None = None,
) -> AsyncGenerator[Event, None]:
    clock = http.clock
    body = body_of(request, style, chat_model, entry)
    async with http.open_stream(PATH, body) as source:
        started = clock.monotonic()
        response = source.response
        content_type = response.headers.get("content-type", "").lower()
        if "text/event-stream" not in content_type:
            transcript = await _whole_answer(http, response)
            yield Submitted(transcript.task_id)
            if transcript.video_url:
                yield Finished(
                    VideoResult(
                        transcript.video_url, transcript.task_id, "chat", transcript.thumbnail_url
                    )
                )
                return
            raise (
                _failure(http, transcript.failure, None)
                if transcript.failure
                else InvalidResponseError("the relay's chat answer holds no video link")
            )

        transcript = ChatTranscript()
        submitted = False
        last: tuple[float | None, str] | None = None
        last_percent: float | None = None
        cut: str | None = None
        stated: RelayError | None = None
        events: list[Progress] = []
        try:
            async for data in sse_data(response):
                if deadline is not None and clock.monotonic() - started > deadline:
                    raise TimedOutError(f"the chat render ran past {deadline:.0f} s")
                data = data.strip()
                if not data:
                    continue
                if data == "[DONE]":
                    break
                try:
                    payload = json.loads(data)
                except ValueError:
                    continue  # a stray non-JSON line; the text carries no video data
                if not isinstance(payload, Mapping):
                    continue
                err = http.error_from_payload(payload, policy_stage=_stage(last_percent))
                if err is not None and "choices" not in payload:
                    stated = err
                    break
                events = []
                choices = payload.get("choices") or []
                if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
                    delta = choices[0].get("delta") or choices[0].get("message") or {}
                    if isinstance(delta, Mapping):
                        for text in _texts(delta):
                            events += transcript.feed(text)
                if not submitted and (transcript.task_id or events or transcript.video_url):
                    submitted = True
                    yield Submitted(transcript.task_id)
                for event in events:
                    key = (event.percent, event.phase)
                    if key != last:
                        last = key
                        if event.percent is not None:
                            last_percent = event.percent
                        yield event
        except httpx.HTTPError as exc:
            cut = f"{type(exc).__name__}"
            events = []
        else:
            # The stream ended (with or without `[DONE]`): its last line is whole even
            # without a newline. A cut stream's last line may be half a link: not read.
            events = transcript.close()

        if stated is not None and not submitted and not transcript.video_url:
            # The relay's first word was a refusal (credit, key, model, rate): it did not
            # take the job, so a pool may offer it to the next relay.
            raise stated
        if not submitted:
            yield Submitted(transcript.task_id)
        if transcript.video_url:
            for event in events:
                if (event.percent, event.phase) != last:
                    last = (event.percent, event.phase)
                    yield event
            if stated is not None or transcript.failure:
                log.warning(
                    "chat stream stated a failure after its video link; delivering the link: %s",
                    stated.detail if stated is not None else http.redact(transcript.failure or ""),
                )
            yield Finished(
                VideoResult(
                    transcript.video_url, transcript.task_id, "chat", transcript.thumbnail_url
                )
            )
            return
        if stated is not None:
            raise stated
        if transcript.failure:
            raise _failure(http, transcript.failure, last_percent)
        where = f" ({cut})" if cut else ""
        raise StreamInterruptedError(
            f"the chat stream ended before a video link{where}; last progress "
            f"{'unknown' if last_percent is None else f'{last_percent:g}%'}"
        )


def _stage(last_percent: float | None) -> PolicyStage:
    """Which moderation step a refusal without other clues blames: late ones the output."""
    return "output" if last_percent is not None and last_percent >= CHECKING_PERCENT else "prompt"


async def _whole_answer(http: RelayHTTP, response: httpx.Response) -> ChatTranscript:
    """A non-streamed `chat.completion` answer."""
    try:
        raw = await response.aread()
    except httpx.HTTPError as exc:
        raise StreamInterruptedError(f"the chat answer was cut: {type(exc).__name__}") from None
    payload = http.decode(response, raw.decode("utf-8", "replace"))
    err = http.error_from_payload(payload) if isinstance(payload, Mapping) else None
    if err is not None:
        raise err
    try:
        message = payload["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise InvalidResponseError("the relay's chat answer has no message") from None
    if not isinstance(message, Mapping):
        raise InvalidResponseError("the relay's chat answer has no message")
    return parse_final_message("\n".join(_texts(message)))
