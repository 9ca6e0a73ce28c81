"""Fixtures: a real FakeRelay on loopback and clients that talk to it on a FakeClock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.models import Event, Finished, VideoRequest

KEY = "sk-test-0123456789abcdef"


@pytest.fixture
async def relay() -> AsyncIterator[FakeRelay]:
    async with FakeRelay(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_client(
    relay: FakeRelay, clock: FakeClock
) -> AsyncIterator[Callable[..., RelayClient]]:
    made: list[RelayClient] = []

    def make(**kw: Any) -> RelayClient:
        kw.setdefault("clock", clock)
        base = kw.pop("base_url", relay.url)
        key = kw.pop("key", KEY)
        client = RelayClient(base, SecretStr(key), **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


def finished(events: list[Event]) -> Finished:
    assert isinstance(events[-1], Finished), events
    assert sum(isinstance(e, Finished) for e in events) == 1
    return events[-1]


def req(prompt: str = "a cat walks across a piano", **kw: Any) -> VideoRequest:
    return VideoRequest.build(prompt=prompt, **kw)
