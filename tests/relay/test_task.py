"""Task format against the fake relay: request body, every poll dialect and status."""

from __future__ import annotations

import base64

import pytest

from bot.fakes.relay import POLL_DIALECTS, FakeRelay
from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InvalidResponseError,
    TaskNotFoundError,
    TimedOutError,
)
from bot.relay.models import CameoClip, ImageInput, Progress, Submitted
from bot.relay.polling import Status
from bot.relay.task import parse_percent, parse_status, parse_task

from .conftest import KEY, collect, finished, req


async def test_submit_body_and_events(relay, make_client):
    client = make_client(format="task")
    events = await collect(
        client.generate(
            req(model="sora-2-pro", orientation="landscape", duration=15, hd=True, private=True)
        )
    )
    assert isinstance(events[0], Submitted) and events[0].relay_id in relay.jobs
    assert sum(isinstance(e, Submitted) for e in events) == 1
    body = relay.requests_to("task_submit")[0].json
    assert body == {
        "prompt": "a cat walks across a piano",
        "model": "sora-2-pro",
        "aspect_ratio": "16:9",
        "hd": True,
        "duration": "15",
        "watermark": False,
        "private": True,
    }
    result = finished(events).result
    assert result.url == relay.video_url(events[0].relay_id)
    assert result.format == "task" and result.relay_id == events[0].relay_id
    phases = [e.phase for e in events if isinstance(e, Progress)]
    assert phases[0] == "queued" and "rendering" in phases and phases[-1] == "finishing"


async def test_hd_ignored_for_25_seconds_and_portrait(relay, make_client):
    await collect(make_client().generate(req(model="sora-2-pro", duration=25, hd=True)))
    body = relay.requests_to("task_submit")[0].json
    assert body["hd"] is False and body["duration"] == "25" and body["aspect_ratio"] == "9:16"


async def test_images_as_base64_and_urls_and_cameo(relay, make_client):
    raw = b"\x89PNG fake image"
    request = req(
        images=[ImageInput(data=raw), ImageInput(url="https://img.example/a.png")],
        cameo=CameoClip(url="https://clips.example/c.mp4", start=1, end=3),
    )
    await collect(make_client().generate(request))
    body = relay.requests_to("task_submit")[0].json
    assert body["images"] == [base64.b64encode(raw).decode(), "https://img.example/a.png"]
    assert body["character_url"] == "https://clips.example/c.mp4"
    assert body["character_timestamps"] == "1,3"


async def test_storyboard_prompt_is_sent_in_relay_shape(relay, make_client):
    request = req(
        prompt="", storyboard=[{"duration": 5, "scene": "a"}, {"duration": 5, "scene": "b"}]
    )
    await collect(make_client().generate(request))
    assert relay.requests_to("task_submit")[0].json["prompt"] == (
        "Shot 1:\nduration: 5sec\nScene: a\n\nShot 2:\nduration: 5sec\nScene: b"
    )


@pytest.mark.parametrize("dialect", POLL_DIALECTS)
async def test_every_poll_dialect_finishes(relay, make_client, dialect):
    relay.behaviour.poll_dialect = dialect
    relay.behaviour.progress = [0, 35, 70, 95]
    events = await collect(make_client().generate(req()))
    percents = [e.percent for e in events if isinstance(e, Progress)]
    assert percents[:4] == [0, 35, 70, 95]
    assert [e.phase for e in events if isinstance(e, Progress)][3] == "checking"
    assert finished(events).result.url.endswith(".mp4")


@pytest.mark.parametrize("dialect", POLL_DIALECTS)
async def test_every_poll_dialect_reports_policy_failure_at_95(relay, make_client, dialect):
    relay.behaviour.poll_dialect = dialect
    relay.behaviour.outcome = "policy"
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client().generate(req()))
    assert info.value.stage == "output"
    assert "违反" in info.value.detail


async def test_generic_failure_is_generation_failed(relay, make_client):
    relay.behaviour.outcome = "failed"
    with pytest.raises(GenerationFailedError):
        await collect(make_client().generate(req()))


async def test_policy_failure_naming_the_image(relay, make_client):
    relay.script(
        prompt_contains="portrait of",
        outcome="policy",
        fail_at_percent=0,
        render_polls=1,
        fail_reason="input image contains a real person",
    )
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client().generate(req("portrait of a man")))
    assert info.value.stage == "image"


async def test_task_that_never_finishes_times_out_on_fake_clock(relay, make_client, clock):
    relay.behaviour.outcome = "never"
    start = clock.monotonic()
    with pytest.raises(TimedOutError):
        await collect(make_client().generate(req(), deadline=600))
    assert 600 <= clock.monotonic() - start < 620
    assert len(relay.requests_to("task_poll")) < 80


async def test_three_minute_render_takes_at_most_40_requests(clock, make_client):
    async with FakeRelay(api_key=KEY, clock=clock) as timed:
        timed.behaviour.render_seconds = 180
        client = make_client(base_url=timed.url)
        start = clock.monotonic()
        events = await collect(client.generate(req()))
        finished(events)
        assert clock.monotonic() - start >= 180
        total = len(timed.requests)
    assert total <= 40, total
    # Early polls are quick, later ones slower; never a fixed 1-second loop.
    assert clock.slept[0] <= 3 and max(clock.slept) >= 8 and min(clock.slept) >= 1.5
    phases = {e.phase for e in events if isinstance(e, Progress)}
    assert phases == {"queued", "rendering", "checking", "finishing"}


async def test_resume_from_a_new_client_after_restart(relay, make_client):
    first = make_client()
    gen = first.generate(req("resume me"))
    submitted = await anext(gen)
    await gen.aclose()
    await first.aclose()
    events = await collect(make_client().resume(submitted.relay_id, "task"))
    assert not any(isinstance(e, Submitted) for e in events)
    assert finished(events).result.relay_id == submitted.relay_id
    assert relay.submits_for("resume me") == 1


async def test_resume_unknown_task_is_task_not_found(relay, make_client):
    with pytest.raises(TaskNotFoundError):
        await collect(make_client().resume("nope", "task"))


async def test_resume_chat_is_refused(make_client):
    with pytest.raises(ValueError):
        await collect(make_client().resume("task_01", "chat"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("35%", 35),
        (35, 35),
        (0.35, 35),
        ("0.35", 35),
        ("100%", 100),
        (None, None),
        ("", None),
        (0, 0),
        (1.0, 100),
        ("7", 7),
        ("abc", None),
    ],
)
def test_parse_percent(value, expected):
    assert parse_percent(value) == expected


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("NOT_START", Status.QUEUED),
        ("SUBMITTED", Status.QUEUED),
        ("QUEUED", Status.QUEUED),
        ("UNKNOWN", Status.QUEUED),
        ("pending", Status.QUEUED),
        ("IN_PROGRESS", Status.RUNNING),
        ("processing", Status.RUNNING),
        ("running", Status.RUNNING),
        ("SUCCESS", Status.SUCCEEDED),
        ("succeeded", Status.SUCCEEDED),
        ("completed", Status.SUCCEEDED),
        ("FAILURE", Status.FAILED),
        ("failed", Status.FAILED),
        ("cancelled", Status.CANCELLED),
    ],
)
def test_parse_status(word, status):
    assert parse_status(word) is status


def test_unknown_status_is_invalid_response():
    with pytest.raises(InvalidResponseError):
        parse_status("EXPLODED")


def test_parse_task_wrappers_and_link_places():
    url = "https://cdn.example/v.mp4"
    assert (
        parse_task({"code": "success", "data": {"status": "SUCCESS", "data": {"output": url}}}).url
        == url
    )
    assert parse_task({"status": "completed", "metadata": {"url": url}}).url == url
    assert parse_task({"status": "SUCCESS", "fail_reason": url}).url == url
    assert parse_task({"status": "SUCCESS", "data": {"outputs": [url]}}).url == url
    assert parse_task({"status": "succeeded", "video_url": url}).url == url
    with pytest.raises(TaskNotFoundError):
        parse_task({"code": "task_not_exist", "message": "task_not_exist", "data": None})


async def test_cancelled_task_fails(relay, make_client, monkeypatch):
    from bot.fakes import relay as fake_module

    original = fake_module.FakeRelay._task_json

    def cancelled(self, job):
        body = original(self, job)
        if job.polls >= 2:
            body["status"] = "cancelled"
        return body

    monkeypatch.setattr(fake_module.FakeRelay, "_task_json", cancelled)
    with pytest.raises(GenerationFailedError):
        await collect(make_client().generate(req()))


async def test_submitted_comes_before_any_poll(relay, make_client):
    gen = make_client().generate(req())
    first = await anext(gen)
    assert isinstance(first, Submitted)
    assert relay.requests_to("poll") == []
    await gen.aclose()


async def test_connection_dropped_during_a_poll_is_retried(relay, make_client):
    relay.fail_next("poll", drop=True)
    finished(await collect(make_client().generate(req())))
    assert relay.submits_for("a cat") == 1


async def test_success_without_link_is_invalid_response(relay, make_client, monkeypatch):
    from bot.fakes import relay as fake_module

    original = fake_module.FakeRelay._task_json

    def no_link(self, job):
        body = original(self, job)
        body["data"] = None
        return body

    monkeypatch.setattr(fake_module.FakeRelay, "_task_json", no_link)
    with pytest.raises(InvalidResponseError):
        await collect(make_client().generate(req()))
