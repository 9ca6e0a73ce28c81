"""`FakeRelay`: a real aiohttp server on 127.0.0.1 speaking every relay dialect we know.

Used by the tests and by the offline sandbox. Render time is counted in polls, not in
wall time, so a test decides exactly what the n-th poll answers. Jobs live in the
server, so a task submitted by one client can be polled by another (restart tests).

    async with FakeRelay(api_key="sk-test") as relay:
        relay.behaviour.render_polls = 5
        relay.behaviour.poll_dialect = "lower"
        relay.script(prompt_contains="ghost", outcome="policy")
        relay.fail_next("submit", status=503, body="<html>…</html>", content_type="text/html")
        relay.outage("poll", seconds=60, after=20)  # 502 nginx pages for a minute, mid-render
        relay.outage("poll", seconds=10, drop=True)  # connections reset for 10 s
        relay.requests_per_minute = 10  # new-api's per-key limit; refusals in rate_refusals
        ... RelayClient(relay.url, SecretStr("sk-test")) ...
        assert relay.submits_for("a cat") == 1

Endpoints (fault names): `task_submit`, `task_poll`, `official_submit`, `official_poll`,
`content` (GET /v1/videos/{id}/content, key required), `remix`, `chat`, `characters`,
`models`, `files`; and two groups: `submit` (every call
that creates a paid job: task_submit, official_submit, remix, chat) and `poll`
(task_poll, official_poll). A fault queued for an endpoint is used by its next request;
an `outage` answers every request in its window (timed on `clock` when one is given, the
bot's clock, so a test's minute-long outage passes in no real time).

`requests_per_minute` rations the key as new-api does: at most that many requests
carrying it in any 60 s (on the same clock, refused ones not counted); the next is refused
with `RATE_LIMIT_MESSAGE` as a 429 (or, with `rate_limit_status=200`, inside a 200) and
counted in `rate_refusals`.

`GET /v1/models` answers `behaviour.models` (`models_answer="list"`), or, as many relays
do, an error envelope (`"error"`), gin's plain `404 page not found` (`"absent"`) or an
HTML page (`"garbage"`). Besides Sora, the task endpoint renders the vendors' models of
`TASK_MODELS` (Veo) with their own ids (`veo3:…`), `platform`/`action` and options: a
duration, aspect ratio, HD or image count the model does not support is a 400 error
envelope, as relays answer. With `refuse_unlisted` a submit for a model the list does not
name is refused with new-api's `model_not_found` (no channel for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import aiohttp
from aiohttp import web

from bot.clock import Clock

Outcome = Literal["success", "policy", "failed", "never"]
ModelsAnswer = Literal["list", "error", "absent", "garbage"]


@dataclass(frozen=True)
class TaskModel:
    """A vendor's video model the fake sells through the task endpoint, with its own
    options (as strings on the wire) and how its tasks read (relay-api.md §2: Veo)."""

    name: str
    durations: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    hd: bool
    max_images: int
    id_prefix: str
    platform: str
    action: str


TASK_MODELS: dict[str, TaskModel] = {
    model.name: model
    for model in (
        TaskModel(name, ("8",), ("16:9", "9:16"), False, 1, "veo3", "google", "google-videos")
        for name in ("veo3-fast", "veo3")
    )
}

POLL_DIALECTS: tuple[str, ...] = (
    "upper",  # relay-api.md §2 as documented
    "lower",  # lower-case statuses, integer progress, top-level video_url
    "wrapped",  # {"code": "success", "data": {...upper...}}
    "outputs_list",  # link in data.outputs[0]
    "fail_reason_url",  # old relays: the link in fail_reason on SUCCESS
    "float_progress",  # progress 0.35, statuses running/completed, link in result_url
    "metadata",  # SUBMITTED/QUEUED/pending, link in metadata.url
)

OFFICIAL_LINKS: tuple[str, ...] = (
    "url",  # video_url and url, as relays do
    "none",  # OpenAI's own shape: no link; GET /v1/videos/{id}/content with the key
    "metadata",  # metadata.url
)

ENDPOINTS: tuple[str, ...] = (
    "task_submit",
    "task_poll",
    "official_submit",
    "official_poll",
    "content",
    "remix",
    "chat",
    "characters",
    "models",
    "files",
)
GROUPS: dict[str, tuple[str, ...]] = {
    "submit": ("task_submit", "official_submit", "remix", "chat"),
    "poll": ("task_poll", "official_poll"),
}

POLICY_REASON = "输入的提示词或视频的输出内容违反了OpenAI的相关服务政策，请调整提示词后进行重试"
FAILED_REASON = "video render failed: generation_failed"
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
RATE_LIMIT_MESSAGE = "您已达到请求数限制：{minutes}分钟内最多请求{count}次"
ODD_STATUS = "WARMING_UP"  # a status word no parser knows (relays invent new ones)
OFFICIAL_POLICY = (
    "This content may violate our guardrails concerning similarity to third-party content."
)


@dataclass
class Behaviour:
    """How the fake renders. Change `relay.behaviour` fields, or `relay.script(...)`."""

    render_polls: int = 4  # the poll that ends the job (1 = the first poll)
    render_seconds: float | None = None  # instead: ends this long after submit, on `clock`
    progress: Sequence[float] | None = None  # explicit percent per poll before the end
    outcome: Outcome = "success"
    fail_at_percent: float = 95.0
    fail_reason: str | None = None  # default: a policy or generic reason per outcome
    poll_dialect: str = "upper"
    official_created_ms: bool = False  # created_at in milliseconds
    official_size_word: bool = False  # size "small" instead of WxH
    official_link: str = "url"  # where a finished video object puts its link: one of OFFICIAL_LINKS
    content_redirect: bool = False  # /v1/videos/{id}/content answers 302 to a signed link
    chat_dialect: str = ""  # "" = the first of relay_chat.DIALECTS
    chat_json: bool = False  # answer the chat call with one chat.completion JSON
    chat_done: bool = True  # send data: [DONE]
    chat_finish_reason: str | None = "stop"  # None: never sent
    chat_keepalive: bool = True  # ": PING" comment lines between chunks
    chat_usage_chunk: bool = True  # a usage-only chunk with "choices": []
    chat_error_line: bool = False  # a failure as `data: {"error": ...}` instead of text
    chat_error_type: str = "upstream_error"  # the error line's "type"
    chat_error_code: str = "sora_failed"  # the error line's "code"
    chat_error_after_link: bool = False  # the link first, then the failure (text, or with
    # chat_error_line an error event)
    chat_seconds: float = 0.0  # spread the stream's chunks over this long (on `clock`)
    # Real seconds of silence (no bytes, no pings) after `chat_silence_after` deltas: what
    # the client's read timeout sees while a job waits upstream.
    chat_silence_seconds: float = 0.0
    chat_silence_after: int = 2
    chat_unterminated: bool = False  # the last event has no newline after it: the stream
    # just closes mid-line (use with chat_done=False, chat_finish_reason=None, no usage)
    signed_links: bool = False  # video links carry a signed query (`…mp4?se=…&sig=…`)
    video_bytes: int = 4096  # size of each fake MP4
    cdn_content_length: bool = True  # False: chunked, no Content-Length
    retry_after_hint: float | None = None  # Retry-After header on submit/poll answers
    not_found_polls: int = 0  # the first polls answer task_not_exist / 404 (not written yet)
    odd_status_polls: int = 0  # then this many answer the unknown status word ODD_STATUS
    report_progress: bool = True  # False: task polls carry no percent (progress "")
    # Task callbacks (`notify_hook` in the submit): POSTed the task object when it ends.
    callbacks: bool = True  # False: the relay never calls back (as many don't)
    hook_repeats: int = 1  # the finish callback is sent this many times (relays retry)
    hook_lies: int = 0  # callbacks sent while the task still renders (half-way through
    # a `render_seconds` render, else at once): a stranger's, or a relay's mistake
    models: tuple[str, ...] = (
        "sora-2",
        "sora-2-pro",
        "sora_video2",
        "sora_video2-portrait",
        "sora_video2-landscape",
    )
    models_answer: ModelsAnswer = "list"  # how GET /v1/models answers (see the module doc)
    refuse_unlisted: bool = False  # submits for a model `models` doesn't name: model_not_found

    def percents(self) -> list[float]:
        """Progress reported by polls 1 .. render_polls-1 (poll 1 is the queue)."""
        if self.progress is not None:
            return [float(p) for p in self.progress]
        steps = max(self.render_polls - 1, 0)
        return [0.0] + [round(85.0 * i / max(steps - 1, 1), 1) for i in range(1, steps)]


@dataclass
class Fault:
    """One injected misbehaviour. `status=None` answers normally after delay/wait."""

    status: int | None = None
    body: str | bytes | None = None  # None: a relay-style JSON error for `status`
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    after_accept: bool = False  # create the job first, then fail (the relay kept it)
    drop: bool = False  # close the connection without an answer
    delay: float = 0.0  # real seconds to wait before answering
    wait: asyncio.Event | None = None  # hold the answer until this is set
    arrived: asyncio.Event | None = None  # set when a request meets this fault
    malformed: bool = False  # 200 with a broken JSON body
    cut_after: int | None = None  # chat: close the stream after this many chunks
    # files: send this many bytes of the video, then hold the rest until `wait` is set
    stall_after: int | None = None


@dataclass
class Outage:
    """Every request to `endpoint` between `start` and `end` (on the relay's clock) fails."""

    endpoint: str
    start: float
    end: float
    fault: Fault
    hits: int = 0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    endpoint: str
    query: dict[str, str]
    headers: dict[str, str]  # the Authorization value is replaced by "<present>"
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> filename/size/type


@dataclass
class Job:
    id: str
    kind: Literal["task", "official", "chat"]
    prompt: str
    body: Any
    behaviour: Behaviour
    polls: int = 0
    created: int = 1760679942
    started: float = 0.0  # clock.monotonic() at submit, for render_seconds
    remixed_from: str | None = None


class FakeRelay:
    def __init__(
        self,
        api_key: str = "sk-test",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
    ) -> None:
        self.api_key = api_key
        self.clock = clock  # render time for `Behaviour.render_seconds` (share the client's)
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, Job] = {}
        self.characters: list[dict[str, Any]] = []
        self._host, self._port = host, port
        self._faults: dict[str, deque[Fault]] = {}
        self.outages: list[Outage] = []
        self._scripts: list[tuple[str, dict[str, Any]]] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self._hooks: dict[str, str] = {}  # task id -> its notify_hook, until it is called
        self._lies_sent: dict[str, int] = {}
        self._hook_ticker: asyncio.Task[None] | None = None
        #: Every callback made: (task id, the status word it carried, the HTTP answer).
        self.hook_calls: list[tuple[str, str, int]] = []
        # new-api's per-key request limit (None: none), and what it refused.
        self.requests_per_minute: int | None = None
        self.rate_limit_status = 429
        self.rate_refusals = 0
        self.rate_refused: list[RecordedRequest] = []
        self._key_hits: deque[float] = deque()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> FakeRelay:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v2/videos/generations", self._task_submit)
        app.router.add_get("/v2/videos/generations/{id}", self._task_poll)
        app.router.add_post("/v1/videos", self._official_submit)
        app.router.add_get("/v1/videos/{id}", self._official_poll)
        app.router.add_get("/v1/videos/{id}/content", self._content)
        app.router.add_post("/v1/videos/{id}/remix", self._remix)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/sora/v1/characters", self._characters)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/files/{name}", self._files)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def stop(self) -> None:
        if self._hook_ticker is not None:
            self._hook_ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hook_ticker
            self._hook_ticker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRelay:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- control ----------------------------------------------------------------------

    def script(self, *, prompt_contains: str, **overrides: Any) -> None:
        """Jobs whose prompt contains the text use `behaviour` with these fields changed."""
        names = {f.name for f in fields(Behaviour)}
        unknown = set(overrides) - names
        if unknown:
            raise TypeError(f"unknown Behaviour fields: {sorted(unknown)}")
        self._scripts.append((prompt_contains, overrides))

    def fail_next(self, endpoint: str, *, times: int = 1, **fault: Any) -> Fault:
        """Queue a fault for the next `times` requests to `endpoint` (or a group)."""
        if endpoint not in ENDPOINTS and endpoint not in GROUPS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS + tuple(GROUPS)}")
        made = Fault(**fault)
        self._faults.setdefault(endpoint, deque()).extend([made] * times)
        return made

    def now(self) -> float:
        """The relay's time: `clock` when it has one, real time otherwise."""
        return self.clock.monotonic() if self.clock is not None else time.monotonic()

    def outage(self, endpoint: str, *, seconds: float, after: float = 0.0, **fault: Any) -> Outage:
        """From `after` seconds from now, for `seconds`, every request to `endpoint` (or a
        group) fails: by default with nginx's 502 HTML page; `drop=True` resets the
        connection instead, or give any `Fault` fields. Jobs keep rendering meanwhile."""
        if endpoint not in ENDPOINTS and endpoint not in GROUPS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {ENDPOINTS + tuple(GROUPS)}")
        if not fault:
            fault = {"status": 502, "body": HTML_502, "content_type": "text/html"}
        start = self.now() + after
        made = Outage(endpoint, start, start + seconds, Fault(**fault))
        self.outages.append(made)
        return made

    def submits_for(self, prompt: str) -> int:
        """How many jobs the relay accepted whose prompt contains `prompt`."""
        return sum(1 for job in self.jobs.values() if prompt in job.prompt)

    def requests_other_than(self, *endpoints: str) -> list[RecordedRequest]:
        """Every request but those to `endpoints` (e.g. the bot's start-up `models` read,
        which costs nothing, when a test asks whether anything was spent)."""
        unwanted = {name for e in endpoints for name in GROUPS.get(e, (e,))}
        return [r for r in self.requests if r.endpoint not in unwanted]

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        wanted = GROUPS.get(endpoint, (endpoint,))
        return [r for r in self.requests if r.endpoint in wanted]

    def video_url(self, job_id: str) -> str:
        safe = job_id.replace(":", "_")
        url = f"{self.url}/files/{safe}.mp4"
        job = self.jobs.get(job_id)
        if job is not None and job.behaviour.signed_links:
            # A CDN's signed link, as relays hand them out (Azure-style SAS query).
            sig = hashlib.sha256(job_id.encode()).hexdigest()[:32]
            url += f"?se=2026-12-31T23%3A59%3A59Z&sp=r&sv=2024-08-04&sr=b&sig={sig}%3D"
        return url

    async def notify(self, url: str, topic: str, data: dict[str, Any]) -> int:
        """POST an account notice (e.g. `user_quota_too_low`) the way relays do; the status."""
        headers = {"Authorization": f"Bearer {self.api_key}"}
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, json={"topic": topic, "data": data}, headers=headers) as reply,
        ):
            return reply.status

    async def call_hook(self, job_id: str, *, url: str | None = None) -> int:
        """POST the task's current state to its `notify_hook` (or to `url`) now, as a
        relay's callback does; the HTTP status. Callable at any time, so a test can lie."""
        job = self.jobs[job_id]
        target = url or self._hooks.get(job_id) or str((job.body or {}).get("notify_hook", ""))
        task = self._task_json(job)
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, json=task) as reply,
        ):
            status = reply.status
        self.hook_calls.append((job_id, str(task.get("status", "")), status))
        return status

    async def _tick_hooks(self) -> None:
        """Call each pending task's hook when it ends (and lie first, if told to); render
        time runs on `clock`, so this looks every few real milliseconds."""
        while self._hooks:
            for job_id, _url in list(self._hooks.items()):
                job = self.jobs[job_id]
                b = job.behaviour
                lies = self._lies_sent.get(job_id, 0)
                status = self._state(job)[0]
                if status in ("SUCCESS", "FAILURE"):
                    del self._hooks[job_id]
                    # Repeats go out together, as a relay's retries of a slow answer do.
                    repeats = max(b.hook_repeats, 1)
                    await asyncio.gather(*(self._safe_hook(job_id) for _ in range(repeats)))
                elif lies < b.hook_lies and (
                    b.render_seconds is None or self.now() - job.started >= b.render_seconds / 2
                ):
                    self._lies_sent[job_id] = lies + 1
                    await self._safe_hook(job_id)
            await asyncio.sleep(0.005)
        self._hook_ticker = None

    async def _safe_hook(self, job_id: str) -> None:
        try:
            await self.call_hook(job_id)
        except (aiohttp.ClientError, OSError, ValueError):
            self.hook_calls.append((job_id, "unreachable", 0))

    def finish(self, job_id: str, outcome: Outcome = "success") -> None:
        """Make the job end with `outcome` on its next poll (e.g. one stuck by "never")."""
        job = self.jobs[job_id]
        job.behaviour = replace(
            job.behaviour, render_polls=job.polls + 1, progress=[], outcome=outcome
        )

    # --- plumbing ---------------------------------------------------------------------

    def _take_fault(self, endpoint: str) -> Fault | None:
        now = self.now()
        for outage in self.outages:
            wanted = GROUPS.get(outage.endpoint, (outage.endpoint,))
            if outage.start <= now < outage.end and endpoint in wanted:
                outage.hits += 1
                return outage.fault
        for name in (endpoint, *[g for g, members in GROUPS.items() if endpoint in members]):
            queue = self._faults.get(name)
            if queue:
                return queue.popleft()
        return None

    def _behaviour_for(self, prompt: str) -> Behaviour:
        behaviour = replace(self.behaviour)
        for needle, overrides in self._scripts:
            if needle in prompt:
                behaviour = replace(behaviour, **overrides)
        return behaviour

    async def _record(self, request: web.Request, endpoint: str) -> RecordedRequest:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        if "Authorization" in request.headers:
            headers["Authorization"] = "<present>"
        body: Any = None
        form: dict[str, str] = {}
        files: dict[str, dict[str, Any]] = {}
        if request.method == "POST":
            if request.content_type == "multipart/form-data":
                data = await request.post()
                for key, value in data.items():
                    if isinstance(value, web.FileField):
                        content = value.file.read()
                        files[key] = {
                            "filename": value.filename,
                            "size": len(content),
                            "content_type": value.content_type,
                            "data": content,
                        }
                    else:
                        form[key] = str(value)
            else:
                raw = await request.read()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
        recorded = RecordedRequest(
            request.method, request.path, endpoint, dict(request.query), headers, body, form, files
        )
        self.requests.append(recorded)
        return recorded

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    @staticmethod
    def _error(status: int, message: str, code: str = "", **headers: str) -> web.Response:
        body = {"error": {"message": message, "type": "new_api_error", "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.arrived is not None:
            fault.arrived.set()
        if fault.wait is not None:
            await fault.wait.wait()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            return await self._drop(request)
        if fault.malformed:
            return web.Response(
                text='{"task_id": "oops", "status": ', content_type="application/json"
            )
        if fault.status is None:
            return None
        if fault.body is None:
            text = json.dumps(
                {
                    "error": {
                        "message": _DEFAULT_MESSAGES.get(fault.status, "upstream error"),
                        "type": "new_api_error",
                        "code": "",
                    }
                },
                ensure_ascii=False,
            )
        elif isinstance(fault.body, bytes):
            text = fault.body.decode("utf-8", "replace")
        else:
            text = fault.body
        content_type, _, _charset = fault.content_type.partition(";")
        return web.Response(
            status=fault.status,
            text=text,
            content_type=content_type.strip(),
            charset="utf-8",
            headers=fault.headers,
        )

    @staticmethod
    async def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # nothing more to write; aiohttp ends the handler

    async def _guard(
        self, request: web.Request, endpoint: str
    ) -> tuple[RecordedRequest, Fault | None, web.StreamResponse | None]:
        """Record, check the key, and apply a before-accept fault. Returns an early answer."""
        recorded = await self._record(request, endpoint)
        if not self._authorised(request):
            return recorded, None, self._error(401, "无效的令牌 (request id: fake-401)")
        if not self._within_rate(recorded):
            message = RATE_LIMIT_MESSAGE.format(minutes=1, count=self.requests_per_minute)
            return recorded, None, self._error(self.rate_limit_status, message)
        fault = self._take_fault(endpoint)
        if fault is not None and not fault.after_accept and fault.cut_after is None:
            early = await self._apply_fault(request, fault)
            if early is not None:
                return recorded, None, early
            fault = None
        return recorded, fault, None

    def _refuse_model(self, body: dict[str, Any]) -> web.Response | None:
        """A task for a model this relay doesn't list, or with options its model doesn't
        support, is refused before anything is made (nothing billed)."""
        model = str(body.get("model") or "sora-2")
        if self.behaviour.refuse_unlisted and model not in self.behaviour.models:
            message = f"当前分组 default 下对于模型 {model} 无可用渠道"
            return self._error(503, message, "model_not_found")
        spec = TASK_MODELS.get(model)
        if spec is None:
            return None
        duration = str(body.get("duration", spec.durations[0]))
        if duration not in spec.durations:
            wanted = ", ".join(spec.durations)
            return self._error(400, f"{model}: duration must be one of {wanted}", "invalid_request")
        ratio = str(body.get("aspect_ratio", spec.aspect_ratios[0]))
        if ratio not in spec.aspect_ratios:
            return self._error(400, f"{model}: unsupported aspect_ratio {ratio}", "invalid_request")
        if body.get("hd") and not spec.hd:
            return self._error(400, f"{model} does not support hd", "invalid_request")
        if len(body.get("images") or []) > spec.max_images:
            return self._error(400, f"{model}: too many images", "invalid_request")
        return None

    def _within_rate(self, recorded: RecordedRequest) -> bool:
        """new-api's sliding window per key: a request is refused while `requests_per_minute`
        others were let through in the last 60 s; refused ones don't count."""
        if self.requests_per_minute is None:
            return True
        now = self.now()
        while self._key_hits and self._key_hits[0] <= now - 60.0:
            self._key_hits.popleft()
        if len(self._key_hits) >= self.requests_per_minute:
            self.rate_refusals += 1
            self.rate_refused.append(recorded)
            return False
        self._key_hits.append(now)
        return True

    def _hint_headers(self) -> dict[str, str]:
        hint = self.behaviour.retry_after_hint
        return {} if hint is None else {"Retry-After": f"{hint:g}"}

    def _new_job(self, kind: Literal["task", "official", "chat"], prompt: str, body: Any) -> Job:
        n = next(self._ids)
        if kind == "official":
            job_id = f"video_{n:04d}{secrets.token_hex(6)}"
        elif kind == "chat":
            job_id = f"task_01k8{n:04d}{secrets.token_hex(5)}"
        elif (spec := TASK_MODELS.get(str((body or {}).get("model") or ""))) is not None:
            job_id = f"{spec.id_prefix}:{1756693796 + n}-{secrets.token_hex(5)}"
        else:
            job_id = f"{n:04d}{secrets.token_hex(4)}-fake-task"
        job = Job(job_id, kind, prompt, body, self._behaviour_for(prompt))
        if self.clock is not None:
            job.started = self.clock.monotonic()
        self.jobs[job_id] = job
        return job

    # --- job state --------------------------------------------------------------------

    def _state(self, job: Job) -> tuple[str, float, str]:
        """(status word in upper dialect, percent, fail reason) after this poll."""
        b = job.behaviour
        if b.render_seconds is not None and self.clock is not None:
            elapsed = self.clock.monotonic() - job.started
            if elapsed < b.render_seconds:
                share = elapsed / b.render_seconds
                if share < 0.1:
                    return "NOT_START", 0.0, ""
                return "IN_PROGRESS", round(min(99.0, share * 100), 1), ""
        else:
            percents = b.percents()
            n = job.polls
            end = len(percents) + 1 if b.progress is not None else max(b.render_polls, 1)
            if n < end:
                percent = percents[n - 1] if 0 < n <= len(percents) else 0.0
                return ("NOT_START" if n <= 1 and percent == 0 else "IN_PROGRESS"), percent, ""
        match b.outcome:
            case "success":
                return "SUCCESS", 100.0, ""
            case "policy":
                return "FAILURE", b.fail_at_percent, b.fail_reason or POLICY_REASON
            case "failed":
                return "FAILURE", b.fail_at_percent, b.fail_reason or FAILED_REASON
            case "never":
                return "IN_PROGRESS", 99.0, ""

    def _task_json(self, job: Job) -> dict[str, Any]:
        status, percent, reason = self._state(job)
        url = self.video_url(job.id)
        dialect = job.behaviour.poll_dialect
        done = status == "SUCCESS"
        body = job.body if isinstance(job.body, dict) else {}
        spec = TASK_MODELS.get(str(body.get("model") or ""))
        task: dict[str, Any] = {
            "task_id": job.id,
            "platform": "openai" if spec is None else spec.platform,
            "action": "sora-video" if spec is None else spec.action,
            "status": status,
            "fail_reason": reason,
            "submit_time": job.created,
            "start_time": job.created + 15,
            "finish_time": job.created + 120 if status in ("SUCCESS", "FAILURE") else 0,
            "progress": f"{percent:g}%" if job.behaviour.report_progress else "",
            "data": {"output": url} if done else None,
            "search_item": "",
        }
        lower = {
            "NOT_START": "queued",
            "IN_PROGRESS": "processing",
            "SUCCESS": "succeeded",
            "FAILURE": "failed",
        }
        match dialect:
            case "upper":
                return task
            case "wrapped":
                return {"code": "success", "message": "", "data": task}
            case "lower":
                task.update(status=lower[status], progress=int(percent), data=None)
                if done:
                    task["video_url"] = url
                return task
            case "outputs_list":
                task["data"] = {"outputs": [url]} if done else None
                return task
            case "fail_reason_url":
                task["data"] = None
                if done:
                    task["fail_reason"] = url
                return task
            case "float_progress":
                words = {
                    "NOT_START": "pending",
                    "IN_PROGRESS": "running",
                    "SUCCESS": "completed",
                    "FAILURE": "failed",
                }
                task.update(status=words[status], progress=round(percent / 100, 4), data=None)
                if done:
                    task["result_url"] = url
                return task
            case "metadata":
                words = {
                    "NOT_START": "SUBMITTED" if job.polls <= 1 else "QUEUED",
                    "IN_PROGRESS": "IN_PROGRESS",
                    "SUCCESS": "SUCCESS",
                    "FAILURE": "FAILURE",
                }
                task.update(status=words[status], data=None)
                if done:
                    task["metadata"] = {"url": url, "duration": 10}
                return task
            case _:
                raise ValueError(f"unknown poll dialect {dialect!r}; one of {POLL_DIALECTS}")

    def _video_json(self, job: Job) -> dict[str, Any]:
        status, percent, reason = self._state(job) if job.polls else ("NOT_START", 0.0, "")
        words = {
            "NOT_START": "queued",
            "IN_PROGRESS": "in_progress",
            "SUCCESS": "completed",
            "FAILURE": "failed",
        }
        b = job.behaviour
        body = job.body if isinstance(job.body, dict) else {}
        video: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "model": body.get("model", "sora-2"),
            "status": words[status],
            "progress": int(percent),
            "created_at": job.created * 1000 if b.official_created_ms else job.created,
            "seconds": body.get("seconds", "10"),
            "size": "small" if b.official_size_word else body.get("size", "720x1280"),
            "error": None,
            "video_url": "",
        }
        if job.remixed_from:
            video["remixed_from_video_id"] = job.remixed_from
        if b.official_link == "none":
            del video["video_url"]  # OpenAI's object has no link field at all
        if status == "SUCCESS":
            match b.official_link:
                case "url":
                    video["video_url"] = video["url"] = self.video_url(job.id)
                case "metadata":
                    video["metadata"] = {"url": self.video_url(job.id)}
                case "none":
                    pass
                case other:
                    raise ValueError(f"unknown official_link {other!r}; one of {OFFICIAL_LINKS}")
        if status == "FAILURE":
            message = OFFICIAL_POLICY if b.outcome == "policy" and not b.fail_reason else reason
            video["error"] = {"code": "generation_failed", "message": message}
        return video

    # --- handlers ---------------------------------------------------------------------

    async def _task_submit(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self._guard(request, "task_submit")
        if early is not None:
            return early
        body = recorded.json
        if not isinstance(body, dict) or not body.get("prompt"):
            return self._error(400, "prompt is required", "invalid_request")
        if not isinstance(body.get("duration", "10"), str):
            return self._error(400, "duration must be a string", "invalid_request")
        refusal = self._refuse_model(body)
        if refusal is not None:
            return refusal
        job = self._new_job("task", str(body["prompt"]), body)
        hook = body.get("notify_hook")
        if isinstance(hook, str) and hook and job.behaviour.callbacks:
            self._hooks[job.id] = hook
            if self._hook_ticker is None:
                self._hook_ticker = asyncio.create_task(self._tick_hooks())
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        return web.json_response({"task_id": job.id}, headers=self._hint_headers())

    async def _task_poll(self, request: web.Request) -> web.StreamResponse:
        _, fault, early = await self._guard(request, "task_poll")
        if early is not None:
            return early
        job = self.jobs.get(request.match_info["id"])
        not_found = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
        if job is None or job.kind != "task":
            return web.json_response(not_found, status=400)
        job.polls += 1
        if job.polls <= job.behaviour.not_found_polls:
            return web.json_response(not_found, status=400)
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        task = self._task_json(job)
        if self._odd_poll(job):
            task["status"] = ODD_STATUS
        return web.json_response(task, headers=self._hint_headers(), dumps=_dumps)

    @staticmethod
    def _odd_poll(job: Job) -> bool:
        b = job.behaviour
        return b.not_found_polls < job.polls <= b.not_found_polls + b.odd_status_polls

    async def _official_submit(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self._guard(request, "official_submit")
        if early is not None:
            return early
        form = recorded.form
        if not form.get("prompt"):
            return self._error(400, "prompt is required (multipart form)", "invalid_request")
        refusal = self._refuse_model({"model": form.get("model") or "sora-2"})
        if refusal is not None:
            return refusal
        job = self._new_job("official", form["prompt"], dict(form))
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        return web.json_response(self._video_json(job), headers=self._hint_headers())

    async def _official_poll(self, request: web.Request) -> web.StreamResponse:
        _, fault, early = await self._guard(request, "official_poll")
        if early is not None:
            return early
        job = self.jobs.get(request.match_info["id"])
        if job is None or job.kind != "official":
            return self._error(404, "Video not found", "not_found")
        job.polls += 1
        if job.polls <= job.behaviour.not_found_polls:
            return self._error(404, "Video not found", "not_found")
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        video = self._video_json(job)
        if self._odd_poll(job):
            video["status"] = ODD_STATUS.lower()
        return web.json_response(video, headers=self._hint_headers())

    async def _content(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's download: the finished MP4 itself, for the key's owner only."""
        _, fault, early = await self._guard(request, "content")
        if early is not None:
            return early
        job = self.jobs.get(request.match_info["id"])
        if job is None or job.kind != "official":
            return self._error(404, "Video not found", "not_found")
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        if self._state(job)[0] != "SUCCESS" or not job.polls:
            return self._error(404, "Video is not ready yet", "video_not_ready")
        if job.behaviour.content_redirect:
            signed = f"{self.video_url(job.id)}?se=2026-12-31&sig={secrets.token_hex(8)}"
            raise web.HTTPFound(signed)
        return self._video_file(job.behaviour.video_bytes)

    def _video_file(self, size: int) -> web.Response:
        payload = (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * max(size - 12, 0))[:size]
        return web.Response(body=payload, content_type="video/mp4")

    async def _remix(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self._guard(request, "remix")
        if early is not None:
            return early
        source = self.jobs.get(request.match_info["id"])
        if source is None:
            return self._error(404, "Video not found", "not_found")
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if not body.get("prompt"):
            return self._error(400, "prompt is required", "invalid_request")
        job = self._new_job("official", str(body["prompt"]), body)
        job.remixed_from = source.id
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        return web.json_response(self._video_json(job), headers=self._hint_headers())

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, _fault, early = await self._guard(request, "models")
        if early is not None:
            return early
        match self.behaviour.models_answer:
            case "error":
                return self._error(500, "upstream error (request id: fake-models)")
            case "absent":  # gin's default for a route the relay doesn't have
                return web.Response(status=404, text="404 page not found")
            case "garbage":
                page = "<html><body>Welcome</body></html>"
                return web.Response(text=page, content_type="text/html")
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.behaviour.models]
        return web.json_response({"object": "list", "data": data})

    async def _characters(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self._guard(request, "characters")
        if early is not None:
            return early
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if ("url" in body) == ("from_task" in body):
            return self._error(400, "exactly one of url or from_task is required")
        try:
            start, end = (float(x) for x in str(body.get("timestamps", "")).split(","))
        except ValueError:
            return self._error(400, "timestamps must be 'start,end'")
        if not 1 <= end - start <= 3:
            return self._error(400, "timestamps must span 1 to 3 seconds")
        n = next(self._ids)
        character = {
            "id": f"ch_{n:04d}{secrets.token_hex(4)}",
            "username": f"fake{n}.cameo",
            "permalink": f"{self.url}/profile/fake{n}.cameo",
            "profile_picture_url": f"{self.url}/files/ch{n}.png",
        }
        self.characters.append({**body, **character})
        if fault is not None:
            return await self._apply_fault(request, fault) or web.Response(status=500)
        return web.json_response(character)

    async def _files(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault("files")
        self.requests.append(
            RecordedRequest(
                "GET",
                request.path,
                "files",
                dict(request.query),
                {k: v for k, v in request.headers.items()},
            )
        )
        stall = fault if fault is not None and fault.stall_after is not None else None
        if fault is not None and stall is None:
            early = await self._apply_fault(request, fault)
            if early is not None:
                return early
        size = self.behaviour.video_bytes
        payload = (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * max(size - 12, 0))[:size]
        if self.behaviour.cdn_content_length and stall is None:
            return web.Response(body=payload, content_type="video/mp4")
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        hold_at = (stall.stall_after or 0) // 1024 * 1024 if stall is not None else None
        for start in range(0, len(payload), 1024):
            if start == hold_at and stall is not None:
                if stall.arrived is not None:
                    stall.arrived.set()  # the first `stall_after` bytes are on the wire
                if stall.wait is not None:
                    await stall.wait.wait()
            await response.write(payload[start : start + 1024])
        await response.write_eof()
        return response

    # --- chat -------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded, fault, early = await self._guard(request, "chat")
        if early is not None:
            return early
        body = recorded.json if isinstance(recorded.json, dict) else {}
        prompt = _chat_prompt(body)
        if not body.get("model") or not prompt:
            return self._error(400, "model and messages are required", "invalid_request")
        job = self._new_job("chat", prompt, body)
        b = job.behaviour
        if fault is not None and fault.cut_after is None:
            early = await self._apply_fault(request, fault)
            if early is not None:
                return early
        percents = [p for p in b.percents() if p > 0] or [50.0]
        failure: str | None = None
        if b.outcome in ("policy", "failed"):
            failure = b.fail_reason or (POLICY_REASON if b.outcome == "policy" else FAILED_REASON)
            percents = [p for p in percents if p < b.fail_at_percent] + [b.fail_at_percent]
        dialect = b.chat_dialect or _chat_dialects()[0]
        after_link = b.chat_error_after_link and failure is not None
        deltas = _chat_deltas(
            dialect,
            video_url="" if b.outcome == "never" else self.video_url(job.id),
            task_id=job.id,
            percents=percents,
            failure=None if b.chat_error_line or after_link else failure,
        )
        error_line = b.chat_error_line and failure is not None
        if b.outcome == "never" or (error_line and not after_link):
            deltas = _before_link(deltas)
        elif after_link and not error_line:
            deltas.append({"content": f"\n\n> ❌ 生成失败: {failure}\n\n"})
        created = 0 if dialect.endswith("zero") else job.created
        if b.chat_json:
            text = _final_text(dialect, deltas, self.video_url(job.id), failure)
            answer = {
                "id": f"chatcmpl-{job.id}",
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
            }
            return web.json_response(answer, dumps=_dumps)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        cut_after = fault.cut_after if fault is not None else None
        sent = 0

        held: list[str] = []  # chat_unterminated: the latest line, held back so the last
        # one can be written without its newline

        async def send(line: str) -> None:
            if not b.chat_unterminated:
                await response.write(line.encode("utf-8"))
                return
            if held:
                await response.write(held.pop().encode("utf-8"))
            held.append(line)

        def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> str:
            obj: dict[str, Any] = {
                "id": f"chatcmpl-{job.id}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {_dumps(obj)}\n\n"

        await send(chunk({"role": "assistant", "content": ""}))
        step = b.chat_seconds / max(len(deltas), 1)
        for n, delta in enumerate(deltas):
            if step > 0:
                await (self.clock.sleep(step) if self.clock else asyncio.sleep(step))
            if b.chat_silence_seconds and n == b.chat_silence_after:
                await asyncio.sleep(b.chat_silence_seconds)
            if cut_after is not None and sent >= cut_after:
                if fault is not None and fault.wait is not None:
                    await fault.wait.wait()
                return await self._drop(request)
            if b.chat_keepalive:
                await send(": PING\n\n")
            await send(chunk(delta))
            sent += 1
        if error_line:
            err = {
                "error": {
                    "message": failure,
                    "type": b.chat_error_type,
                    "code": b.chat_error_code,
                }
            }
            await send(f"data: {_dumps(err)}\n\n")
        if b.chat_finish_reason is not None:
            await send(chunk({}, b.chat_finish_reason))
        if b.chat_usage_chunk:
            usage = {
                "id": f"chatcmpl-{job.id}",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
            }
            await send(f"data: {_dumps(usage)}\n\n")
        if b.chat_done:
            await send("data: [DONE]\n\n")
        if held:
            await response.write(held.pop().rstrip("\n").encode("utf-8"))
        await response.write_eof()
        return response


_DEFAULT_MESSAGES = {
    400: "invalid request",
    401: "无效的令牌",
    403: "该令牌额度已用尽",
    404: "not found",
    429: "您已达到请求数限制",
    500: "upstream error (request id: fake-500)",
    502: "bad gateway",
    503: "当前分组上游负载已饱和，请稍后再试",
}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _chat_prompt(body: dict[str, Any]) -> str:
    texts: list[str] = []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") == "text"
            ]
    return "\n".join(texts)


def _before_link(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The deltas up to (not including) the one where a link starts: a stream that dies."""
    seen = ""
    for n, delta in enumerate(deltas):
        seen += "".join(str(v or "") for k, v in delta.items() if k != "role")
        if "http" in seen:
            return deltas[:n]
    return deltas


def _final_text(
    dialect: str, deltas: list[dict[str, Any]], video_url: str, failure: str | None
) -> str:
    """The message content of a non-streamed answer in this dialect."""
    if dialect != "minimal":
        try:
            from bot.fakes.relay_chat import final_message
        except ImportError:
            pass
        else:
            return final_message(dialect, video_url=video_url, failure=failure)
    return "".join(str(d.get("content") or "") for d in deltas)


def _chat_dialects() -> tuple[str, ...]:
    try:
        from bot.fakes.relay_chat import DIALECTS
    except ImportError:
        return ("minimal",)
    return tuple(DIALECTS)


def _chat_deltas(
    dialect: str,
    *,
    video_url: str,
    task_id: str,
    percents: Sequence[float],
    failure: str | None,
) -> list[dict[str, Any]]:
    if dialect != "minimal":
        try:
            from bot.fakes.relay_chat import chat_deltas
        except ImportError:
            pass
        else:
            return list(
                chat_deltas(
                    dialect,
                    video_url=video_url,
                    task_id=task_id,
                    percents=[int(p) for p in percents],
                    failure=failure,
                )
            )
    # A minimal stand-in until bot/fakes/relay_chat.py exists: the documented markdown.
    deltas: list[dict[str, Any]] = [
        {"content": f"> ID: `{task_id}`\n"},
        {"content": "> ⌛️ 任务正在队列中，请耐心等待...\n"},
    ]
    deltas += [{"content": f"> 🏃 进度：{p:.1f}%\n"} for p in percents]
    if failure is not None:
        deltas.append({"content": f"> ❌ 生成失败: {failure}\n"})
    elif video_url:
        deltas.append({"content": f"> ✅ 视频生成成功，[点击这里]({video_url}) 查看视频~~~\n"})
    return deltas
