"""Official format: multipart submit, video objects, remix, failures."""

from __future__ import annotations

import io

import pytest

from bot.relay.errors import (
    AuthenticationError,
    ContentPolicyError,
    GenerationFailedError,
    TaskNotFoundError,
    UnavailableError,
)
from bot.relay.models import ImageInput, Progress, Submitted
from bot.relay.official import parse_video
from bot.relay.polling import Status

from .conftest import collect, finished, req


@pytest.mark.parametrize(
    ("fields", "size"),
    [
        ({}, "720x1280"),
        ({"orientation": "landscape"}, "1280x720"),
        ({"model": "sora-2-pro", "hd": True}, "1024x1792"),
        ({"model": "sora-2-pro", "hd": True, "orientation": "landscape"}, "1792x1024"),
        ({"model": "sora-2-pro", "hd": True, "duration": 25}, "720x1280"),
    ],
)
async def test_multipart_fields_and_size(relay, make_client, fields, size):
    events = await collect(make_client(format="official").generate(req(**fields)))
    recorded = relay.requests_to("official_submit")[0]
    assert recorded.headers["Content-Type"].startswith("multipart/form-data")
    assert recorded.form["size"] == size
    assert recorded.form["prompt"] == "a cat walks across a piano"
    assert recorded.form["seconds"] == str(fields.get("duration", 10))
    assert recorded.form["watermark"] == "false"
    assert recorded.form["model"] == fields.get("model", "sora-2")
    assert isinstance(events[0], Submitted) and events[0].relay_id.startswith("video_")
    assert finished(events).result.format == "official"


async def test_image_bytes_sent_as_file_and_url_as_field(relay, make_client):
    client = make_client(format="official")
    raw = b"\x89PNG\r\n fake"
    await collect(client.generate(req(images=[ImageInput(data=raw, filename="f.png")])))
    part = relay.requests_to("official_submit")[0].files["input_reference"]
    assert (
        part["data"] == raw and part["filename"] == "f.png" and part["content_type"] == "image/png"
    )
    await collect(client.generate(req(images=[ImageInput(url="https://img.example/x.jpg")])))
    assert relay.requests_to("official_submit")[1].form["input_reference"] == (
        "https://img.example/x.jpg"
    )


@pytest.mark.parametrize("ms", [False, True])
async def test_created_at_in_seconds_or_ms_and_size_word(relay, make_client, ms):
    relay.behaviour.official_created_ms = ms
    relay.behaviour.official_size_word = True
    finished(await collect(make_client(format="official").generate(req())))


async def test_guardrails_failure_is_policy_at_output(relay, make_client):
    relay.behaviour.outcome = "policy"
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client(format="official").generate(req()))
    assert info.value.stage == "output"
    assert "guardrails" in info.value.detail


async def test_other_failure_is_generation_failed(relay, make_client):
    relay.behaviour.outcome = "failed"
    with pytest.raises(GenerationFailedError):
        await collect(make_client(format="official").generate(req()))


async def test_remix_posts_prompt_then_polls_as_official(relay, make_client):
    source = finished(await collect(make_client(format="task").generate(req()))).result
    client = make_client(format="task")  # remix goes to /v1/videos whatever the format
    request = req("make it snow", remix_of=source.relay_id)
    assert client.format_for(request) == "official"
    events = await collect(client.generate(request))
    remix = relay.requests_to("remix")[0]
    assert remix.path == f"/v1/videos/{source.relay_id}/remix"
    assert remix.json == {"prompt": "make it snow"}
    result = finished(events).result
    assert result.format == "official"
    assert relay.jobs[result.relay_id].remixed_from == source.relay_id
    assert relay.requests_to("official_poll")


async def test_resume_official_and_progress(relay, make_client):
    gen = make_client(format="official").generate(req("again"))
    submitted = await anext(gen)
    await gen.aclose()
    events = await collect(make_client().resume(submitted.relay_id, "official"))
    assert any(isinstance(e, Progress) for e in events)
    assert finished(events).result.relay_id == submitted.relay_id
    with pytest.raises(TaskNotFoundError):
        await collect(make_client().resume("video_missing", "official"))


# -- a finished video without a link (OpenAI's own shape), and every link dialect ------


@pytest.mark.parametrize("link", ["url", "metadata", "none"])
async def test_the_link_or_the_content_path_on_the_first_completed_read(relay, make_client, link):
    relay.behaviour.official_link = link
    relay.behaviour.render_polls = 3
    events = await collect(make_client(format="official").generate(req()))
    result = finished(events).result
    video_id = result.relay_id
    assert len(relay.requests_to("official_poll")) == 3  # no extra reads waiting for a link
    if link == "none":
        assert result.url is None
        assert result.content_path == result.location == f"/v1/videos/{video_id}/content"
    else:
        assert result.url == result.location == relay.video_url(video_id)
        assert result.content_path is None


async def test_a_resumed_linkless_job_finishes_with_its_content_path(relay, make_client):
    relay.behaviour.official_link = "none"
    gen = make_client(format="official").generate(req("resumed"))
    submitted = await anext(gen)
    await gen.aclose()
    result = finished(await collect(make_client().resume(submitted.relay_id, "official"))).result
    assert result.content_path == f"/v1/videos/{submitted.relay_id}/content"


async def test_the_content_is_fetched_with_the_key_and_a_redirect_drops_it(relay, make_client):
    relay.behaviour.official_link = "none"
    relay.behaviour.video_bytes = 5000
    client = make_client(format="official")
    result = finished(await collect(client.generate(req()))).result
    data = await client.download(result.location, max_bytes=10_000)
    assert data is not None and len(data) == 5000 and data[4:8] == b"ftyp"
    (content,) = relay.requests_to("content")
    assert content.headers["Authorization"] == "<present>"

    assert await client.download(result.location, max_bytes=4999) is None  # too big
    sink = io.BytesIO()
    assert await client.fetch_into(result.location, sink, max_bytes=None)
    assert sink.getvalue() == data

    relay.behaviour.content_redirect = True  # the relay sends us to a signed CDN link
    redirected = finished(await collect(client.generate(req("signed")))).result
    assert await client.download(redirected.location, max_bytes=10_000) == data
    (signed,) = relay.requests_to("files")
    assert "sig" in signed.query and "Authorization" not in signed.headers


async def test_content_failures_are_retried_then_named(relay, make_client):
    relay.behaviour.official_link = "none"
    client = make_client(format="official")
    result = finished(await collect(client.generate(req()))).result
    relay.fail_next("content", status=502, body="<html>502</html>", content_type="text/html")
    relay.fail_next("content", drop=True)
    assert await client.download(result.location, max_bytes=10_000)
    relay.fail_next("content", status=503, times=4)
    with pytest.raises(UnavailableError, match="relay's video file failed 4 times"):
        await client.download(result.location, max_bytes=10_000)
    with pytest.raises(AuthenticationError):
        await make_client(key="sk-wrong-key-000000").download(result.location, max_bytes=10_000)


COMPLETED = {"id": "video_1", "object": "video", "status": "completed", "progress": 100}
LINK = "https://cdn.example/sora/v.mp4?se=2026&sig=abc"


@pytest.mark.parametrize(
    "extra",
    [
        {"video_url": LINK},
        {"url": LINK},
        {"metadata": {"url": LINK}},
        {"data": {"output": LINK}},
        {"data": {"outputs": [LINK]}},
        {"outputs": [{"url": LINK}]},
        {"result_url": LINK},
        {"video_url": "", "url": LINK},
        {"fail_reason": LINK},  # old relays: the link in fail_reason on success
    ],
    ids=lambda extra: "+".join(extra),
)
def test_every_link_dialect_is_read_in_a_video_object(extra):
    video_id, snapshot = parse_video({**COMPLETED, **extra})
    assert video_id == "video_1" and snapshot.status is Status.SUCCEEDED
    assert snapshot.url == LINK


@pytest.mark.parametrize(
    ("payload", "status", "percent"),
    [
        ({"code": "success", "message": "", "data": {**COMPLETED, "url": LINK}}, "succeeded", 100),
        ({"id": "sora-2:task_01k7", "status": "SUCCESS", "progress": "100%"}, "succeeded", 100),
        ({"id": "video_1", "status": "processing", "progress": 0.35}, "running", 35),
        ({"task_id": "video_1", "status": "QUEUED", "progress": "0%"}, "queued", 0),
    ],
)
def test_task_dialects_apply_to_video_objects(payload, status, percent):
    _, snapshot = parse_video(payload)
    assert snapshot.status.value == status and snapshot.percent == percent


def test_a_missing_video_in_the_wrapped_dialect_is_task_not_found():
    with pytest.raises(TaskNotFoundError):
        parse_video({"code": "task_not_exist", "message": "task_not_exist", "data": None})
