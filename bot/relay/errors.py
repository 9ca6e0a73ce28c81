"""One error taxonomy for every relay failure.

Each class carries a stable `code` (for translations and the job history), a sentence a
user can act on, and two flags: `retryable` (trying again later may work) and `refund`
(the user's quota comes back because the fault is not theirs). The relay client raises
only these; httpx exceptions never escape it.
"""

from __future__ import annotations

from typing import ClassVar, Literal

PolicyStage = Literal["prompt", "image", "output", "unknown"]


class RelayError(Exception):
    """Base class: something went wrong talking to the relay."""

    code: ClassVar[str] = "relay_error"
    default_message: ClassVar[str] = "The video service failed; please try again later."
    retryable: ClassVar[bool] = False
    refund: ClassVar[bool] = True
    #: The relay certainly did not take the job (refused outright, or never reached), so
    #: the job may go to another relay without any risk of being billed twice.
    rejected: ClassVar[bool] = False

    def __init__(
        self,
        detail: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
        user_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail or self.default_message)
        self.detail = detail
        self.status = status
        self.request_id = request_id
        #: The relay's `Retry-After`, when it sent one: how long it asked us to wait.
        self.retry_after = retry_after
        self.user_message = user_message or self.default_message
        self.unreached = False  # set when the request never left this machine

    @property
    def safe_to_resubmit(self) -> bool:
        return self.rejected or self.unreached

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, detail={self.detail!r})"


class ContentPolicyError(RelayError):
    """The prompt, an image, or the finished video was refused by moderation."""

    code = "content_policy"
    default_message = (
        "The video was refused by the content policy; change the prompt or images and try again."
    )
    refund = False

    def __init__(self, detail: str = "", *, stage: PolicyStage = "unknown", **kw: object) -> None:
        super().__init__(detail, **kw)  # type: ignore[arg-type]
        self.stage = stage
        if "user_message" not in kw:
            self.user_message = _POLICY_MESSAGES[stage]


_POLICY_MESSAGES: dict[PolicyStage, str] = {
    "prompt": "The prompt was refused by the content policy; reword it and try again.",
    "image": "A reference image was refused by the content policy (no real people); "
    "use another image.",
    "output": "The finished video was refused by the content policy; change the prompt "
    "and try again.",
    "unknown": ContentPolicyError.default_message,
}


class AuthenticationError(RelayError):
    """The relay rejected the key (401, or 403 without a credit reason)."""

    code = "relay_auth"
    rejected = True
    default_message = "The bot's video service key was rejected; ask a server admin to check it."


class InsufficientCreditError(RelayError):
    """The relay account or key has run out of credit."""

    code = "relay_credit"
    rejected = True
    default_message = "The bot's video service account is out of credit; ask a server admin."


class RateLimitedError(RelayError):
    """429 from the relay: too many requests, or the upstream is saturated."""

    code = "rate_limited"
    rejected = True
    default_message = "The video service is busy; try again in a minute."
    retryable = True

    def __init__(self, detail: str = "", *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(detail, retry_after=retry_after, **kw)  # type: ignore[arg-type]


class UnavailableError(RelayError):
    """5xx, timeouts, refused connections, or a proxy's HTML page instead of the API."""

    code = "relay_unavailable"
    default_message = "The video service is unreachable right now; try again in a few minutes."
    retryable = True


class ModelUnavailableError(RelayError):
    """The relay offers no channel for this model right now."""

    code = "model_unavailable"
    rejected = True
    default_message = "That model is not available on the video service right now; try another."


class ModelNotOfferedError(ModelUnavailableError):
    """No healthy relay's `/v1/models` lists the job's model: nothing was sent anywhere."""

    code = "model_not_offered"
    default_message = "No video service offers this model right now; pick another model."


class BadRequestError(RelayError):
    """The relay rejected the parameters (400). Our request was wrong, not the user."""

    code = "bad_request"
    default_message = "The video service rejected the request's options; try different options."


class InvalidResponseError(RelayError):
    """The relay answered something we cannot read: malformed JSON, missing fields."""

    code = "invalid_response"
    default_message = "The video service sent an unreadable answer; please try again."
    retryable = True


class TaskNotFoundError(RelayError):
    """The relay no longer knows the task id we hold."""

    code = "task_not_found"
    default_message = "The video service lost track of this video; please try again."


class GenerationFailedError(RelayError):
    """The relay reported a failure that is not a policy refusal."""

    code = "generation_failed"
    default_message = "The video failed to render; please try again."


class TimedOutError(RelayError):
    """The task did not finish before its deadline."""

    code = "timed_out"
    default_message = "The video took too long to render and was abandoned; please try again."


class StreamInterruptedError(RelayError):
    """A chat stream ended before it delivered a link (it cannot be resumed)."""

    code = "stream_interrupted"
    default_message = "The connection to the video service dropped mid-render; please try again."
    retryable = True


ALL_ERRORS: tuple[type[RelayError], ...] = (
    RelayError,
    ContentPolicyError,
    AuthenticationError,
    InsufficientCreditError,
    RateLimitedError,
    UnavailableError,
    ModelUnavailableError,
    ModelNotOfferedError,
    BadRequestError,
    InvalidResponseError,
    TaskNotFoundError,
    GenerationFailedError,
    TimedOutError,
    StreamInterruptedError,
)

ERRORS_BY_CODE: dict[str, type[RelayError]] = {cls.code: cls for cls in ALL_ERRORS}


# --- reading what a relay says -------------------------------------------------------
# Relays state failures in words (English, Chinese, error codes); these tables are the
# one place those words are kept, for HTTP errors and for failures stated inside a 200.

_POLICY_WORDS = (
    "违反",
    "违规",
    "政策",
    "审核",
    "安全",
    "敏感",
    "不当",
    "policy",
    "policies",
    "guardrail",
    "moderation",
    "moderated",
    "sensitive",
    "violat",
    "inappropriate",
    "nsfw",
    "content_filter",
    "safety",
    "third-party content",
    "public figure",
    "real person",
    "real people",
    "realistic person",
    "真人",
    "人脸",
)
_IMAGE_WORDS = (
    "image",
    "图片",
    "图像",
    "照片",
    "参考图",
    "input_reference",
    "real person",
    "real people",
    "photorealistic",
    "真人",
)
_OUTPUT_WORDS = ("output", "输出", "generated video", "生成的视频", "similarity")
_PROMPT_WORDS = ("prompt", "提示词", "提示语", "文本")
_CREDIT_WORDS = (
    "额度已用尽",
    "额度不足",
    "余额不足",
    "用户额度",
    "insufficient_user_quota",
    "insufficient_quota",
    "quota",
    "credit",
    "balance",
    "预扣费",
)
_AUTH_WORDS = (
    "无效的令牌",
    "令牌已过期",
    "令牌已被禁用",
    "invalid token",
    "invalid api key",
    "invalid_api_key",
    "incorrect api key",
    "unauthorized",
)
_MODEL_WORDS = ("无可用渠道", "model_not_found", "model not found", "does not exist or you do not")
_RATE_WORDS = (
    "您已达到请求数限制",
    "分钟内最多请求",
    "负载已饱和",
    "rate limit",
    "rate_limit",
    "too many requests",
)


# Infrastructure, not the member's request: the relay's upstream failed, timed out or is
# overloaded. Trying again later may work, and the member is not charged.
_UPSTREAM_WORDS = (
    "server_error",
    "server error",
    "server had an error",
    "internal error",
    "internal_error",
    "upstream",
    "上游",
    "负载",
    "overload",
    "saturated",
    "capacity",
    "timeout",
    "timed out",
    "time out",
    "超时",
    "bad gateway",
    "gateway",
    "service unavailable",
    "unavailable",
    "temporarily",
    "try again later",
    "稍后再试",
    "稍后重试",
    "繁忙",
    "服务器",
    "服务异常",
    "系统错误",
    "网络错误",
    "connection",
    "连接",
)


def _has(text: str, words: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(word in lowered for word in words)


def says_auth(text: str) -> bool:
    """The key itself was refused (and not for want of credit)."""
    return _has(text, _AUTH_WORDS) and not _has(text, _CREDIT_WORDS)


def says_credit(text: str) -> bool:
    return _has(text, _CREDIT_WORDS)


def says_model(text: str) -> bool:
    return _has(text, _MODEL_WORDS)


def says_rate(text: str) -> bool:
    return _has(text, _RATE_WORDS)


def looks_upstream(text: str) -> bool:
    """The failure is the relay's or its upstream's (server error, overload, timeout)."""
    return _has(text, _UPSTREAM_WORDS)


def looks_like_policy(text: str) -> bool:
    return _has(text, _POLICY_WORDS)


def guess_stage(text: str, default: PolicyStage) -> PolicyStage:
    """Which moderation step refused: the image, the prompt, or the finished video."""
    if _has(text, _IMAGE_WORDS):
        return "image"
    prompt, output = _has(text, _PROMPT_WORDS), _has(text, _OUTPUT_WORDS)
    if prompt and not output:
        return "prompt"
    if output and not prompt:
        return "output"
    return default


def classify_failure(
    message: str,
    *,
    code: str = "",
    default_stage: PolicyStage = "prompt",
    request_id: str | None = None,
) -> RelayError:
    """A failure the relay states in an answer we could read, classified by what it says.

    For a chat `data: {"error": ...}` event or `❌ 生成失败: …` text, a task `fail_reason`,
    an official `error` object. It is the relay's definite answer (never retried as a
    failed read): moderation words are a policy refusal (charged), a key, credit or
    model complaint is that, upstream or server trouble is `UnavailableError` (refunded),
    anything else a plain render failure. "Unreadable answer" is kept for bodies that
    cannot be parsed at all. A pure function of the words, so any polling loop can use it.
    """
    text = f"{message} {code}".strip()
    detail = message.strip() or code.strip()
    if not detail:
        reason = "the relay reported a failure without a reason"
        return GenerationFailedError(reason, request_id=request_id)
    if says_auth(text):
        return AuthenticationError(detail, request_id=request_id)
    if says_credit(text):
        return InsufficientCreditError(detail, request_id=request_id)
    if says_model(text):
        return ModelUnavailableError(detail, request_id=request_id)
    if looks_like_policy(text):
        stage = guess_stage(text, default_stage)
        return ContentPolicyError(detail, stage=stage, request_id=request_id)
    if looks_upstream(text):
        return UnavailableError(detail, request_id=request_id)
    if says_rate(text):
        return RateLimitedError(detail, request_id=request_id)
    return GenerationFailedError(detail, request_id=request_id)
