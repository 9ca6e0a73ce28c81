"""Chat format: model names and prompt words, every stream dialect and ending, failures."""

from __future__ import annotations

import json

import pytest

from bot.fakes.relay import FakeRelay
from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InsufficientCreditError,
    RateLimitedError,
    StreamInterruptedError,
    TimedOutError,
    UnavailableError,
)
from bot.relay.models import ImageInput, Progress, Submitted

from .conftest import collect, finished, req

try:
    from bot.fakes.relay_chat import DIALECTS
except ImportError:  # the dialect module is another helper's; the fake has a stand-in
    DIALECTS = ("minimal",)


@pytest.mark.parametrize(
    ("fields", "model"),
    [
        ({}, "sora_video2-portrait"),
        ({"orientation": "landscape"}, "sora_video2-landscape"),
        ({"model": "sora-2-pro", "hd": True}, "sora_video2-portrait-hd"),
        ({"model": "sora-2-pro", "duration": 15}, "sora_video2-portrait-15s"),
        ({"model": "sora-2-pro", "hd": True, "duration": 15}, "sora_video2-portrait-hd-15s"),
        (
            {"model": "sora-2-pro", "duration": 25, "orientation": "landscape"},
            "sora_video2-landscape-25s",
        ),
    ],
)
async def test_suffix_style_model_names(relay, make_client, fields, model):
    await collect(make_client(format="chat").generate(req(**fields)))
    body = relay.requests_to("chat")[0].json
    assert body["model"] == model
    assert body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "a cat walks across a piano"}]


@pytest.mark.parametrize(
    ("fields", "prompt"),
    [
        ({}, "竖屏 a cat"),
        ({"orientation": "landscape"}, "横屏 a cat"),
        ({"model": "sora-2-pro", "hd": True, "duration": 15}, "竖屏 15s 高清 a cat"),
        ({"model": "sora-2-pro", "duration": 25}, "竖屏 25s a cat"),
    ],
)
async def test_prefix_style_prompt_words(relay, make_client, fields, prompt):
    client = make_client(format="chat", chat_style="prefix", chat_model="sora-2")
    await collect(client.generate(req("a cat", **fields)))
    body = relay.requests_to("chat")[0].json
    assert body["model"] == "sora-2"
    assert body["messages"][0]["content"] == prompt
    assert relay.submits_for("a cat") == 1


async def test_images_become_content_parts(relay, make_client):
    raw = b"\x89PNG img"
    request = req(images=[ImageInput(data=raw), ImageInput(url="https://img.example/b.png")])
    await collect(make_client(format="chat").generate(request))
    content = relay.requests_to("chat")[0].json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "a cat walks across a piano"}
    assert content[1]["image_url"]["url"] == "data:image/png;base64,iVBORyBpbWc="
    assert content[2]["image_url"]["url"] == "https://img.example/b.png"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_dialect_streams_to_a_link(relay, make_client, dialect):
    relay.behaviour.chat_dialect = dialect
    relay.behaviour.progress = [0, 30, 60, 95]
    events = await collect(make_client(format="chat").generate(req()))
    assert isinstance(events[0], Submitted)
    assert sum(isinstance(e, Submitted) for e in events) == 1
    job_id = next(iter(relay.jobs))
    result = finished(events).result
    assert result.url == relay.video_url(job_id)
    assert result.format == "chat"
    percents = [e.percent for e in events if isinstance(e, Progress) and e.percent is not None]
    assert percents == sorted(percents) and 60 in percents
    keys = [(e.percent, e.phase) for e in events if isinstance(e, Progress)]
    assert len(keys) == len(set(keys))  # only changes are reported


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_dialect_non_streamed_answer(relay, make_client, dialect):
    relay.behaviour.chat_dialect = dialect
    relay.behaviour.chat_json = True
    events = await collect(make_client(format="chat").generate(req()))
    assert finished(events).result.url == relay.video_url(next(iter(relay.jobs)))


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_every_dialect_policy_failure_text(relay, make_client, dialect):
    relay.behaviour.chat_dialect = dialect
    relay.behaviour.outcome = "policy"
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client(format="chat").generate(req()))
    assert info.value.stage == "output"


async def test_generic_failure_text(relay, make_client):
    relay.behaviour.outcome = "failed"
    with pytest.raises(GenerationFailedError):
        await collect(make_client(format="chat").generate(req()))


async def test_error_line_inside_the_stream(relay, make_client):
    relay.behaviour.outcome = "failed"
    relay.behaviour.chat_error_line = True
    relay.behaviour.fail_reason = "用户额度不足"
    with pytest.raises(InsufficientCreditError):
        await collect(make_client(format="chat").generate(req()))


@pytest.mark.parametrize(
    "endings",
    [
        {"chat_done": False},
        {"chat_finish_reason": "STOP"},
        {"chat_finish_reason": None, "chat_done": False, "chat_usage_chunk": False},
        {"chat_keepalive": False, "chat_usage_chunk": False},
    ],
)
async def test_stream_endings(relay, make_client, endings):
    for name, value in endings.items():
        setattr(relay.behaviour, name, value)
    finished(await collect(make_client(format="chat").generate(req())))


async def test_stream_cut_midway_is_interrupted(relay, make_client):
    relay.fail_next("chat", cut_after=3)
    events: list = []
    with pytest.raises(StreamInterruptedError):
        async for event in make_client(format="chat").generate(req()):
            events.append(event)
    assert isinstance(events[0], Submitted)
    assert relay.submits_for("a cat") == 1


async def test_stream_ending_without_a_link_is_interrupted(relay, make_client):
    relay.behaviour.outcome = "never"
    with pytest.raises(StreamInterruptedError):
        await collect(make_client(format="chat").generate(req()))


async def test_minimal_stand_in_dialect_still_works(relay, make_client):
    relay.behaviour.chat_dialect = "minimal"
    events = await collect(make_client(format="chat").generate(req()))
    assert finished(events).result.relay_id in relay.jobs


def test_fake_relay_is_importable_without_a_loop():
    assert FakeRelay(api_key="x").url == ""


async def test_chat_deadline_is_enforced(relay, make_client, clock):
    relay.behaviour.progress = [0, 10, 20, 30, 40, 50]
    events = []
    with pytest.raises(TimedOutError):
        async for event in make_client(format="chat").generate(req(), deadline=60):
            events.append(event)
            clock.advance(30)  # the render takes longer than allowed
    assert isinstance(events[0], Submitted)


@pytest.mark.skipif("thumbnail_first" not in DIALECTS, reason="dialect module not present")
async def test_thumbnail_is_reported_separately(relay, make_client):
    relay.behaviour.chat_dialect = "thumbnail_first"
    result = finished(await collect(make_client(format="chat").generate(req()))).result
    assert result.url.endswith(".mp4") and result.thumbnail_url


# -- issue 9: the link however the stream ends; silence; errors stated in the stream ----

BARE_ENDINGS = {
    "done": {},
    "no_done": {"chat_done": False},
    "nothing_after": {"chat_done": False, "chat_finish_reason": None, "chat_usage_chunk": False},
    "unterminated": {
        "chat_done": False,
        "chat_finish_reason": None,
        "chat_usage_chunk": False,
        "chat_unterminated": True,
    },
}


@pytest.mark.parametrize("ending", list(BARE_ENDINGS), ids=list(BARE_ENDINGS))
async def test_a_bare_signed_link_as_the_last_text_is_found_however_the_stream_ends(
    relay, make_client, ending
):
    """The link is a CDN's signed URL (`….mp4?se=…&sig=…`), bare, the stream's last text,
    with no newline after it; the stream ends with `[DONE]`, without it, with nothing at
    all, or in the middle of its last SSE line. Every way, the link is delivered whole."""
    relay.behaviour.chat_dialect = "bare_tail"
    relay.behaviour.signed_links = True
    for name, value in BARE_ENDINGS[ending].items():
        setattr(relay.behaviour, name, value)
    events = await collect(make_client(format="chat").generate(req()))
    job_id = next(iter(relay.jobs))
    url = finished(events).result.url
    assert url == relay.video_url(job_id)
    assert "?se=" in url and "&sig=" in url
    assert relay.submits_for("a cat") == 1


@pytest.mark.parametrize("dialect", ["quote_zh", "plain_zh", "watch_download", "html_video"])
async def test_a_signed_link_keeps_its_query_in_every_link_form(relay, make_client, dialect):
    relay.behaviour.chat_dialect = dialect
    relay.behaviour.signed_links = True
    events = await collect(make_client(format="chat").generate(req()))
    assert finished(events).result.url == relay.video_url(next(iter(relay.jobs)))


async def test_a_last_line_without_newline_still_shows_the_finish(relay, make_client):
    relay.behaviour.chat_dialect = "bare_tail"
    relay.behaviour.signed_links = True
    relay.behaviour.chat_done = False
    relay.behaviour.chat_finish_reason = None
    relay.behaviour.chat_usage_chunk = False
    relay.behaviour.chat_unterminated = True
    events = await collect(make_client(format="chat").generate(req()))
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].phase == "finishing" and progress[-1].percent == 100


async def test_silence_longer_than_the_request_timeout_is_waited_out(relay, make_client):
    """Scaled 1/30: RELAY_TIMEOUT 30 s → 0.5 s here (a little more than 1/30, for a busy
    machine), a 45 s silence → 1.5 s, the default stream idle of 600 s → 20 s. Today the
    per-request timeout ends the stream and the billed video is lost."""
    relay.behaviour.chat_silence_seconds = 1.5
    client = make_client(format="chat", timeout=0.5, stream_idle=20)
    events = await collect(client.generate(req()))
    assert finished(events).result.url == relay.video_url(next(iter(relay.jobs)))


async def test_silence_longer_than_stream_idle_ends_the_stream_as_interrupted(relay, make_client):
    relay.behaviour.chat_silence_seconds = 1.5
    client = make_client(format="chat", timeout=5, stream_idle=0.3)
    events: list = []
    with pytest.raises(StreamInterruptedError) as info:
        async for event in client.generate(req()):
            events.append(event)
    assert isinstance(events[0], Submitted)
    assert "ReadTimeout" in info.value.detail
    assert relay.submits_for("a cat") == 1


def test_stream_idle_is_a_setting_of_its_own_and_per_relay():
    from bot.relay.client import RelayClient
    from bot.settings import RelayConfig, Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        relay_base_url="http://127.0.0.1:9",
        relay_api_key="sk-x",
        relay_timeout=30,
    )
    assert settings.relay_stream_idle_seconds == 600
    config = RelayConfig(name="a", base_url="http://127.0.0.1:9", api_key="sk-x")
    assert config.stream_idle_seconds is None
    own = RelayConfig(
        name="b", base_url="http://127.0.0.1:9", api_key="sk-x", stream_idle_seconds=120
    )
    plain = RelayClient.from_config(config, timeout=30, stream_idle=600)
    special = RelayClient.from_config(own, timeout=30, stream_idle=600)
    assert plain._http._stream_timeout.read == 600
    assert special._http._stream_timeout.read == 120
    assert plain._http._stream_timeout.connect == 10


@pytest.mark.parametrize(
    ("error_type", "code", "message"),
    [
        ("server_error", "", "The server had an error while processing your request."),
        ("upstream_error", "sora_failed", "视频生成失败"),
        ("new_api_error", "bad_response_status_code", "上游返回错误 (request id: 2025abc)"),
        ("", "", "当前分组上游负载已饱和，请稍后再试"),
    ],
)
async def test_a_stated_server_or_upstream_error_in_the_stream_is_unavailable(
    relay, make_client, error_type, code, message
):
    relay.behaviour.outcome = "failed"
    relay.behaviour.chat_error_line = True
    relay.behaviour.chat_error_type = error_type
    relay.behaviour.chat_error_code = code
    relay.behaviour.fail_reason = message
    with pytest.raises((UnavailableError, RateLimitedError)) as info:
        await collect(make_client(format="chat").generate(req()))
    assert info.value.refund
    assert info.value.user_message == type(info.value).default_message
    assert relay.submits_for("a cat") == 1


async def test_a_stated_policy_error_in_the_stream_stays_policy(relay, make_client):
    relay.behaviour.outcome = "failed"
    relay.behaviour.chat_error_line = True
    relay.behaviour.chat_error_type = "server_error"
    relay.behaviour.fail_reason = "Your request was rejected by the safety system (moderation)"
    with pytest.raises(ContentPolicyError):
        await collect(make_client(format="chat").generate(req()))


async def test_an_upstream_failure_text_in_the_stream_is_unavailable(relay, make_client):
    relay.behaviour.outcome = "failed"
    relay.behaviour.fail_reason = "上游服务器超时 (upstream timeout)"
    with pytest.raises(UnavailableError):
        await collect(make_client(format="chat").generate(req()))


@pytest.mark.parametrize("as_event", [True, False], ids=["error_event", "error_text"])
async def test_an_error_stated_after_the_link_still_delivers_the_link(
    relay, make_client, caplog, as_event
):
    """The relay sent the link (and billed the video), then an error: the link wins."""
    relay.behaviour.outcome = "failed"
    relay.behaviour.chat_error_line = as_event
    relay.behaviour.chat_error_after_link = True
    relay.behaviour.chat_error_type = "server_error"
    relay.behaviour.fail_reason = "upstream connection closed"
    events = await collect(make_client(format="chat").generate(req()))
    assert finished(events).result.url == relay.video_url(next(iter(relay.jobs)))
    assert "after its video link" in caplog.text
    assert "upstream connection closed" in caplog.text


async def test_an_error_as_the_streams_first_word_is_raised_before_any_submitted(
    relay, make_client
):
    """A 200 stream whose first event is an error: the relay refused the job (here: out of
    credit), so nothing says it was accepted and a pool may try the next relay."""
    stream = (
        'data: {"error": {"message": "用户额度不足", "type": "new_api_error",'
        ' "code": "insufficient_user_quota"}}\n\ndata: [DONE]\n\n'
    )
    relay.fail_next("chat", status=200, body=stream, content_type="text/event-stream")
    events: list = []
    with pytest.raises(InsufficientCreditError) as info:
        async for event in make_client(format="chat").generate(req()):
            events.append(event)
    assert events == [] and info.value.safe_to_resubmit


async def test_a_stated_failure_reason_echoing_the_key_is_redacted(relay, make_client):
    from .conftest import KEY

    relay.behaviour.outcome = "failed"
    relay.behaviour.fail_reason = f"upstream rejected key {KEY}"
    for fmt in ("task", "official", "chat"):
        with pytest.raises(UnavailableError) as info:
            await collect(make_client(format=fmt).generate(req()))
        assert KEY not in info.value.detail and "[redacted]" in info.value.detail, fmt


async def test_sse_lines_end_at_cr_lf_or_crlf_only_and_a_last_unended_event_counts(
    relay, make_client
):
    """CRLF and bare CR line ends, comment lines, a U+2028 inside JSON text (not a line
    end for SSE), and a last event cut off without its newline: the link is read whole."""
    url = "https://cdn.example/v/x.mp4?se=2026&sig=abc_"

    def event(content: str) -> str:
        chunk = {"choices": [{"index": 0, "delta": {"content": content}}]}
        return "data: " + json.dumps(chunk, ensure_ascii=False)

    stream = (
        ": PING\r\n\r\n"
        + event("> ID: `task_01k8abcdef`\n\n")
        + "\r\n\r\n"
        + event("> 🏃 进度：50%\u2028(halfway)\n\n")
        + "\r\r"
        + event(f"> ✅ 视频生成成功\n\n{url}")
    )
    relay.fail_next("chat", status=200, body=stream, content_type="text/event-stream")
    events = await collect(make_client(format="chat").generate(req()))
    assert events[0] == Submitted("task_01k8abcdef")
    assert 50 in [e.percent for e in events if isinstance(e, Progress)]
    assert finished(events).result.url == url
