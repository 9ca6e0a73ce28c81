"""Characters, model list, and CDN download."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.relay.client import RelayClient
from bot.relay.errors import BadRequestError, UnavailableError
from bot.relay.models import InvalidRequest
from bot.settings import Settings

from .conftest import collect, finished, req


async def test_create_character_from_url_and_from_task(relay, make_client):
    client = make_client()
    character = await client.create_character(url="https://clips.example/a.mp4", start=1, end=3)
    assert character.username.endswith(".cameo") and character.id.startswith("ch_")
    assert relay.requests_to("characters")[0].json == {
        "timestamps": "1,3",
        "url": "https://clips.example/a.mp4",
    }
    await client.create_character(from_task="video_1", start=0.5, end=2)
    assert relay.requests_to("characters")[1].json == {
        "timestamps": "0.5,2",
        "from_task": "video_1",
    }


async def test_create_character_checks_arguments(relay, make_client):
    client = make_client()
    with pytest.raises(ValueError):
        await client.create_character(start=1, end=2)
    with pytest.raises(ValueError):
        await client.create_character(url="https://a", from_task="b", start=1, end=2)
    with pytest.raises(InvalidRequest):
        await client.create_character(url="https://a", start=1, end=9)
    assert relay.requests_to("characters") == []


async def test_character_rejected_by_relay(relay, make_client):
    relay.fail_next("characters", status=400, body='{"error":{"message":"clip has no sound"}}')
    with pytest.raises(BadRequestError):
        await make_client().create_character(url="https://a", start=1, end=2)


async def test_list_models(relay, make_client):
    assert await make_client().list_models() == list(relay.behaviour.models)


@pytest.mark.parametrize("content_length", [True, False])
async def test_download_without_auth_and_size_cap(relay, make_client, content_length):
    relay.behaviour.cdn_content_length = content_length
    relay.behaviour.video_bytes = 5000
    client = make_client()
    url = finished(await collect(client.generate(req()))).result.url
    data = await client.download(url, max_bytes=10_000)
    assert data is not None and len(data) == 5000 and data[4:8] == b"ftyp"
    assert "Authorization" not in relay.requests_to("files")[0].headers
    assert await client.download(url, max_bytes=4999) is None


async def test_download_retries_5xx_then_gives_up(relay, make_client, clock):
    client = make_client()
    url = relay.video_url("x")
    relay.fail_next("files", status=503, times=2)
    assert await client.download(url, max_bytes=10**6)
    relay.fail_next("files", status=502, times=10)
    with pytest.raises(UnavailableError):
        await client.download(url, max_bytes=10**6)
    relay.fail_next("files", status=404)
    with pytest.raises(UnavailableError):
        await client.download(url, max_bytes=10**6)


async def test_from_settings_and_context_manager(relay):
    settings = Settings(
        _env_file=None,
        relay_base_url=relay.url,
        relay_api_key=SecretStr("k" * 20),
        relay_format="official",
    )
    async with RelayClient.from_settings(settings) as client:
        assert client.format == "official" and client.base_url == relay.url
        assert "k" * 20 not in repr(client)
