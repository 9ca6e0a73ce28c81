"""Chat format: model names and prompt words, every stream dialect and ending, failures."""

from __future__ import annotations

import pytest

from bot.fakes.relay import FakeRelay
from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InsufficientCreditError,
    StreamInterruptedError,
    TimedOutError,
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
