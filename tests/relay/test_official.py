"""Official format: multipart submit, video objects, remix, failures."""

from __future__ import annotations

import pytest

from bot.relay.errors import ContentPolicyError, GenerationFailedError, TaskNotFoundError
from bot.relay.models import ImageInput, Progress, Submitted

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
