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
    BadRequestError,
    InvalidResponseError,
    TaskNotFoundError,
    GenerationFailedError,
    TimedOutError,
    StreamInterruptedError,
)

ERRORS_BY_CODE: dict[str, type[RelayError]] = {cls.code: cls for cls in ALL_ERRORS}
