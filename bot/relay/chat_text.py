"""Reads progress, the video link and failures out of chat-format relay answers.

Chat relays (shared/relay-api.md §1 and §7) report in free-form markdown, not JSON, and
every reseller words it differently. This module turns that text into `Progress` events,
a task id, a link and a failure reason without doing any I/O, so the streaming backend,
the fake relay and the tests all read relay text the same way.

Text arrives in arbitrary fragments. Complete lines are parsed once and remembered; the
unfinished last line is re-read on each feed, but only what is certainly complete in it
counts (a number followed by `%` or `..`, a closed markdown link), so a value split
across two deltas is never read half-way.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.relay.errors import PolicyStage
from bot.relay.models import Phase, Progress

__all__ = ["ChatTranscript", "looks_like_policy", "parse_final_message", "policy_stage"]

_PHASES: tuple[Phase, ...] = ("queued", "rendering", "checking", "finishing")
_CHECKING_AT = 90.0
# A line longer than this with no newline is cut, so one feed never re-reads megabytes.
_MAX_LINE = 8192
# Fences whose body is data the relay echoes back (the parsed request), never status text.
_DATA_FENCES = frozenset({"json", "jsonc", "json5", "js", "javascript", "yaml", "yml", "toml"})

_IMAGE_EXT = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".avif", ".heic")
_VIDEO_EXT = (".mp4", ".mov", ".webm", ".m4v", ".m3u8", ".mkv")

# Link ranks: higher wins, ties keep the first. 0 = plain link, only trusted after success.
_RANK_HTML_OR_EXT = 3
_RANK_VIDEO_PATH = 2
_RANK_HINTED = 1

_URL_CHARS = r"[^\s<>\"'`()\[\]{}|\\^\u0080-\U0010ffff]"
_BARE_URL = re.compile(rf"https?://{_URL_CHARS}+")
_MD_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?(https?://[^\s)>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?(https?://[^\s)>]+)>?(?:\s+[\"'][^\"']*[\"'])?\s*\)")
_HTML_TAG = re.compile(r"<(video|source|img)\b([^>]*)(?:>|$)", re.IGNORECASE)
_HTML_ATTR = re.compile(
    r"\b(src|poster)\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>\"']+)(?=[\s>]))", re.IGNORECASE
)
_KNOWN_TAG = re.compile(
    r"</?(?:video|source|img|a|br|p|div|span|b|i|u|strong|em|code|pre|details|summary)\b[^>\n]*>",
    re.IGNORECASE,
)
_LINK_HINT = re.compile(r"(?i)视频|观看|下载|点击|播放|watch|download|video|view|play|open")

_PERCENT = re.compile(r"(?<![A-Za-z0-9_.])(\d{1,3}(?:\.\d+)?)\s*[%％]")
_PROGRESS_WORD = re.compile(r"(?i)进度|progress")
_RUN_NUMBER = re.compile(r"\d{1,3}(?:\.\d+)?")
_RUN_SEP = re.compile(r"\.{2,}|…+|\s*[,，]\s*|\s*(?:->|→)\s*|\s+")
_RUN_LEAD = re.compile(r"[\s:：*_=]*")

_QUEUE_WORDS = re.compile(r"(?i)队列|排队|等待|\bqueue|\bpending\b|\bwaiting\b")
_RUNNING_WORDS = re.compile(
    r"(?i)🏃|生成中|正在生成|处理中|开始生成|渲染中|\bprocessing\b|\bin[ _]progress\b"
    r"|\brunning\b|\bgenerating\b|\brendering\b"
)
_SUCCESS_WORDS = re.compile(
    r"(?i)生成成功|生成完成|视频已生成|成功生成|已完成|\bsucceeded\b"
    r"|\bsuccess(?:ful(?:ly)?)?\b|\bcompleted\b"
)

_ID_LABELLED = re.compile(
    r"(?i)(?<![a-z])(?:task[ _-]?id|video[ _-]?id|任务\s*id|任务编号|任务号|id)"
    r"\s*\**\s*[:：]\s*\**\s*(`?)([A-Za-z0-9][A-Za-z0-9_.:\-]{3,})(`?)"
)
_ID_BARE = re.compile(r"(?<![\w/])((?:sora-2:)?(?:task|video)_[A-Za-z0-9]{6,})")

_FAIL_ZH = re.compile(r"(?:生成|任务|处理|渲染|请求|视频)失败|失败原因")
_FAIL_EN_COLON = re.compile(r"(?i)\b(?:fail(?:ed|ure)?|error)\b\s*[:：]\s*(.*)")
_FAIL_EN_START = re.compile(
    r"(?i)^(?:(?:video|task|generation|render(?:ing)?)\s+)*(?:failed|failure|error)\b[\s:：\-–]*(.*)"
)
_POLICY_STRONG = re.compile(r"(?i)违反|违规|guardrail|violat")
_REASON_LEAD = re.compile(r"^[\s:：,，。!！\-–—]*(?:原因\s*[:：]\s*)?")

_POLICY = re.compile(
    r"(?i)违反|违规|违禁|服务政策|内容政策|使用政策|相关政策|审核|敏感|不合规|不适当|色情|暴力|版权"
    r"|真人|polic(?:y|ies)|guardrail|moderat|violat|sensitive|safety|inappropriate|nsfw"
    r"|prohibited|disallowed|copyright|third-party content|likeness|public figure"
)
_STAGE_IMAGE = re.compile(
    r"(?i)图片|图像|参考图|首帧|照片|真人|input[ _]?image|reference|\bimages?\b|photo"
    r"|first frame|input_reference"
)
_STAGE_LATE = re.compile(r"(?i)\bat\s*9\d(?:\.\d+)?\s*%|(?<!\d)9\d(?:\.\d+)?\s*%")
_STAGE_PROMPT = re.compile(r"(?i)提示词|\bprompts?\b|描述|文本|\btext\b")
_STAGE_OUTPUT = re.compile(
    r"(?i)输出|\boutputs?\b|视频内容|生成的视频|生成结果|similarity|third-party|finished video"
)


@dataclass(slots=True)
class _Line:
    """What one line says; a pure function of its text."""

    text: str = ""
    percent: float | None = None
    queued: bool = False
    running: bool = False
    success: bool = False
    links: list[tuple[str, int]] = field(default_factory=list)
    thumbnails: list[str] = field(default_factory=list)
    task_id: str | None = None
    failure: str | None = None
    failure_bare: bool = False


class ChatTranscript:
    """Accumulates the text of a chat-format answer and reads progress, link and failure from it.

    Feed every delta's text (`delta.content` and `delta.reasoning_content` alike) in order;
    call `close()` when the stream ends so a last line without a newline is read in full.
    """

    def __init__(self) -> None:
        self._tail = ""
        self._fence: str | None = None  # None outside fences, else "data" or "code"
        self._fence_fresh = False
        # From complete lines.
        self._task_id: str | None = None
        self._video: tuple[str, int] | None = None
        self._thumbnail: str | None = None
        self._failure: str | None = None
        self._failure_bare = False
        self._success = False
        # From the unfinished last line, recomputed on every feed.
        self._tail_line = _Line()
        # Progress state; both only move forward.
        self._percent: float | None = None
        self._phase_rank = -1
        self._emitted: tuple[float | None, int] | None = None

    # Results -------------------------------------------------------------------------

    @property
    def task_id(self) -> str | None:
        return self._task_id or self._tail_line.task_id

    @property
    def video_url(self) -> str | None:
        best = self._video
        for url, rank in self._tail_links():
            if best is None or rank > best[1]:
                best = (url, rank)
        return best[0] if best else None

    @property
    def thumbnail_url(self) -> str | None:
        if self._thumbnail is not None:
            return self._thumbnail
        return self._tail_line.thumbnails[0] if self._tail_line.thumbnails else None

    @property
    def failure(self) -> str | None:
        if self._failure is not None:
            return self._failure
        return self._tail_line.failure

    @property
    def done(self) -> bool:
        """The relay said the video is ready (a link or success text was seen)."""
        return self._phase_rank == len(_PHASES) - 1

    # Feeding -------------------------------------------------------------------------

    def feed(self, text: str | None) -> list[Progress]:
        """Take one delta's text; return the Progress events it caused (often none)."""
        if not text:
            return []
        events: list[Progress] = []
        data = self._tail + text
        if "\n" in text:
            *lines, data = data.split("\n")
            for line in lines:
                self._complete_line(line.rstrip("\r"), events)
        while self._fence != "data" and len(data) > _MAX_LINE:
            cut = data.rfind(" ", 0, _MAX_LINE) + 1 or _MAX_LINE
            self._complete_line(data[:cut], events)
            data = data[cut:]
        self._tail = data
        self._read_tail(events)
        return events

    def close(self) -> list[Progress]:
        """The stream ended: read the unfinished last line as complete."""
        events: list[Progress] = []
        if self._tail:
            tail, self._tail = self._tail, ""
            self._tail_line = _Line()
            self._complete_line(tail.rstrip("\r"), events)
        return events

    def _complete_line(self, raw: str, events: list[Progress]) -> None:
        if not self._fence_allows(raw):
            return
        info = _scan(raw, complete=True)
        if self._failure is not None and self._failure_bare and info.failure is None and info.text:
            # "生成失败" on one line, the reason on the next.
            self._failure = f"{self._failure}: {_REASON_LEAD.sub('', info.text)}"
            self._failure_bare = False
        if info.failure is not None and self._failure is None:
            self._failure = info.failure
            self._failure_bare = info.failure_bare
        if info.task_id and self._task_id is None:
            self._task_id = info.task_id
        if info.thumbnails and self._thumbnail is None:
            self._thumbnail = info.thumbnails[0]
        self._success = self._success or info.success
        for url, rank in info.links:
            if rank == 0 and self._success:
                rank = _RANK_HINTED
            if rank > 0 and (self._video is None or rank > self._video[1]):
                self._video = (url, rank)
        self._advance(info, events)

    def _fence_allows(self, raw: str) -> bool:
        """Track ``` fences; False for fence markers and for echoed request data."""
        stripped = raw.strip()
        bare = stripped.lstrip(">").strip()
        if self._fence == "data" and stripped.startswith((">", "**", "✅", "❌")):
            self._fence = None  # a relay that never closed its echo: status text resumed
        if self._fence is not None and not bare.startswith("```") and bare.endswith("```"):
            self._fence = None  # `}```` closes the fence on the data's last line
            return False
        if bare.startswith("```"):
            if self._fence is None:
                lang = bare[3:].strip().split(maxsplit=1)[0].lower() if bare[3:].strip() else ""
                self._fence = "data" if lang in _DATA_FENCES else "code"
                self._fence_fresh = True
            else:
                self._fence = None
            return False
        if self._fence == "data":
            return False
        if self._fence == "code" and self._fence_fresh and bare:
            self._fence_fresh = False
            if bare[0] in "{[":
                self._fence = "data"
                return False
        return True

    def _read_tail(self, events: list[Progress]) -> None:
        bare = self._tail.lstrip().lstrip(">").lstrip()
        if (
            self._fence == "data"
            or bare.startswith("`")
            or (self._fence == "code" and self._fence_fresh and bare[:1] in ("{", "["))
        ):
            # Only the line's start matters until it ends (is it the closing fence?).
            if self._fence == "data" and len(self._tail) > 32:
                self._tail = self._tail[:16] + self._tail[-16:]
            self._tail_line = _Line()
            return
        self._tail_line = _scan(self._tail, complete=False)
        self._advance(self._tail_line, events)

    def _tail_links(self) -> list[tuple[str, int]]:
        success = self._success or self._tail_line.success
        links = []
        for url, rank in self._tail_line.links:
            if rank == 0 and success:
                rank = _RANK_HINTED
            if rank > 0:
                links.append((url, rank))
        return links

    def _advance(self, info: _Line, events: list[Progress]) -> None:
        """Move percent and phase forward from one line; emit when either changed."""
        if info.failure is not None:
            return
        done = self._success or info.success or self._video is not None
        if info is self._tail_line:
            done = done or bool(self._tail_links())
        percent = self._percent
        if info.percent is not None and (percent is None or info.percent > percent):
            percent = info.percent
        rank = -1
        if done:
            rank, percent = 3, 100.0
        elif info.percent is not None:
            if info.percent == 0 and info.queued:
                rank = 0
            else:
                rank = 2 if info.percent >= _CHECKING_AT else 1
        elif info.queued:
            rank = 0
        elif info.running:
            rank = 1
        if percent is not None and percent >= _CHECKING_AT and rank < 3:
            rank = max(rank, 2)
        rank = max(rank, self._phase_rank)
        self._percent, self._phase_rank = percent, rank
        if rank < 0 or (percent, rank) == self._emitted:
            return
        self._emitted = (percent, rank)
        if percent is not None:
            message = f"{percent:g}%"
        elif info is not self._tail_line and info.text:
            message = info.text[:80]
        else:
            message = _PHASES[rank]  # an unfinished line may be cut mid-word
        events.append(Progress(percent=percent, phase=_PHASES[rank], message=message))


def parse_final_message(content: str) -> ChatTranscript:
    """Read a non-streamed `chat.completion` answer (the whole markdown at once)."""
    transcript = ChatTranscript()
    transcript.feed(content)
    transcript.close()
    return transcript


def looks_like_policy(text: str) -> bool:
    """True when a failure reads like a moderation refusal (maps to ContentPolicyError)."""
    return bool(text) and _POLICY.search(text) is not None


def policy_stage(text: str) -> PolicyStage:
    """Best guess at which moderation stage refused, from the wording alone.

    Relays often blame "the prompt or the output" together; that reads as "prompt"
    because changing the prompt is what the user can do, unless it names a 9x% point.
    """
    if _STAGE_IMAGE.search(text):
        return "image"
    if _STAGE_LATE.search(text):
        return "output"
    if _STAGE_PROMPT.search(text):
        return "prompt"
    if _STAGE_OUTPUT.search(text):
        return "output"
    return "unknown"


# Line scanning -------------------------------------------------------------------------


def _scan(raw: str, *, complete: bool) -> _Line:
    """Read one line. For an unfinished line (`complete=False`) only certain values count."""
    info = _Line(text=_clean(raw))
    info.failure, info.failure_bare = _failure(raw, info.text)
    if info.failure is None:
        _collect_links(raw, complete, info)
    plain = _strip_urls(raw)
    info.percent = _percent(plain, complete)
    info.queued = _QUEUE_WORDS.search(plain) is not None
    info.running = _RUNNING_WORDS.search(plain) is not None
    info.success = (
        info.failure is None
        and _SUCCESS_WORDS.search(plain) is not None
        and (info.percent is None or info.percent >= 100)
    )
    info.task_id = _task_id(plain, complete)
    return info


def _strip_urls(raw: str) -> str:
    return _BARE_URL.sub(" ", raw)


def _collect_links(raw: str, complete: bool, info: _Line) -> None:
    rest = raw
    for match in _HTML_TAG.finditer(raw):
        tag = match.group(1).lower()
        for attr in _HTML_ATTR.finditer(match.group(2)):
            url = next(g for g in attr.group(2, 3, 4) if g is not None).strip()
            if not url.startswith(("http://", "https://")):
                continue
            if attr.group(1).lower() == "poster" or tag == "img" or _is_image(url):
                info.thumbnails.append(url)
            else:
                info.links.append((url, _RANK_HTML_OR_EXT))
    rest = _KNOWN_TAG.sub(" ", rest)
    for match in _MD_IMAGE.finditer(rest):
        info.thumbnails.append(match.group(2))
    rest = _MD_IMAGE.sub(" ", rest)
    for match in _MD_LINK.finditer(rest):
        _add_link(match.group(2), hinted=_LINK_HINT.search(match.group(1)) is not None, info=info)
    rest = _MD_LINK.sub(" ", rest)
    for match in _BARE_URL.finditer(rest):
        url = match.group(0)
        # Sentence punctuation and emphasis are not part of a link; a signed query's last
        # value may end in "_" (base64url), so that stays.
        url = url.rstrip(".,;:!?~*") if "?" in url else url.rstrip(".,;:!?~*_")
        if not complete and match.end() == len(rest):
            # It may continue in the next delta; only a plain "….mp4" is taken early.
            opener = rest[match.start() - 1 : match.start()]
            if opener in ("(", "'", '"', "<", "=") or not url.lower().endswith(_VIDEO_EXT):
                continue
        if not _is_image(url):  # bare image links are input images, not thumbnails
            _add_link(url, hinted=False, info=info)


def _add_link(url: str, *, hinted: bool, info: _Line) -> None:
    path = _path(url)
    if path.endswith(_IMAGE_EXT):
        info.thumbnails.append(url)
    elif path.endswith(_VIDEO_EXT):
        info.links.append((url, _RANK_HTML_OR_EXT))
    elif "video" in path:
        info.links.append((url, _RANK_VIDEO_PATH))
    else:
        info.links.append((url, _RANK_HINTED if hinted else 0))


def _path(url: str) -> str:
    try:
        return urlsplit(url).path.lower()
    except ValueError:
        return ""


def _is_image(url: str) -> bool:
    return _path(url).endswith(_IMAGE_EXT)


def _percent(plain: str, complete: bool) -> float | None:
    """The latest percent a line states: `45%` anywhere, or numbers after 进度/progress."""
    found = [float(m.group(1)) for m in _PERCENT.finditer(plain)]
    found = [p for p in found if p <= 100]
    if found:
        return found[-1]
    keywords = list(_PROGRESS_WORD.finditer(plain))
    if not keywords:
        return None
    keyword = keywords[-1]
    pos = _RUN_LEAD.match(plain, keyword.end())
    assert pos is not None
    at, latest = pos.end(), None
    while (number := _RUN_NUMBER.match(plain, at)) is not None:
        if not _number_done(plain[number.end() : number.end() + 2], complete):
            break
        value = float(number.group(0))
        if value <= 100:
            latest = value
        sep = _RUN_SEP.match(plain, number.end())
        if sep is None or sep.end() == number.end():
            break
        at = sep.end()
    return latest


def _number_done(after: str, complete: bool) -> bool:
    """Is the number certainly whole? `42..` yes, `42.` or `4` at the end of a fragment no."""
    if not after:
        return complete
    if after[0].isdigit():
        return False
    if after[0] == ".":
        return len(after) > 1 or complete
    return True


def _task_id(plain: str, complete: bool) -> str | None:
    for match in _ID_LABELLED.finditer(plain):
        opened, token, closed = match.group(1, 2, 3)
        if not complete and ((opened and not closed) or (not opened and match.end() == len(plain))):
            continue
        return token.rstrip(".:-")
    for match in _ID_BARE.finditer(plain):
        if not complete and match.end() == len(plain):
            continue
        return match.group(1)
    return None


def _failure(raw: str, text: str) -> tuple[str | None, bool]:
    """The failure reason a line states, and whether it was only a bare "生成失败"."""
    if (match := _FAIL_ZH.search(text)) is not None:
        reason = _REASON_LEAD.sub("", text[match.end() :]).strip()
        return (reason, False) if reason else (text, True)
    if (match := _FAIL_EN_COLON.search(text)) is not None:
        return (match.group(1).strip() or text), not match.group(1).strip()
    if (match := _FAIL_EN_START.match(text)) is not None:
        return (match.group(1).strip() or text), not match.group(1).strip()
    if "❌" in raw and text:
        return text, False
    if _POLICY_STRONG.search(text):
        return text, False
    return None, False


def _clean(raw: str) -> str:
    """A line as plain words: no quote marks, emphasis, emoji, tags or link targets."""
    text = _MD_IMAGE.sub(" ", raw)
    text = _MD_LINK.sub(r"\1", text)
    text = _KNOWN_TAG.sub(" ", text)
    text = "".join(
        ch
        for ch in text
        if unicodedata.category(ch) not in ("So", "Sk", "Cf", "Cs", "Co")
        and ch not in "\ufe0e\ufe0f"
    )
    text = re.sub(r"\*\*|__|^[\s>#]+", " ", text)
    text = " ".join(text.split())
    return text.rstrip("~").strip()
