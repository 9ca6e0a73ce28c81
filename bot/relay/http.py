"""The one HTTP seam to a relay: auth, error mapping, and the retry policy.

Everything that leaves this module is a `RelayError` subclass; httpx exceptions never
escape. Two kinds of call:

- **reads** (`get_json`): polls and listings, safe to repeat. Retried on 408/409/429/5xx and
  connection errors with capped exponential backoff and jitter, `Retry-After` honoured up
  to a cap; every sleep goes through the injected `Clock`.
- **submits** (`post_json`, `post_form`, `open_stream`): calls that create a paid job.
  Once a byte may have reached the relay they are never repeated: only a refused
  connection (`httpx.ConnectError`, `httpx.ConnectTimeout`) is retried. A timeout, a 5xx
  or a dropped connection after sending may mean the relay accepted the job, so the
  error is raised and the caller decides (usually: fail the job, refund, tell the user).

The relay key is read from its `SecretStr` in exactly one place (`_auth_header`) and is
redacted from any text a relay echoes back before it reaches an exception or a log.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import random
import re
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

import httpx
from httpx_sse import EventSource, aconnect_sse
from pydantic import SecretStr

from bot.clock import Clock, Pacer, SystemClock
from bot.relay.budget import Priority, RequestBudget
from bot.relay.errors import (
    AuthenticationError,
    BadRequestError,
    ContentPolicyError,
    InsufficientCreditError,
    InvalidResponseError,
    ModelUnavailableError,
    PolicyStage,
    RateLimitedError,
    RelayError,
    TaskNotFoundError,
    UnavailableError,
    classify_failure,
    guess_stage,
    looks_like_policy,
    says_auth,
    says_credit,
    says_model,
    says_rate,
)

log = logging.getLogger("bot.relay")

REDACTED = "[redacted]"
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for reads only."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    submit_connect_retries: int = 2

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * (0.5 + rng.random() / 2)


RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


@dataclass(frozen=True, slots=True)
class Reply:
    """A decoded JSON answer and the server's `Retry-After` hint, if any."""

    data: Any
    retry_after: float | None
    status: int


# --- classifying relay messages -------------------------------------------------------


def classify(
    message: str,
    *,
    status: int | None = None,
    code: str = "",
    retry_after: float | None = None,
    policy_stage: PolicyStage = "prompt",
    request_id: str | None = None,
) -> RelayError:
    """One relay failure (status and/or text) as the error class a user can act on.

    `status=None`: the failure was stated inside a readable 200 answer; what it says
    decides (`classify_failure`), and "unreadable" is left for bodies that say nothing.
    """
    text = f"{message} {code}".strip()
    kw: dict[str, Any] = {"status": status, "request_id": request_id, "retry_after": retry_after}
    detail = message or code or (f"HTTP {status}" if status else "relay error")
    if "task_not_exist" in text:
        return TaskNotFoundError(detail, **kw)
    if says_auth(text):
        return AuthenticationError(detail, **kw)
    if says_credit(text) or status == 402:
        return InsufficientCreditError(detail, **kw)
    if says_model(text):
        return ModelUnavailableError(detail, **kw)
    if says_rate(text) or status == 429:
        return RateLimitedError(detail, **kw)
    if looks_like_policy(text):
        return ContentPolicyError(detail, stage=guess_stage(text, policy_stage), **kw)
    if status is None:
        if not text:
            return InvalidResponseError("the relay stated an error without any words", **kw)
        return classify_failure(
            message, code=code, default_stage=policy_stage, request_id=request_id
        )
    if status in (401, 403):
        return AuthenticationError(detail, **kw)
    if status == 404:
        return TaskNotFoundError(detail, **kw)
    if status in RETRY_STATUSES or status >= 500:
        return UnavailableError(detail, **kw)
    if 400 <= status < 500:
        return BadRequestError(detail, **kw)
    return InvalidResponseError(detail, **kw)


def error_fields(payload: Any) -> tuple[str, str] | None:
    """(message, code) from `{"error": {...}}`, `{"error": "..."}` or `{"message", "code"}`."""
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    if isinstance(error, Mapping):
        # Both the code and the type name the failure ("sora_failed", "server_error").
        words = dict.fromkeys(str(error.get(key) or "") for key in ("code", "type"))
        return str(error.get("message") or ""), " ".join(word for word in words if word)
    if isinstance(error, str) and error:
        return error, ""
    if "message" in payload and ("code" in payload or "success" in payload):
        return str(payload.get("message") or ""), str(payload.get("code") or "")
    return None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    from datetime import UTC, datetime

    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:200].lower()
    return "html" in content_type or head.startswith(("<!doctype", "<html", "<head", "<body"))


# --- did a submit reach the relay? ----------------------------------------------------


@dataclass
class SubmitWatch:
    """Whether a submit made in this context may have reached a relay, which may then bill.

    A cancel that lands before the relay answered must know whether to refund: nothing is
    billed while the request is still connecting, waiting out a 429 or retrying a refused
    connection, but once its first byte was written the relay may have taken the job.
    """

    may_have_reached: bool = False


_submit_watch: ContextVar[SubmitWatch | None] = ContextVar("relay_submit_watch", default=None)


@contextmanager
def watch_submits() -> Iterator[SubmitWatch]:
    """Record, for the submits made inside the block (same task), whether any may have
    reached a relay."""
    watch = SubmitWatch()
    token = _submit_watch.set(watch)
    try:
        yield watch
    finally:
        _submit_watch.reset(token)


def _watch_extensions(watch: SubmitWatch | None) -> dict[str, Any]:
    """httpcore's `trace` hook: it names each step, so we see the request start to be written
    (after connecting, before the relay can have read a byte of it)."""
    if watch is None:
        return {}

    async def trace(event: str, info: Mapping[str, Any]) -> None:
        if ".send_request" in event or ".receive_response" in event:
            watch.may_have_reached = True

    return {"trace": trace}


def _refused(watch: SubmitWatch | None) -> None:
    """The attempt certainly did not leave a job at the relay (refused, or never reached)."""
    if watch is not None:
        watch.may_have_reached = False


# --- the client ----------------------------------------------------------------------


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Building a TLS context costs ~0.1 s; every client shares one."""
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover
        return ssl.create_default_context()


MAX_READS_IN_FLIGHT = 8


class RelayHTTP:
    """One `httpx.AsyncClient` for one relay, plus a bare client for CDN downloads."""

    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout: float = 30.0,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        polls_per_second: float = 5.0,
        stream_idle: float = 600.0,
        requests_per_minute: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # A chat stream may be silent for minutes while the job waits upstream; only
        # that silence, not one request's `timeout`, ends it.
        self._stream_timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0), read=stream_idle)
        self.clock: Clock = clock or SystemClock()
        self._pacer = Pacer(polls_per_second, self.clock)
        # Every request to this relay, whatever it is for, takes a slot of this budget.
        self.budget = RequestBudget(requests_per_minute, self.clock)
        self._relay_origin = httpx.URL(self.base_url).netloc
        # Few reads in flight: a long queue inside httpx's pool costs more CPU than waiting.
        self._reads = asyncio.Semaphore(MAX_READS_IN_FLIGHT)
        self.retry = retry or RetryPolicy()
        self._rng = random.Random()
        self._api_key = api_key
        self._secret_re = self._secret_pattern(api_key)
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={**self._auth_header(), "User-Agent": "sora-relay-bot/0.1"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=limits,
            follow_redirects=False,
            verify=_tls_context(),
        )
        # The CDN is not the relay: no auth header ever goes there.
        self._cdn = httpx.AsyncClient(
            timeout=httpx.Timeout(max(timeout, 60.0), connect=min(timeout, 10.0)),
            follow_redirects=True,
            transport=transport,
            headers={"User-Agent": "sora-relay-bot/0.1"},
            verify=_tls_context(),
        )

    def _auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    @staticmethod
    def _secret_pattern(api_key: SecretStr) -> re.Pattern[str] | None:
        raw = api_key.get_secret_value()
        if len(raw) < 4:
            return None
        # Relays echo keys whole or masked-in-the-middle; hide the whole key and its body.
        parts = [re.escape(raw)]
        if len(raw) >= 12:
            parts.append(re.escape(raw[3:-3]))
        return re.compile("|".join(parts))

    def redact(self, text: str) -> str:
        if self._secret_re is None or not text:
            return text
        return self._secret_re.sub(REDACTED, text)

    def __repr__(self) -> str:
        return f"RelayHTTP(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self.budget.aclose()
        await self._client.aclose()
        await self._cdn.aclose()

    # --- mapping --------------------------------------------------------------------

    def error_from_response(
        self, response: httpx.Response, text: str, *, policy_stage: PolicyStage = "prompt"
    ) -> RelayError:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        request_id = response.headers.get("x-request-id") or response.headers.get(
            "x-oneapi-request-id"
        )
        content_type = response.headers.get("content-type", "")
        text = self.redact(text)
        if _is_html(text, content_type) and status != 401:
            title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
            what = title.group(1).strip() if title else "an HTML page"
            return UnavailableError(
                f"HTTP {status} from a proxy in front of the relay: {what[:120]}",
                status=status,
                request_id=request_id,
                retry_after=retry_after,
            )
        message, code = "", ""
        try:
            fields = error_fields(json.loads(text)) if text.strip() else None
        except ValueError:
            fields = None
        if fields is not None:
            message, code = fields
        else:
            message = text.strip()
        message = message[:MAX_DETAIL_CHARS]
        err = classify(
            message or f"HTTP {status}",
            status=status,
            code=code,
            retry_after=retry_after,
            policy_stage=policy_stage,
            request_id=request_id,
        )
        if isinstance(err, RateLimitedError):
            self.budget.refused(retry_after, message)
        return err

    def error_from_payload(
        self, payload: Any, *, policy_stage: PolicyStage = "prompt"
    ) -> RelayError | None:
        """A `{"error": {...}}` object inside a 200 answer or an SSE line, as an error."""
        fields = error_fields(payload)
        if fields is None:
            return None
        message, code = fields
        err = classify(
            self.redact(message)[:MAX_DETAIL_CHARS], code=code, policy_stage=policy_stage
        )
        if isinstance(err, RateLimitedError):
            self.budget.refused(None, message)
        return err

    def error_from_exception(self, exc: Exception, what: str) -> RelayError:
        detail = self.redact(f"{what}: {type(exc).__name__}: {exc}")[:MAX_DETAIL_CHARS]
        return UnavailableError(detail)

    def decode(self, response: httpx.Response, text: str) -> Any:
        content_type = response.headers.get("content-type", "")
        if _is_html(text, content_type):
            raise UnavailableError(
                f"HTTP {response.status_code}: the relay answered an HTML page instead of JSON",
                status=response.status_code,
            )
        try:
            return json.loads(text)
        except ValueError:
            snippet = self.redact(text.strip())[:120]
            raise InvalidResponseError(
                f"HTTP {response.status_code}: not JSON: {snippet!r}", status=response.status_code
            ) from None

    # --- reads ----------------------------------------------------------------------

    async def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        not_found_is_task: bool = False,
        paced: bool = False,
        retries: int | None = None,
    ) -> Reply:
        """GET with the read retry policy. `paced` reads (task polls) share the relay's
        poll budget, so a thousand jobs in flight cost no more than a few polls a second.
        `retries` overrides the policy's count: a status poll passes 0 because its own loop
        waits out an outage with a longer backoff (see `bot.relay.polling`)."""
        max_retries = self.retry.max_retries if retries is None else max(retries, 0)
        priority = Priority.STATUS if paced else Priority.LISTING
        attempt = 0
        while True:
            if paced:
                await self._pacer.wait()
            try:
                return await self._get_once(path, params, not_found_is_task, priority)
            except (UnavailableError, RateLimitedError, InvalidResponseError) as err:
                if attempt >= max_retries or not _retryable(err):
                    raise
                delay = self.retry.delay(attempt, err.retry_after, self._rng)
                log.info("relay read %s failed (%s); retry in %.1fs", path, err.code, delay)
                attempt += 1
                await self.clock.sleep(delay)

    async def _get_once(
        self,
        path: str,
        params: Mapping[str, str] | None,
        not_found_is_task: bool,
        priority: Priority = Priority.LISTING,
    ) -> Reply:
        # A read waiting here has not failed: it has not been sent yet.
        try:
            async with await self.budget.slot(priority), self._reads:
                response = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise self.error_from_exception(exc, f"GET {path}") from None
        text = response.text
        if response.status_code >= 400:
            err = self.error_from_response(response, text)
            if response.status_code == 404 and not not_found_is_task:
                raise BadRequestError(
                    f"GET {path}: not found on this relay ({err.detail})", status=404
                )
            raise err
        data = self.decode(response, text)
        fields = error_fields(data)
        if fields is not None and says_rate(" ".join(fields)):
            # new-api also refuses with a 200 whose body says "1分钟内最多请求10次".
            refusal = self.error_from_payload(data)
            if refusal is not None:
                raise refusal
        return Reply(
            data,
            parse_retry_after(response.headers.get("retry-after")),
            response.status_code,
        )

    # --- submits --------------------------------------------------------------------

    async def post_json(self, path: str, body: Mapping[str, Any]) -> Reply:
        return await self._submit(path, json=body)

    async def post_form(
        self, path: str, data: Mapping[str, str], files: Mapping[str, tuple[str, bytes, str]]
    ) -> Reply:
        # Always multipart (httpx would send url-encoded without a file): fields as
        # filename-less parts.
        parts: list[tuple[str, tuple[str | None, str | bytes, str | None]]] = [
            (name, (None, value, None)) for name, value in data.items()
        ]
        parts += [(name, (fn, content, ctype)) for name, (fn, content, ctype) in files.items()]
        return await self._submit(path, files=parts)

    async def _submit(self, path: str, **kwargs: Any) -> Reply:
        idem = {"Idempotency-Key": str(uuid.uuid4())}
        watch = _submit_watch.get()
        attempt = 0
        while True:
            # Waiting for the budget sends nothing: a cancel here is refunded.
            slot = await self.budget.slot(Priority.SUBMIT)
            try:
                response = await self._client.post(
                    path, headers=idem, extensions=_watch_extensions(watch), **kwargs
                )
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the relay: safe to try again.
                slot.answered()
                _refused(watch)
                if attempt >= self.retry.submit_connect_retries:
                    raise _unreached(self.error_from_exception(exc, f"POST {path}")) from None
                delay = self.retry.delay(attempt, None, self._rng)
                log.info("relay unreachable for POST %s; retry in %.1fs", path, delay)
                attempt += 1
                await self.clock.sleep(delay)
            except httpx.HTTPError as exc:
                # The request may have been accepted: never repeat it.
                raise self.error_from_exception(exc, f"POST {path} (not retried)") from None
            finally:
                slot.answered()
        text = response.text
        if response.status_code >= 400:
            error = self.error_from_response(response, text)
            if error.safe_to_resubmit:
                _refused(watch)
            raise error
        data = self.decode(response, text)
        err = (
            self.error_from_payload(data) if isinstance(data, Mapping) and "error" in data else None
        )
        if err is not None:
            raise err
        return Reply(
            data, parse_retry_after(response.headers.get("retry-after")), response.status_code
        )

    @asynccontextmanager
    async def open_stream(self, path: str, body: Mapping[str, Any]) -> AsyncIterator[EventSource]:
        """POST that answers Server-Sent Events (chat). Same no-repeat rule as other submits.

        Reads wait up to `stream_idle` seconds (the answer's headers too: some relays hold
        them while the job is queued upstream).

        The caller checks `source.response` for a JSON (non-streamed) answer.
        """
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        watch = _submit_watch.get()
        attempt = 0
        async with AsyncExitStack() as stack:
            while True:
                slot = await self.budget.slot(Priority.SUBMIT)
                try:
                    source = await stack.enter_async_context(
                        aconnect_sse(
                            self._client,
                            "POST",
                            path,
                            json=body,
                            headers=headers,
                            extensions=_watch_extensions(watch),
                            timeout=self._stream_timeout,
                        )
                    )
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    slot.answered()
                    _refused(watch)
                    if attempt >= self.retry.submit_connect_retries:
                        raise _unreached(self.error_from_exception(exc, f"POST {path}")) from None
                    attempt += 1
                    await self.clock.sleep(self.retry.delay(attempt - 1, None, self._rng))
                except httpx.HTTPError as exc:
                    raise self.error_from_exception(exc, f"POST {path} (not retried)") from None
                finally:
                    slot.answered()  # at the headers: the stream may last minutes
            response = source.response
            if response.status_code >= 400:
                try:
                    text = (await response.aread()).decode("utf-8", "replace")
                except httpx.HTTPError:
                    text = ""
                error = self.error_from_response(response, text)
                if error.safe_to_resubmit:
                    _refused(watch)
                raise error
            yield source

    # --- files --------------------------------------------------------------------

    async def download(self, location: str, *, max_bytes: int, attempts: int = 4) -> bytes | None:
        """The finished file in memory; None if it is larger than `max_bytes`."""
        buffer = io.BytesIO()
        if not await self.fetch_into(location, buffer, max_bytes=max_bytes, attempts=attempts):
            return None
        return buffer.getvalue()

    async def fetch_into(
        self, location: str, sink: BinaryIO, *, max_bytes: int | None, attempts: int = 4
    ) -> bool:
        """Stream a finished video into `sink` (a seekable file or buffer), retrying 5xx.

        `location` is a public link (fetched without the relay's auth header) or a path on
        this relay starting with "/" (`GET /v1/videos/{id}/content`: the relay key, in the
        Authorization header only). A relay that redirects the path to a signed URL is
        followed there without the key. False if the file is larger than `max_bytes`
        (nothing useful is left in `sink` then).
        """
        last = ""
        for attempt in range(attempts):
            if attempt:
                await self.clock.sleep(self.retry.delay(attempt - 1, None, self._rng))
            sink.seek(0)
            sink.truncate()
            try:
                outcome = await self._fetch_once(location, sink, max_bytes)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
                continue
            if isinstance(outcome, bool):
                return outcome
            last = outcome
        what = "the relay's video file" if location.startswith("/") else "the video link"
        raise UnavailableError(f"{what} failed {attempts} times (last: {last})")

    async def _fetch_once(self, location: str, sink: BinaryIO, max_bytes: int | None) -> bool | str:
        """One try: True/False as `fetch_into`, or a reason string worth another try."""
        if location.startswith("/"):
            async with self._budgeted(self._client, location) as response:
                if response.is_redirect and response.headers.get("location"):
                    # A signed link elsewhere: the key stays with the relay.
                    location = str(response.url.join(response.headers["location"]))
                else:
                    return await self._stream_body(response, sink, max_bytes, relay=True)
        async with self._budgeted(self._cdn, location) as response:
            return await self._stream_body(response, sink, max_bytes, relay=False)

    @asynccontextmanager
    async def _budgeted(
        self, client: httpx.AsyncClient, location: str
    ) -> AsyncIterator[httpx.Response]:
        """A streamed GET; one budget slot if it goes to the relay's own host (a path, or a
        link there), counted when its headers arrive. A CDN elsewhere has its own limits."""
        to_relay = location.startswith("/") or httpx.URL(location).netloc == self._relay_origin
        slot = await self.budget.slot(Priority.DOWNLOAD) if to_relay else None
        try:
            async with client.stream("GET", location) as response:
                if slot is not None:
                    slot.answered()
                yield response
        finally:
            if slot is not None:
                slot.answered()

    async def _stream_body(
        self, response: httpx.Response, sink: BinaryIO, max_bytes: int | None, *, relay: bool
    ) -> bool | str:
        status = response.status_code
        if status == 429 and relay:
            self.budget.refused(parse_retry_after(response.headers.get("retry-after")))
        if status >= 500 or status in (408, 425, 429) or (relay and status == 404):
            return f"HTTP {status}"  # a relay may not serve the file the moment it says done
        if status >= 400:
            if relay:
                text = (await response.aread()).decode("utf-8", "replace")
                raise self.error_from_response(response, text)
            raise UnavailableError(f"the video link answered HTTP {status}", status=status)
        length = response.headers.get("content-length")
        if max_bytes is not None and length is not None and length.isdigit():
            if int(length) > max_bytes:
                return False
        total = 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if max_bytes is not None and total > max_bytes:
                return False
            sink.write(chunk)
        return True


def _retryable(err: RelayError) -> bool:
    if isinstance(err, RateLimitedError):
        return True
    if isinstance(err, InvalidResponseError):
        return True
    return err.status is None or err.status in RETRY_STATUSES or err.status >= 500


def _unreached(error: RelayError) -> RelayError:
    """Mark a submit that never reached the relay: another relay may take the job."""
    error.unreached = True
    return error
