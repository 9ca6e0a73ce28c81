"""The relay account-notice listener: only the secret path is answered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.relay.webhook import AccountNotice, NoticeReceiver

SECRET = "hook-secret-5f2c"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[NoticeReceiver, list[AccountNotice]]]:
    seen: list[AccountNotice] = []

    async def handle(notice: AccountNotice) -> None:
        seen.append(notice)

    server = NoticeReceiver(handle, secret=SECRET)
    await server.start()
    try:
        yield server, seen
    finally:
        await server.stop()


async def post(port: int, path: str) -> int:
    body = {"topic": "user_quota_too_low", "data": {"quota": 1}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"http://127.0.0.1:{port}{path}", json=body) as reply,
    ):
        return reply.status


@pytest.mark.parametrize(
    "path",
    [
        "/relay-webhook/%C3%A9t%C3%A9",  # é: a non-ASCII secret guess
        "/relay-webhook/%E5%AF%86%E9%92%A5/main",  # 密钥, with a relay name
        "/relay-webhook/%F0%9F%94%91",  # an emoji
        "/relay-webhook/%FF%FE",  # not even UTF-8
        "/relay-webhook/hook-secret-5f2",  # a prefix of the secret
    ],
)
async def test_a_wrong_or_non_ascii_secret_is_404_not_500(receiver, path):
    server, seen = receiver
    assert await post(server.port, path) == 404
    assert seen == []


async def test_the_secret_path_is_answered(receiver):
    server, seen = receiver
    assert await post(server.port, f"/relay-webhook/{SECRET}") == 204
    assert await post(server.port, f"/relay-webhook/{SECRET}/backup") == 204
    assert [n.relay for n in seen] == [None, "backup"]


async def test_a_non_ascii_secret_can_be_configured():
    seen: list[AccountNotice] = []

    async def handle(notice: AccountNotice) -> None:
        seen.append(notice)

    server = NoticeReceiver(handle, secret="密钥-5f2c")
    await server.start()
    try:
        assert await post(server.port, "/relay-webhook/%E5%AF%86%E9%92%A5-5f2c") == 204
        assert await post(server.port, "/relay-webhook/%E5%AF%86%E9%92%A5") == 404
    finally:
        await server.stop()
    assert len(seen) == 1
