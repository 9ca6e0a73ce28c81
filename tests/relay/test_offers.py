"""Which models each relay offers: its `/v1/models`, cached per relay in the pool, and
failover that only tries relays offering the job's model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.catalogue import shipped_catalogue
from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.errors import ModelNotOfferedError, ModelUnavailableError
from bot.relay.models import Finished, Submitted, VideoRequest
from bot.relay.pool import RelayPool

from .conftest import KEY, collect


@pytest.fixture
async def backup() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def pool_of(clock: FakeClock):
    made: list[RelayPool] = []

    def build(*urls: str, **kw: Any) -> RelayPool:
        names = ["primary", "backup", "third"]
        pool = RelayPool(
            [
                (names[i], RelayClient(url, SecretStr(KEY), clock=clock))
                for i, url in enumerate(urls)
            ],
            clock=clock,
            **kw,
        )
        made.append(pool)
        return pool

    yield build
    for pool in made:
        await pool.aclose()


def request(prompt: str = "a heron at dawn", model: str = "sora-2") -> VideoRequest:
    return VideoRequest.build(prompt=prompt, model=model)


def submitted(events: list[Any]) -> Submitted:
    return next(e for e in events if isinstance(e, Submitted))


# --- the fake relay's model list and its vendors' models -------------------------------


@pytest.mark.parametrize(
    ("answer", "status"), [("error", 500), ("absent", 404), ("garbage", 200), ("list", 200)]
)
async def test_the_fake_relay_answers_its_model_list_as_configured(
    relay: FakeRelay, answer: str, status: int
) -> None:
    relay.behaviour.models_answer = answer  # type: ignore[assignment]
    relay.behaviour.models = ("veo3-fast",)
    async with httpx.AsyncClient() as http:
        reply = await http.get(f"{relay.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert reply.status_code == status
    if answer == "list":
        assert [m["id"] for m in reply.json()["data"]] == ["veo3-fast"]


async def post_task(relay: FakeRelay, **body: Any) -> httpx.Response:
    wire = {"prompt": "a lighthouse", "model": "veo3-fast", "duration": "8", **body}
    async with httpx.AsyncClient() as http:
        return await http.post(
            f"{relay.url}/v2/videos/generations",
            json=wire,
            headers={"Authorization": f"Bearer {KEY}"},
        )


async def test_the_fake_renders_veo_as_a_google_task(relay: FakeRelay) -> None:
    reply = await post_task(relay, aspect_ratio="16:9")
    assert reply.status_code == 200
    task_id = reply.json()["task_id"]
    assert task_id.startswith("veo3:")
    async with httpx.AsyncClient() as http:
        polled = await http.get(
            f"{relay.url}/v2/videos/generations/{task_id}",
            headers={"Authorization": f"Bearer {KEY}"},
        )
    task = polled.json()
    assert (task["task_id"], task["platform"], task["action"]) == (
        task_id,
        "google",
        "google-videos",
    )


@pytest.mark.parametrize(
    "options",
    [{"duration": "15"}, {"duration": "10"}, {"hd": True}, {"images": ["a", "b"]}],
)
async def test_the_fake_refuses_options_its_model_does_not_support(
    relay: FakeRelay, options: dict[str, Any]
) -> None:
    reply = await post_task(relay, **options)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"].startswith("veo3-fast")
    assert relay.jobs == {}  # refused before anything was made


async def test_the_fake_refuses_a_model_it_does_not_list_when_told(relay: FakeRelay) -> None:
    relay.behaviour.refuse_unlisted = True
    reply = await post_task(relay)
    assert reply.status_code == 503 and reply.json()["error"]["code"] == "model_not_found"
    relay.behaviour.models = (*relay.behaviour.models, "veo3-fast")
    assert (await post_task(relay)).status_code == 200


# --- the pool's cache of offers ---------------------------------------------------------


async def test_a_relay_lists_what_it_offers(pool_of, relay: FakeRelay) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    pool = pool_of(relay.url)
    assert pool.offered_models() is None  # never asked: anything may be offered
    await pool.refresh_offers()
    assert pool.offered_models() == {"sora-2", "veo3-fast"}
    assert pool.offers("veo3-fast") and not pool.offers("sora-2-pro")


@pytest.mark.parametrize("answer", ["error", "absent", "garbage"])
async def test_a_relay_without_a_readable_list_may_offer_anything(
    pool_of, relay: FakeRelay, answer: str
) -> None:
    relay.behaviour.models_answer = answer  # type: ignore[assignment]
    pool = pool_of(relay.url)
    await pool.refresh_offers()
    member = pool.members[0]
    assert member.listed is None and member.listing_error
    assert pool.offers("sora-2-pro") and pool.offers("some-new-model")
    events = await collect(pool.generate(request(model="sora-2-pro")))
    assert isinstance(events[-1], Finished)


async def test_an_empty_list_counts_as_no_list(pool_of, relay: FakeRelay) -> None:
    relay.behaviour.models = ()
    pool = pool_of(relay.url)
    await pool.refresh_offers()
    assert pool.members[0].listed is None and pool.offers("sora-2")


async def test_a_failed_refresh_keeps_the_last_list(pool_of, relay: FakeRelay) -> None:
    relay.behaviour.models = ("sora-2",)
    pool = pool_of(relay.url)
    await pool.refresh_offers()
    relay.behaviour.models_answer = "error"
    await pool.refresh_offers()
    assert pool.members[0].listed == {"sora-2"} and not pool.offers("sora-2-pro")


async def test_lists_are_read_again_after_the_ttl_on_the_clock(
    pool_of, relay: FakeRelay, clock: FakeClock
) -> None:
    relay.behaviour.models = ("sora-2",)
    pool = pool_of(relay.url, offers_ttl=600)
    await pool.refresh_offers()
    relay.behaviour.models = ("sora-2", "veo3-fast")
    assert not pool.offers("veo3-fast")  # fresh: no request, the cache answers
    await asyncio.sleep(0.05)
    assert len(relay.requests_to("models")) == 1

    clock.advance(601)
    assert not pool.offers("veo3-fast")  # stale: answered from the cache, read behind
    await asyncio.gather(*pool._listing.values())
    assert len(relay.requests_to("models")) == 2
    assert pool.offers("veo3-fast")


async def test_the_key_stays_out_of_the_log_of_a_failed_list(
    pool_of, relay: FakeRelay, caplog: pytest.LogCaptureFixture
) -> None:
    relay.fail_next("models", status=401, body=f'{{"error":{{"message":"bad key {KEY}"}}}}')
    pool = pool_of(relay.url)
    with caplog.at_level("DEBUG"):
        await pool.refresh_offers()
    assert "primary" in caplog.text and KEY not in caplog.text


# --- failover follows the offers --------------------------------------------------------


async def test_a_job_goes_only_to_relays_that_list_its_model(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    relay.behaviour.models = ("sora-2",)
    backup.behaviour.models = ("sora-2", "sora-2-pro")
    pool = pool_of(relay.url, backup.url)
    await pool.refresh_offers()
    events = await collect(pool.generate(request("a pro heron", model="sora-2-pro")))
    assert submitted(events).relay == "backup"
    assert relay.requests_to("submit") == [] and backup.submits_for("a pro heron") == 1


async def test_no_relay_offering_the_model_sends_nothing_and_refunds(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    relay.behaviour.models = ("sora-2",)
    backup.behaviour.models = ("sora-2",)
    pool = pool_of(relay.url, backup.url)
    await pool.refresh_offers()
    with pytest.raises(ModelNotOfferedError) as info:
        await collect(pool.generate(request(model="sora-2-pro")))
    assert info.value.refund and info.value.code == "model_not_offered"
    assert relay.requests_to("submit") == [] and backup.requests_to("submit") == []


async def test_a_pinned_job_ignores_the_lists(pool_of, relay: FakeRelay, backup: FakeRelay) -> None:
    # A remix must go where its source is, whatever the list says now.
    backup.behaviour.models = ("sora-2",)
    pool = pool_of(relay.url, backup.url)
    await pool.refresh_offers()
    events = await collect(pool.generate(request(model="sora-2-pro"), relay_name="backup"))
    assert submitted(events).relay == "backup"


async def test_model_not_found_rereads_the_list_and_spares_the_breaker(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    relay.behaviour.models = ("sora-2", "sora-2-pro")  # its list says pro, its channels don't
    relay.behaviour.refuse_unlisted = True
    pool = pool_of(relay.url, backup.url, threshold=1)
    await pool.refresh_offers()
    relay.behaviour.models = ("sora-2",)  # the channel went away since the last read
    events = await collect(pool.generate(request("a refused pro", model="sora-2-pro")))
    assert submitted(events).relay == "backup"
    assert pool.members[0].breaker.state == "closed"  # it answered: sora-2 still goes there
    await asyncio.gather(*pool._listing.values())
    assert len(relay.requests_to("models")) == 2 and not pool.member_offers(
        pool.members[0], "sora-2-pro"
    )
    events = await collect(pool.generate(request("a plain heron")))
    assert submitted(events).relay == "primary"


async def test_model_not_found_from_every_relay_is_refunded(pool_of, relay: FakeRelay) -> None:
    relay.fail_next(
        "task_submit",
        status=503,
        body='{"error":{"message":"当前分组 default 下对于模型 sora-2 无可用渠道",'
        '"code":"model_not_found"}}',
    )
    pool = pool_of(relay.url)
    with pytest.raises(ModelUnavailableError) as info:
        await collect(pool.generate(request()))
    assert info.value.refund


async def test_health_shows_offers_and_unknown_names(pool_of, relay: FakeRelay) -> None:
    relay.behaviour.models = ("sora-2", "VEO3-FAST", "gpt-4o-mini", "kling-v2")
    pool = pool_of(relay.url, catalogue=shipped_catalogue())
    report = await pool.health()
    assert report[0].listed and list(report[0].offers) == ["sora-2", "veo3-fast"]
    assert list(report[0].unknown) == ["gpt-4o-mini", "kling-v2"]
    assert pool.members[0].listed is not None  # health refreshed the cache
    assert pool.offered_models() == {"sora-2", "veo3-fast"}
    assert pool.offered_names() == {"sora-2", "veo3-fast"}


async def test_only_healthy_relays_count_for_the_menus(
    pool_of, relay: FakeRelay, backup: FakeRelay
) -> None:
    relay.behaviour.models = ("sora-2", "veo3-fast")
    backup.behaviour.models = ("sora-2",)
    pool = pool_of(relay.url, backup.url, catalogue=shipped_catalogue(), threshold=1, cooldown=1e6)
    await pool.refresh_offers()
    assert pool.offered_names() == {"sora-2", "veo3-fast"}
    relay.fail_next("task_submit", status=403, body='{"error":{"message":"用户额度不足"}}')
    await collect(pool.generate(request("a heron")))  # the first relay's breaker opens
    assert pool.members[0].breaker.state == "open"
    assert pool.offered_names() == {"sora-2"} and not pool.offers("veo3-fast")


# --- with the catalogue: formats, chat families ----------------------------------------


async def test_a_relay_whose_format_cannot_carry_a_model_never_gets_it(
    pool_of, relay: FakeRelay, clock: FakeClock
) -> None:
    relay.behaviour.models_answer = "absent"
    chat = RelayClient(relay.url, SecretStr(KEY), clock=clock, format="chat")
    pool = RelayPool([("chatty", chat)], clock=clock, catalogue=shipped_catalogue())
    try:
        await pool.refresh_offers()
        # No list: it may carry whatever the chat format carries, and Veo is task-only.
        assert pool.offered_models() == {"sora-2", "sora-2-pro"}
        assert pool.offers("sora-2") and not pool.offers("veo3-fast")
    finally:
        await pool.aclose()


async def test_a_chat_relay_offers_what_its_family_is_listed_as(
    pool_of, relay: FakeRelay, clock: FakeClock
) -> None:
    relay.behaviour.models = ("sora_video2-portrait", "sora_video2-landscape-hd", "gpt-4o")
    chat = RelayClient(relay.url, SecretStr(KEY), clock=clock, format="chat")
    pool = RelayPool([("chatty", chat)], clock=clock, catalogue=shipped_catalogue())
    try:
        await pool.refresh_offers()
        assert pool.offered_models() == {"sora-2", "sora-2-pro"}
        assert pool.unknown_names(pool.members[0]) == ["gpt-4o"]
        relay.behaviour.models = ("gpt-4o",)
        await pool.refresh_offers()
        assert pool.offered_models() == set()
    finally:
        await pool.aclose()
