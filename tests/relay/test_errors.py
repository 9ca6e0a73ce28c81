"""Every failure maps to one error class; submits are never repeated; reads are retried."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from bot.relay.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InsufficientCreditError,
    InvalidResponseError,
    ModelUnavailableError,
    RateLimitedError,
    RelayError,
    UnavailableError,
)

from .conftest import KEY, collect, finished, req

CLOUDFLARE = (
    "<!DOCTYPE html><html><head><title>relay.example | 524: A timeout occurred</title></head>"
    "<body>Cloudflare</body></html>"
)
NGINX = (
    "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"
)


def err_body(message: str, code: str = "") -> str:
    import json

    return json.dumps(
        {"error": {"message": message, "type": "new_api_error", "code": code}}, ensure_ascii=False
    )


async def test_bad_key_is_authentication_error(relay, make_client):
    client = make_client(key="sk-wrong-key-000000")
    with pytest.raises(AuthenticationError) as info:
        await collect(client.generate(req()))
    assert info.value.status == 401
    assert relay.submits_for("a cat") == 0
    with pytest.raises(AuthenticationError):
        await client.list_models()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, err_body("该令牌额度已用尽 (request id: 1)"), InsufficientCreditError),
        (403, err_body("该令牌额度已用尽"), InsufficientCreditError),
        (403, err_body("用户额度不足, 剩余额度: $0.01"), InsufficientCreditError),
        (
            403,
            err_body("user quota is not enough", "insufficient_user_quota"),
            InsufficientCreditError,
        ),
        (403, err_body("access denied"), AuthenticationError),
        (401, err_body("无效的令牌"), AuthenticationError),
        (429, err_body("您已达到请求数限制：1分钟内最多请求10次"), RateLimitedError),
        (429, err_body("当前分组上游负载已饱和，请稍后再试"), RateLimitedError),
        (503, err_body("当前分组上游负载已饱和，请稍后再试"), RateLimitedError),
        (
            503,
            err_body("当前分组 default 下对于模型 sora-2 无可用渠道", "model_not_found"),
            ModelUnavailableError,
        ),
        (
            404,
            err_body("The model `sora-9` does not exist", "model_not_found"),
            ModelUnavailableError,
        ),
        (400, err_body("duration must be one of 10, 15, 25", "invalid_request"), BadRequestError),
        (400, err_body("Your prompt may violate our content policy"), ContentPolicyError),
        (500, CLOUDFLARE, UnavailableError),
        (502, NGINX, UnavailableError),
        (503, "Service Temporarily Unavailable", UnavailableError),
        (504, CLOUDFLARE, UnavailableError),
    ],
)
async def test_submit_errors_map_to_the_taxonomy(relay, make_client, status, body, error):
    content_type = (
        "text/html"
        if body.lstrip().startswith("<")
        else ("application/json" if body.startswith("{") else "text/plain")
    )
    relay.fail_next("submit", status=status, body=body, content_type=content_type)
    with pytest.raises(error) as info:
        await collect(make_client().generate(req()))
    assert info.value.status == status
    assert len(relay.requests_to("task_submit")) == 1  # a submit is never repeated
    assert relay.submits_for("a cat") == 0


async def test_policy_refusal_on_submit_names_the_stage(relay, make_client):
    relay.fail_next(
        "submit",
        status=400,
        body=err_body("The uploaded image contains a real person; moderation blocked"),
    )
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client().generate(req()))
    assert info.value.stage == "image"
    relay.fail_next("submit", status=400, body=err_body("prompt violates content policy"))
    with pytest.raises(ContentPolicyError) as info:
        await collect(make_client().generate(req()))
    assert info.value.stage == "prompt"


@pytest.mark.parametrize("retry_after", ["7", None])
async def test_429_on_submit_carries_retry_after_and_is_not_repeated(
    relay, make_client, retry_after
):
    headers = {"Retry-After": retry_after} if retry_after else {}
    relay.fail_next("submit", status=429, headers=headers)
    with pytest.raises(RateLimitedError) as info:
        await collect(make_client().generate(req()))
    assert info.value.retry_after == (7.0 if retry_after else None)
    assert len(relay.requests_to("submit")) == 1


@pytest.mark.parametrize("fmt", ["task", "official", "chat"])
@pytest.mark.parametrize(
    "fault", [{"status": 502, "body": NGINX, "content_type": "text/html"}, {"drop": True}]
)
async def test_failure_after_the_relay_accepted_is_not_resubmitted(relay, make_client, fmt, fault):
    relay.fail_next("submit", after_accept=True, **fault)
    with pytest.raises(UnavailableError):
        await collect(make_client(format=fmt).generate(req()))
    assert relay.submits_for("a cat") == 1
    assert len(relay.requests_to("submit")) == 1


async def test_read_timeout_after_accept_is_not_resubmitted(relay, make_client):
    release = asyncio.Event()
    relay.fail_next("submit", after_accept=True, wait=release)
    client = make_client(timeout=0.2)
    try:
        with pytest.raises(UnavailableError) as info:
            await collect(client.generate(req()))
    finally:
        release.set()
    assert "Timeout" in info.value.detail
    assert relay.submits_for("a cat") == 1
    assert len(relay.requests_to("submit")) == 1


async def test_connection_refused_is_unavailable_and_retried_before_any_byte(make_client, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(UnavailableError) as info:
        await collect(client.generate(req()))
    assert "ConnectError" in info.value.detail
    assert len(clock.slept) == 2  # submit retried only because nothing was sent
    with pytest.raises(UnavailableError):
        await client.list_models()


async def test_malformed_json_on_submit_is_invalid_response(relay, make_client):
    relay.fail_next("submit", malformed=True)
    with pytest.raises(InvalidResponseError):
        await collect(make_client().generate(req()))
    assert len(relay.requests_to("submit")) == 1


async def test_polls_are_retried_through_5xx_429_and_malformed_json(relay, make_client, clock):
    relay.fail_next("poll", status=502, body=NGINX, content_type="text/html")
    relay.fail_next("poll", status=429, headers={"Retry-After": "11"})
    relay.fail_next("poll", malformed=True)
    events = await collect(make_client().generate(req()))
    finished(events)
    assert 11.0 in clock.slept  # Retry-After honoured
    assert relay.submits_for("a cat") == 1


async def test_polls_outlast_a_run_of_failed_reads(relay, make_client, clock):
    """Issue 9 point 3 (was: four failed reads gave up): the relay holds the job and bills
    it, so ten proxy pages in a row are waited out with a growing backoff, then delivered."""
    relay.fail_next("poll", status=503, body=CLOUDFLARE, content_type="text/html", times=10)
    events = await collect(make_client().generate(req()))
    finished(events)
    assert len(relay.requests_to("poll")) >= 10 + 1
    assert relay.submits_for("a cat") == 1
    assert max(clock.slept) > 8.0  # the backoff grew past the old read retries


async def test_retry_after_is_capped(relay, make_client, clock):
    relay.fail_next("models", status=429, headers={"Retry-After": "86400"})
    assert await make_client().list_models()
    assert clock.slept == [60.0]


async def test_list_models_is_retried(relay, make_client):
    relay.fail_next("models", status=500, times=2)
    assert "sora-2" in await make_client().list_models()
    assert len(relay.requests_to("models")) == 3


async def test_key_never_appears_in_errors_or_logs(relay, make_client, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    echo = err_body(f"invalid key {KEY} for this group; 额度已用尽")
    relay.fail_next("submit", status=403, body=echo)
    relay.fail_next(
        "poll", status=500, body=f"upstream error for Bearer {KEY}", content_type="text/plain"
    )
    client = make_client()
    with pytest.raises(RelayError) as info:
        await collect(client.generate(req()))
    for text in (str(info.value), repr(info.value), info.value.detail, info.value.user_message):
        assert KEY not in text and KEY[3:-3] not in text
    events = await collect(client.generate(req("dog")))
    finished(events)
    assert KEY not in repr(client)
    assert KEY not in caplog.text
    out = capsys.readouterr()
    assert KEY not in out.out + out.err
