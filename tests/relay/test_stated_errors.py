"""Errors a relay states inside a 200 answer are classified by what they say.

A chat `data: {"error": ...}` event, `❌ 生成失败: …` text, a task `fail_reason` and an
official `error` object are the relay's own words: upstream or server trouble is
"unavailable" (refunded), moderation is policy, and "unreadable answer" is kept for bodies
that cannot be parsed. The member's sentence never carries the relay's raw JSON or HTML.
"""

from __future__ import annotations

import json

import pytest

from bot.relay.errors import (
    ContentPolicyError,
    GenerationFailedError,
    InsufficientCreditError,
    InvalidResponseError,
    RelayError,
    UnavailableError,
    classify_failure,
)
from bot.relay.http import classify, error_fields
from bot.relay.official import parse_video
from bot.relay.polling import Snapshot, Status, failure_error
from bot.relay.task import parse_task

from .conftest import collect, req

UPSTREAM_TEXTS = [
    "server_error",
    "The server had an error while processing your request. Sorry about that!",
    "upstream error: do request failed",
    "上游服务返回错误",
    "当前分组上游负载已饱和，请稍后再试",
    "The engine is currently overloaded, please try again later",
    "upstream timeout",
    "请求超时",
    "服务器繁忙",
    "bad gateway from upstream",
    "service temporarily unavailable",
]
POLICY_TEXTS = [
    # Blames "the prompt or the output": a late refusal keeps the default (output).
    ("输入的提示词或视频的输出内容违反了OpenAI的相关服务政策，请调整提示词后进行重试", "output"),
    (
        "This content may violate our guardrails concerning similarity to third-party content.",
        "output",
    ),
    ("input image contains a real person", "image"),
]
RAW_BODIES = [
    '{"error":{"message":"","type":"server_error","code":null}}',
    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    '{"code":"fail","message":"upstream: {\\"error\\": \\"boom\\"}"}',
]


@pytest.mark.parametrize("text", UPSTREAM_TEXTS)
def test_upstream_and_server_words_are_unavailable_and_refunded(text):
    error = classify_failure(text)
    assert type(error) is UnavailableError
    assert error.refund and error.detail == text


@pytest.mark.parametrize("code", ["server_error", "upstream_error", "timeout"])
def test_a_stated_code_alone_decides_too(code):
    assert type(classify_failure("", code=code)) is UnavailableError


@pytest.mark.parametrize(("text", "stage"), POLICY_TEXTS)
def test_policy_words_stay_policy_and_name_the_stage(text, stage):
    error = classify_failure(text, default_stage="output")
    assert isinstance(error, ContentPolicyError)
    assert error.stage == stage and not error.refund


def test_policy_wins_over_upstream_words():
    error = classify_failure("upstream moderation: the prompt violates our policies")
    assert isinstance(error, ContentPolicyError) and error.stage == "prompt"


def test_credit_words_are_credit_and_anything_else_a_render_failure():
    assert type(classify_failure("用户额度不足")) is InsufficientCreditError
    assert type(classify_failure("video render failed: generation_failed")) is (
        GenerationFailedError
    )
    assert type(classify_failure("")) is GenerationFailedError


def test_a_stated_error_object_is_not_an_unreadable_answer():
    payload = {"error": {"message": "boom", "type": "server_error", "code": None}}
    message, code = error_fields(payload) or ("", "")
    assert "server_error" in code
    assert type(classify(message, code=code)) is UnavailableError
    both = {"error": {"message": "x", "type": "upstream_error", "code": "sora_failed"}}
    assert error_fields(both) == ("x", "sora_failed upstream_error")
    # A stated error with no words at all is the one that is unreadable.
    assert type(classify("", code="")) is InvalidResponseError


def test_a_wrapped_task_answer_stating_an_upstream_failure_is_unavailable():
    with pytest.raises(UnavailableError):
        parse_task({"code": "fail", "message": "上游服务器错误", "data": None})


def test_task_fail_reason_and_official_error_are_classified_by_their_words():
    snapshot = parse_task(
        {"task_id": "t1", "status": "FAILURE", "progress": "40%", "fail_reason": "upstream timeout"}
    )
    assert type(failure_error(snapshot, None)) is UnavailableError
    _, official = parse_video(
        {
            "id": "video_1",
            "status": "failed",
            "progress": 30,
            "error": {"code": "server_error", "message": "Internal error"},
        }
    )
    assert type(failure_error(official, None)) is UnavailableError
    late = Snapshot(Status.FAILED, 95.0, error="content moderation blocked it")
    policy = failure_error(late, None)
    assert isinstance(policy, ContentPolicyError) and policy.stage == "output"


async def test_through_the_relay_task_upstream_fail_reason_is_unavailable(relay, make_client):
    relay.behaviour.outcome = "failed"
    relay.behaviour.fail_reason = "upstream server_error: 上游服务不可用"
    with pytest.raises(UnavailableError) as info:
        await collect(make_client(format="task").generate(req()))
    assert info.value.refund
    assert relay.submits_for("a cat") == 1


async def test_through_the_relay_official_upstream_error_is_unavailable(relay, make_client):
    relay.behaviour.outcome = "failed"
    relay.behaviour.fail_reason = "The upstream service is overloaded"
    with pytest.raises(UnavailableError):
        await collect(make_client(format="official").generate(req()))


async def test_a_malformed_body_is_still_an_unreadable_answer(relay, make_client):
    relay.fail_next("task_submit", malformed=True)
    with pytest.raises(InvalidResponseError):
        await collect(make_client(format="task").generate(req()))


@pytest.mark.parametrize("raw", RAW_BODIES)
@pytest.mark.parametrize("status", [None, 200, 500])
def test_member_sentences_never_carry_raw_json_or_html(raw, status):
    """Whatever the relay said, the sentence is the class's own; the words stay in detail."""
    errors: list[RelayError] = [
        classify_failure(raw),
        classify(raw, status=status if status != 200 else None),
    ]
    try:
        fields = error_fields(json.loads(raw))
    except ValueError:
        fields = None
    if fields is not None:
        errors.append(classify(fields[0], code=fields[1]))
    for error in errors:
        sentence = error.user_message
        assert sentence == type(error).default_message or isinstance(error, ContentPolicyError)
        assert not any(mark in sentence for mark in '{}<>"'), sentence
