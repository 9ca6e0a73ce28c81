"""Reading chat-format relay text: every fake dialect, fragments, echoes, links, failures."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from bot.fakes.relay_chat import DIALECTS, chat_deltas, final_message, thumbnail_for
from bot.relay.chat_text import (
    ChatTranscript,
    looks_like_policy,
    parse_final_message,
    policy_stage,
)
from bot.relay.models import Progress

URL = "https://cdn.example/sora/e43f892b-7d30-4100-bf34-8d5e9bbb7398.mp4"
TASK = "task_01k8xyzab12cd"
PERCENTS = (0, 7, 12, 36, 54, 67, 88, 91, 99)
PHASE_ORDER = ("queued", "rendering", "checking", "finishing")
SEED_FINAL = (
    "✅ 视频生成成功，[点击这里](https://midjourney-plus.oss-us-west-1.aliyuncs.com/sora/"
    "e43f892b-7d30-4100-bf34-8d5e9bbb7398.mp4) 查看视频~~~\n\n"
)
SEED_URL = "https://midjourney-plus.oss-us-west-1.aliyuncs.com/sora/e43f892b-7d30-4100-bf34-8d5e9bbb7398.mp4"
POLICY_ZH = "输入的提示词或视频的输出内容违反了OpenAI的相关服务政策，请调整提示词后进行重试"
GUARDRAILS = "This content may violate our guardrails concerning similarity to third-party content."


def run(texts: Iterable[str | None]) -> tuple[ChatTranscript, list[Progress]]:
    transcript = ChatTranscript()
    events: list[Progress] = []
    for text in texts:
        events += transcript.feed(text)
    events += transcript.close()
    return transcript, events


def delta_texts(deltas: list[dict[str, str | None]]) -> list[str | None]:
    """What a backend feeds: each delta's content and reasoning_content, in order."""
    return [d.get(key) for d in deltas for key in ("reasoning_content", "content")]


def joined(dialect: str, **kw: object) -> str:
    return "".join(t or "" for t in delta_texts(chat_deltas(dialect, **kw)))  # type: ignore[arg-type]


def state(t: ChatTranscript) -> tuple[str | None, ...]:
    return (t.task_id, t.video_url, t.thumbnail_url, t.failure)


def assert_monotonic(events: list[Progress]) -> None:
    percents = [e.percent for e in events if e.percent is not None]
    assert percents == sorted(percents)
    ranks = [PHASE_ORDER.index(e.phase) for e in events]
    assert ranks == sorted(ranks)
    pairs = [(e.percent, e.phase) for e in events]
    assert len(pairs) == len(set(pairs)), "an event repeated an unchanged state"


# Every dialect of the fake relay -------------------------------------------------------


def test_dialect_list_covers_the_documented_styles() -> None:
    assert len(DIALECTS) == len(set(DIALECTS)) >= 9
    for name in ("quote_zh", "dotted_zh", "english_bold", "reasoning", "html_video"):
        assert name in DIALECTS


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_reads_monotonic_progress_then_the_link(dialect: str) -> None:
    deltas = chat_deltas(dialect, video_url=URL, task_id=TASK, percents=PERCENTS)
    assert deltas[0] == {"role": "assistant", "content": ""}
    t, events = run(delta_texts(deltas))
    assert_monotonic(events)
    seen = [e.percent for e in events if e.percent is not None]
    assert set(seen) == {float(p) for p in PERCENTS} | {100.0}
    assert events[-1] == Progress(percent=100.0, phase="finishing", message="100%")
    assert {e.phase for e in events} >= {"rendering", "checking", "finishing"}
    for e in events:
        if e.percent is not None and e.phase != "finishing":
            assert (e.phase == "checking") == (e.percent >= 90)
    assert t.video_url == URL
    assert t.task_id == TASK
    assert t.failure is None
    assert t.done
    expected_thumb = thumbnail_for(URL) if dialect == "thumbnail_first" else None
    assert t.thumbnail_url == expected_thumb


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("reason", ["upstream timeout", POLICY_ZH, GUARDRAILS])
def test_each_dialect_failure_sets_failure_and_no_link(dialect: str, reason: str) -> None:
    deltas = chat_deltas(dialect, video_url=URL, task_id=TASK, percents=(5, 40), failure=reason)
    t, events = run(delta_texts(deltas))
    assert_monotonic(events)
    assert t.failure == reason
    assert t.video_url is None
    assert t.task_id == TASK
    assert not t.done
    assert all(e.phase != "finishing" for e in events)
    assert looks_like_policy(t.failure) == (reason != "upstream timeout")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_each_dialect_final_message_parses(dialect: str) -> None:
    t = parse_final_message(final_message(dialect, video_url=URL))
    assert (t.video_url, t.failure) == (URL, None)
    f = parse_final_message(final_message(dialect, video_url=URL, failure="quota exhausted"))
    assert (f.video_url, f.failure) == (None, "quota exhausted")


def test_reasoning_dialect_uses_reasoning_content_and_null_keys() -> None:
    deltas = chat_deltas("reasoning", video_url=URL, task_id=TASK, percents=(10, 20, 30))
    assert any(d.get("content") is None and d.get("reasoning_content") for d in deltas)
    assert any("content" not in d and d.get("reasoning_content") for d in deltas)
    assert any("Progress" in (d.get("reasoning_content") or "") for d in deltas)
    assert URL in (deltas[-1]["content"] or "")


def test_split_dialect_really_splits_numbers_and_urls() -> None:
    deltas = chat_deltas("split_zh", video_url=URL, task_id=TASK, percents=PERCENTS)
    texts = [d["content"] or "" for d in deltas]
    assert not any(URL in text for text in texts)
    assert not any(TASK in text for text in texts)
    assert max(len(text) for text in texts) < 10


def test_unknown_dialect_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown chat dialect"):
        chat_deltas("klingon", video_url=URL, task_id=TASK, percents=())


# Fragments -----------------------------------------------------------------------------


def progress_trace(events: list[Progress]) -> list[float]:
    out: list[float] = []
    for e in events:
        if e.percent is not None and (not out or out[-1] != e.percent):
            out.append(e.percent)
    return out


def assert_same_progress(events: list[Progress], whole_events: list[Progress]) -> None:
    """Fragments may reveal more steps than one big feed, but never a half-read number."""
    assert_monotonic(events)
    assert set(progress_trace(events)) <= {3.0, 36.0, 42.0, 100.0}
    assert set(progress_trace(whole_events)) <= set(progress_trace(events))
    assert events[-1] == whole_events[-1]


FRAGMENT_SAMPLES = [
    ("quote_zh", None),
    ("json_echo", None),
    ("dotted_zh", None),
    ("thumbnail_first", None),
    ("html_video", None),
    ("watch_download", None),
    ("plain_zh", "upstream timeout"),
]


@pytest.mark.parametrize(("dialect", "failure"), FRAGMENT_SAMPLES)
def test_a_split_at_every_position_reads_the_same(dialect: str, failure: str | None) -> None:
    text = joined(dialect, video_url=URL, task_id=TASK, percents=(3, 36, 42, 100), failure=failure)
    whole, whole_events = run([text])
    for at in range(1, len(text)):
        t, events = run([text[:at], text[at:]])
        assert state(t) == state(whole), at
        assert_same_progress(events, whole_events)


@pytest.mark.parametrize(("dialect", "failure"), FRAGMENT_SAMPLES)
def test_one_character_per_feed_reads_the_same(dialect: str, failure: str | None) -> None:
    text = joined(dialect, video_url=URL, task_id=TASK, percents=(3, 36, 42, 100), failure=failure)
    whole, whole_events = run([text])
    t, events = run(list(text))
    assert state(t) == state(whole)
    assert_same_progress(events, whole_events)
    assert progress_trace(events) == [3.0, 36.0, 42.0, 100.0]


def test_a_split_percent_is_not_read_half_way() -> None:
    t = ChatTranscript()
    assert [e.percent for e in t.feed("> 🏃 进度：3")] == [None]
    assert [e.percent for e in t.feed("6.0%\n\n")] == [36.0]
    assert t.feed("> 🏃 进度：1") == []
    assert t.feed("0") == []
    assert t.feed(".") == []
    assert [e.percent for e in t.feed("5%")] == []  # 10.5 < 36: never backwards
    assert [e.percent for e in t.feed("\n> 🏃 进度 4")] == []
    assert [e.percent for e in t.feed("2..")] == [42.0]
    assert [e.percent for e in t.feed("5")] == []
    assert [e.percent for e in t.feed("4..")] == [54.0]


def test_a_split_url_is_not_read_half_way() -> None:
    t = ChatTranscript()
    t.feed("> ✅ 视频生成成功，[点击这里](https://cdn.example/so")
    assert t.video_url is None
    t.feed("ra/abc.mp4?sig=1")
    assert t.video_url is None
    t.feed(") 查看视频~~~")
    assert t.video_url == "https://cdn.example/sora/abc.mp4?sig=1"


def test_a_huge_echo_is_not_rescanned_and_does_not_leak() -> None:
    blob = "data:image/png;base64," + "QUJD" * 250_000  # one megabyte, no newline
    t = ChatTranscript()
    t.feed('```json\n{"images": ["')
    for at in range(0, len(blob), 4096):
        assert t.feed(blob[at : at + 4096]) == []
    t.feed('"], "progress": "99%"}\n```\n> 🏃 进度：12%\n')
    assert t.feed(f"[下载]({URL})\n")[-1].phase == "finishing"
    assert (t.video_url, t.thumbnail_url, t.failure) == (URL, None, None)


def test_a_huge_line_outside_a_fence_still_parses() -> None:
    t = ChatTranscript()
    for _ in range(100):
        t.feed("x" * 1000 + " ")
    events = t.feed("进度：50%\n")
    assert [e.percent for e in events] == [50.0]


# The echoed request ------------------------------------------------------------------


def test_echoed_json_block_is_ignored() -> None:
    echo = joined("json_echo", video_url=URL, task_id=TASK, percents=()).split("> ID")[0]
    assert '"duration": 15' in echo and "50%" in echo and ".mp4" in echo
    t, events = run([echo])
    assert events == []
    assert state(t) == (None, None, None, None)


def test_echo_in_a_bare_fence_is_ignored_but_a_video_tag_fence_is_read() -> None:
    text = (
        '```\n{"prompt": "45% faster", "url": "https://cdn.example/video/in.mp4"}\n```\n'
        "> 进度：20%\n"
        f"```html\n<video src='{URL}' controls></video>\n```\n"
    )
    t, events = run([text])
    assert [e.percent for e in events] == [20.0, 100.0]
    assert t.video_url == URL


# Links -----------------------------------------------------------------------------------


def test_thumbnail_is_not_taken_as_the_video() -> None:
    t, _ = run(["![封面](https://cdn.example/t/cover.jpg)\n\n"])
    assert (t.video_url, t.thumbnail_url) == (None, "https://cdn.example/t/cover.jpg")
    t, _ = run(["![封面](https://cdn.example/t/cover.png)", f" [点击这里]({URL})"])
    assert (t.video_url, t.thumbnail_url) == (URL, "https://cdn.example/t/cover.png")


def test_video_tag_poster_is_the_thumbnail() -> None:
    text = f'<video poster="https://cdn.example/p.webp" src="{URL}" controls></video>'
    t = parse_final_message(text)
    assert (t.video_url, t.thumbnail_url) == (URL, "https://cdn.example/p.webp")


def test_an_mp4_download_beats_a_page_watch_link() -> None:
    text = "[▶️ 在线观看](https://sora.example/p/s_123) | [⏬ 下载视频](https://cdn.example/a.mp4)"
    assert parse_final_message(text).video_url == "https://cdn.example/a.mp4"


def test_watch_link_wins_when_both_are_videos() -> None:
    text = f"[▶️ 在线观看]({URL}) | [⏬ 下载视频](https://cdn.example/dl/other.mp4)"
    assert parse_final_message(text).video_url == URL


def test_a_path_with_video_counts_without_an_extension() -> None:
    t = parse_final_message("下载: https://relay.example/v1/videos/video_abc123/content\n")
    assert t.video_url == "https://relay.example/v1/videos/video_abc123/content"


def test_a_plain_bare_url_counts_only_after_success_text() -> None:
    assert parse_final_message("see https://relay.example/status/abc\n").video_url is None
    t = parse_final_message("视频生成成功！\nhttps://files.example/f/abc123\n")
    assert t.video_url == "https://files.example/f/abc123"
    assert parse_final_message("视频生成成功！\nhttps://img.example/x.png\n").video_url is None


def test_a_bare_url_at_the_very_end_needs_close_unless_it_is_an_mp4() -> None:
    t = ChatTranscript()
    t.feed("视频生成成功：https://files.example/f/abc123")
    assert t.video_url is None
    t.close()
    assert t.video_url == "https://files.example/f/abc123"
    t = ChatTranscript()
    t.feed(f"视频生成成功：{URL}")
    assert t.video_url == URL


def test_trailing_punctuation_is_not_part_of_a_bare_url() -> None:
    assert parse_final_message(f"Video ready: {URL}.").video_url == URL
    assert parse_final_message(f"**{URL}**").video_url == URL
    assert parse_final_message(f"地址：{URL}。").video_url == URL


def test_input_image_urls_outside_fences_are_not_thumbnails_or_videos() -> None:
    t = parse_final_message("参考图: https://img.example/ref/cat.png\n> 进度：10%\n")
    assert (t.video_url, t.thumbnail_url) == (None, None)


# Progress wording ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "percent", "phase"),
    [
        ("> 🏃 进度：36.0%", 36.0, "rendering"),
        ("> 🏃 进度 42..54..67..", 67.0, "rendering"),
        ("**Video Generation Progress**: 45% (processing)", 45.0, "rendering"),
        ("生成进度: 7%", 7.0, "rendering"),
        ("Progress: 12%", 12.0, "rendering"),
        ("45%", 45.0, "rendering"),
        ("进度：95%", 95.0, "checking"),
        ("> 🏃 进度：36.0% (预计 3 分钟)", 36.0, "rendering"),
        ("> ⌛️ 任务正在队列中，请耐心等待...", None, "queued"),
        ("Status: queued 0%", 0.0, "queued"),
        ("> 🏃 生成中", None, "rendering"),
    ],
)
def test_progress_styles(line: str, percent: float | None, phase: str) -> None:
    _, events = run([line + "\n"])
    assert (events[-1].percent, events[-1].phase) == (percent, phase)


def test_progress_message_is_short_and_plain() -> None:
    _, events = run(["> ⌛️ 任务正在队列中，请耐心等待...\n", "> 🏃 进度：36.0%\n"])
    assert [e.message for e in events] == ["任务正在队列中，请耐心等待...", "36%"]


def test_progress_never_goes_backwards_and_repeats_are_silent() -> None:
    _, events = run(["进度：50%\n", "进度：40%\n", "进度：50%\n", "进度：50.5%\n"])
    assert [e.percent for e in events] == [50.0, 50.5]


def test_success_text_without_a_link_is_finishing() -> None:
    t, events = run(["进度：80%\n", "> ✅ 视频生成成功\n"])
    assert events[-1].phase == "finishing" and t.video_url is None


def test_submitted_checkmark_is_not_success() -> None:
    _, events = run(["> ✅ 任务已提交\n", "> 🏃 进度：5%\n"])
    assert [e.phase for e in events] == ["rendering"]


# Task ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        f"> ID: `{TASK}`",
        f"任务ID：{TASK}",
        f"**Task ID**: {TASK}",
        f"task_id: {TASK}",
        f"Your task {TASK} is queued",
    ],
)
def test_task_id_lines(line: str) -> None:
    assert parse_final_message(line).task_id == TASK


def test_empty_or_url_ids_are_not_task_ids() -> None:
    assert parse_final_message('id: ""\ncreated: 0\n').task_id is None
    assert parse_final_message("https://cdn.example/task_0123456789.mp4\n").task_id is None


def test_a_split_task_id_is_not_read_half_way() -> None:
    t = ChatTranscript()
    t.feed("> ID: `task_01k8")
    assert t.task_id is None
    t.feed("xyz`\n")
    assert t.task_id == "task_01k8xyz"


# Failures ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("❌ 生成失败: upstream timeout", "upstream timeout"),
        ("> ❌ 视频生成失败：额度不足", "额度不足"),
        ("生成失败", "生成失败"),
        ("生成失败\n原因: 服务繁忙", "生成失败: 服务繁忙"),
        ("failed: worker crashed", "worker crashed"),
        ("Error: upstream returned 502", "upstream returned 502"),
        ("**Video Generation Failed**: busy", "busy"),
        (GUARDRAILS, GUARDRAILS),
        (f"> {POLICY_ZH}", POLICY_ZH),
    ],
)
def test_failure_styles(text: str, reason: str) -> None:
    t = parse_final_message(text)
    assert t.failure == reason
    assert t.video_url is None


def test_failure_in_the_unfinished_last_line_is_visible_without_close() -> None:
    t = ChatTranscript()
    t.feed("> 🏃 进度：40%\n\n> ❌ 生成失败: upstream timeout")
    assert t.failure == "upstream timeout"


def test_success_stream_has_no_failure() -> None:
    assert parse_final_message(SEED_FINAL).failure is None


# Moderation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        (POLICY_ZH, "prompt"),
        (GUARDRAILS, "output"),
        ("上传的图片包含真人，审核未通过", "image"),
        ("Your input image was rejected by moderation", "image"),
        ("提示词包含敏感内容", "prompt"),
        ("Your prompt violates our content policy", "prompt"),
        ("视频内容违规，生成在 96% 时被拦截", "output"),
        ("The output was flagged by safety at 95%", "output"),
        ("内容违反政策", "unknown"),
    ],
)
def test_policy_texts_and_stages(text: str, stage: str) -> None:
    assert looks_like_policy(text)
    assert policy_stage(text) == stage


@pytest.mark.parametrize(
    "text",
    [
        "upstream timeout",
        "当前分组上游负载已饱和，请稍后再试",
        "该令牌额度已用尽",
        "worker crashed",
        "",
    ],
)
def test_other_failures_are_not_policy(text: str) -> None:
    assert not looks_like_policy(text)


# Samples copied from shared/relay-api.md §1/§7 and seeds/004 -------------------------------


def test_seed_004_final_message() -> None:
    t = parse_final_message(SEED_FINAL)
    assert (t.video_url, t.failure, t.thumbnail_url) == (SEED_URL, None, None)
    assert t.done


def test_relay_api_section7_stream_lines() -> None:
    lines = [
        "> ID: `task_01k8…`\n\n",
        "> ⌛️ 任务正在队列中，请耐心等待...\n\n",
        "> 🏃 进度：36.0%\n\n",
        "> 🏃 进度 42..54..67..\n\n",
        "**Video Generation Progress**: 45% (processing)\n\n",
        "生成进度: 7%\n\n",
        f"> ✅ 视频生成成功，[点击这里]({SEED_URL}) 查看视频~~~",
    ]
    t, events = run(lines)
    assert [(e.percent, e.phase) for e in events] == [
        (None, "queued"),
        (36.0, "rendering"),
        (67.0, "rendering"),
        (100.0, "finishing"),
    ]
    assert t.task_id == "task_01k8"
    assert t.video_url == SEED_URL


@pytest.mark.parametrize(
    "text",
    [
        f"[▶️ 在线观看]({SEED_URL}) | [⏬ 下载视频]({SEED_URL})",
        f"<video src='{SEED_URL}' controls></video>",
        f"```html\n<video src='{SEED_URL}' controls></video>\n```",
        f"![thumb](https://cdn.example/t.jpg)\n{SEED_URL}",
        SEED_URL,
    ],
)
def test_relay_api_section7_link_forms(text: str) -> None:
    assert parse_final_message(text).video_url == SEED_URL


def test_relay_api_section7_failure_inside_a_200_stream() -> None:
    t, _ = run(["> 🏃 进度：91%\n\n", "❌ 生成失败: <reason>\n"])
    assert t.failure == "<reason>"


def test_a_fence_closed_on_the_data_line_or_never_closed_ends_the_echo() -> None:
    t = parse_final_message('```json\n{"x": "10%"}```\n> 进度：20%\n' + f"[点击这里]({URL})\n")
    assert (t.video_url, t.failure) == (URL, None)
    t, events = run(['```json\n{"progress": "99%",\n', "> 🏃 进度：20%\n", f"[点击这里]({URL})"])
    assert [e.percent for e in events] == [20.0, 100.0]
    assert t.video_url == URL


def test_a_markdown_autolink_counts() -> None:
    assert parse_final_message(f"视频地址：<{URL}>").video_url == URL


SIGNED = (
    "https://cdn.example/sora/e43f892b.mp4"
    "?se=2026-12-31T23%3A59%3A59Z&sp=r&sv=2024-08-04&sr=b&sig=Zm9vYmFy%2B%3D"
)


@pytest.mark.parametrize("lead", ["", "> ✅ 视频生成成功\n\n", "视频生成成功！\n", "下载: "])
def test_a_bare_signed_url_on_an_unterminated_last_line_is_read_whole(lead: str) -> None:
    t = ChatTranscript()
    t.feed("> 🏃 进度：99%\n\n" + lead)
    for at in range(0, len(SIGNED), 7):  # the link arrives in pieces
        t.feed(SIGNED[at : at + 7])
    assert t.video_url is None  # it may still go on: not taken half-way
    t.close()
    assert t.video_url == SIGNED
    assert t.done


def test_a_signed_query_ending_in_underscore_keeps_it() -> None:
    url = "https://cdn.example/v/abc.mp4?Expires=1767225599&Signature=a-b_"
    t, _ = run([f"视频生成成功\n{url}\n"])
    assert t.video_url == url
    t, _ = run([f"视频生成成功 **{url.split('?')[0]}**\n"])
    assert t.video_url == url.split("?")[0]
