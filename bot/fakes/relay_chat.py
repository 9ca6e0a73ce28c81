"""Realistic chat-format delta sequences for the fake relay and the sandbox.

Each dialect imitates one way real relays word a streamed Sora render (shared/relay-api.md
§7): where progress goes (`content` or `reasoning_content`), how percents look, how the
link and failures are written. The fake server wraps each delta in a
`chat.completion.chunk`; tests feed them to `ChatTranscript` to prove it reads them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["DIALECTS", "chat_deltas", "final_message", "thumbnail_for"]

Delta = dict[str, str | None]
# A piece of text and the delta key it travels in.
Piece = tuple[str, str]

CONTENT = "content"
REASONING = "reasoning_content"

# Chunk sizes for the "split_zh" dialect: uneven so numbers, ids and URLs break mid-way.
_SPLIT_SIZES = (3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7)

_QUEUE_ZH = "> ⌛️ 任务正在队列中，请耐心等待...\n\n"


def thumbnail_for(video_url: str) -> str:
    """The cover image the "thumbnail_first" dialect shows before the video link."""
    stem = video_url.split("?", 1)[0]
    if "." in stem.rsplit("/", 1)[-1]:
        stem = stem.rsplit(".", 1)[0]
    return stem + "_cover.webp"


def _echo(task_id: str) -> str:
    """The parsed request some relays echo first; it holds numbers and non-video URLs."""
    body = {
        "model": "sora_video2-portrait-hd-15s",
        "prompt": "a cat walks across a piano, 50% slower, progress: 80",
        "duration": 15,
        "orientation": "portrait",
        "images": ["https://img.example/ref/cat_video_still.png"],
        "character_url": "https://cdn.example/clips/video_ref.mp4",
        "id": "",
        "created": 0,
    }
    return "```json\n" + json.dumps(body, ensure_ascii=False, indent=2) + "\n```\n\n"


@dataclass(frozen=True, slots=True)
class _Dialect:
    """How one relay words the stages of a render."""

    head: Callable[[str], list[Piece]]
    step: Callable[[int], list[Piece]]
    success: Callable[[str], list[Piece]]
    failure: Callable[[str], list[Piece]]
    prefix: Callable[[str], list[Piece]] = lambda task_id: []


def _c(*texts: str) -> list[Piece]:
    return [(CONTENT, text) for text in texts]


def _r(*texts: str) -> list[Piece]:
    return [(REASONING, text) for text in texts]


def _quote_success(url: str) -> list[Piece]:
    return _c(f"> ✅ 视频生成成功，[点击这里]({url}) 查看视频~~~\n\n")


def _quote_failure(reason: str) -> list[Piece]:
    return _c(f"> ❌ 生成失败: {reason}\n\n")


_QUOTE_ZH = _Dialect(
    head=lambda task_id: _c(f"> ID: `{task_id}`\n\n", _QUEUE_ZH),
    step=lambda p: _c(f"> 🏃 进度：{p:.1f}%\n\n"),
    success=_quote_success,
    failure=_quote_failure,
)

_DIALECTS: dict[str, _Dialect] = {
    "quote_zh": _QUOTE_ZH,
    # Running numbers on one line, each in its own delta: "> 🏃 进度 42..54..67..".
    "dotted_zh": _Dialect(
        head=lambda task_id: _c(f"> ID: `{task_id}`\n\n", _QUEUE_ZH, "> 🏃 进度 "),
        step=lambda p: _c(f"{p}.."),
        success=lambda url: _c("\n\n") + _quote_success(url),
        failure=lambda reason: _c("\n\n") + _quote_failure(reason),
    ),
    "english_bold": _Dialect(
        head=lambda task_id: _c(
            f"**Task ID**: {task_id}\n\n", "**Video Generation Progress**: 0% (queued)\n\n"
        ),
        step=lambda p: _c(f"**Video Generation Progress**: {p}% (processing)\n\n"),
        success=lambda url: _c("**Video Generation Completed**\n\n", f"[Watch video]({url})\n\n"),
        failure=lambda reason: _c(f"**Video Generation Failed**: {reason}\n\n"),
    ),
    # Bare lines and a bare URL on its own line after the success text.
    "plain_zh": _Dialect(
        head=lambda task_id: _c(f"任务ID: {task_id}\n", "排队中...\n"),
        step=lambda p: _c(f"生成进度: {p}%\n"),
        success=lambda url: _c("视频生成成功！\n", f"{url}\n"),
        failure=lambda reason: _c(f"生成失败: {reason}\n"),
    ),
    # Progress in reasoning_content (sometimes with "content": None), the link in content.
    "reasoning": _Dialect(
        head=lambda task_id: _r(f"task_id: {task_id}\n", "Status: queued, waiting...\n"),
        step=lambda p: _r(f"Progress: {p}%\n"),
        success=lambda url: _c(f"✅ 视频生成成功，[点击这里]({url}) 查看视频~~~"),
        failure=lambda reason: _r(f"❌ 生成失败: {reason}\n"),
    ),
    "html_video": _Dialect(
        head=lambda task_id: _c(f"> 任务ID：`{task_id}`\n\n", _QUEUE_ZH),
        step=lambda p: _c(f"> 进度：{p}%\n\n"),
        success=lambda url: _c(
            "> ✅ 视频生成成功\n\n", f"```html\n<video src='{url}' controls></video>\n```\n"
        ),
        failure=lambda reason: _c(f"> ❌ 视频生成失败：{reason}\n\n"),
    ),
    "watch_download": _Dialect(
        head=lambda task_id: _c(f"> ID: `{task_id}`\n\n", _QUEUE_ZH),
        step=lambda p: _c(f"> 🏃 进度：{p}%\n\n"),
        success=lambda url: _c(
            "> ✅ 视频生成成功\n\n", f"[▶️ 在线观看]({url}) | [⏬ 下载视频]({url}?download=1)\n"
        ),
        failure=lambda reason: _c(f"> ❌ 生成失败：{reason}\n\n"),
    ),
    # A cover image comes before the video link.
    "thumbnail_first": _Dialect(
        head=lambda task_id: _c(f"Task ID: `{task_id}`\n\n", "Queued, waiting for a worker...\n\n"),
        step=lambda p: _c(f"Progress: {p}%\n\n"),
        success=lambda url: _c(
            "✅ Video generated successfully\n\n",
            f"![cover]({thumbnail_for(url)})\n\n",
            f"[点击这里]({url}) 查看视频~~~\n",
        ),
        failure=lambda reason: _c(f"Error: {reason}\n"),
    ),
    # The first chunk echoes the parsed request as a fenced JSON block.
    "json_echo": _Dialect(
        prefix=lambda task_id: _c(_echo(task_id)),
        head=lambda task_id: _c(f"> ID: `{task_id}`\n\n", _QUEUE_ZH),
        step=lambda p: _c(f"> 🏃 进度：{p}.0%\n\n"),
        success=_quote_success,
        failure=lambda reason: _c(f"failed: {reason}\n"),
    ),
    # The echo and quote_zh text cut into uneven fragments: numbers, ids, URLs all split.
    "split_zh": _Dialect(
        prefix=lambda task_id: _c(_echo(task_id)),
        head=_QUOTE_ZH.head,
        step=_QUOTE_ZH.step,
        success=_quote_success,
        failure=_quote_failure,
    ),
    # The link bare (a CDN's signed URL, query and all) as the stream's very last text, with
    # no newline after it: readable only once the stream has ended.
    "bare_tail": _Dialect(
        head=lambda task_id: _c(f"> ID: `{task_id}`\n\n", _QUEUE_ZH),
        step=lambda p: _c(f"> 🏃 进度：{p}%\n\n"),
        success=lambda url: _c("> ✅ 视频生成成功\n\n", url),
        failure=_quote_failure,
    ),
}

DIALECTS: tuple[str, ...] = tuple(_DIALECTS)


def _dialect(name: str) -> _Dialect:
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown chat dialect {name!r}; known: {', '.join(DIALECTS)}") from None


def _to_deltas(dialect: str, pieces: list[Piece]) -> list[Delta]:
    """Wrap text pieces as deltas, first the role-only one real streams start with."""
    if dialect == "split_zh":
        text = "".join(text for _, text in pieces)
        pieces, at, i = [], 0, 0
        while at < len(text):
            size = _SPLIT_SIZES[i % len(_SPLIT_SIZES)]
            pieces.append((CONTENT, text[at : at + size]))
            at, i = at + size, i + 1
    deltas: list[Delta] = [{"role": "assistant", "content": ""}]
    for n, (key, text) in enumerate(pieces):
        if key == REASONING:
            # Some relays send both keys with one null, others only the one in use.
            deltas.append({"content": None, REASONING: text} if n % 2 else {REASONING: text})
        elif dialect == "reasoning":
            deltas.append({CONTENT: text, REASONING: None})
        else:
            deltas.append({CONTENT: text})
    return deltas


def chat_deltas(
    dialect: str,
    *,
    video_url: str,
    task_id: str,
    percents: Sequence[int],
    failure: str | None = None,
) -> list[Delta]:
    """The `delta` objects of one streamed render, ending with the link or the failure."""
    spec = _dialect(dialect)
    pieces = spec.prefix(task_id) + spec.head(task_id)
    for percent in percents:
        pieces += spec.step(percent)
    pieces += spec.failure(failure) if failure is not None else spec.success(video_url)
    return _to_deltas(dialect, pieces)


def final_message(dialect: str, *, video_url: str, failure: str | None = None) -> str:
    """The message content of a non-streamed answer: any echo, then the link or failure."""
    spec = _dialect(dialect)
    pieces = spec.prefix("task_0000000000") + (
        spec.failure(failure) if failure is not None else spec.success(video_url)
    )
    return "".join(text for _, text in pieces).strip("\n") + "\n"
