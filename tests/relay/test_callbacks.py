"""Relay callbacks (`notify_hook`): one read of our own task, never a verdict.

The loopback relay POSTs the hook to the real notice listener when a task ends; reads
are counted, not timed (the relay's render time runs on a fast ScaledClock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock, ScaledClock
from bot.fakes.relay import FakeRelay
from bot.relay.callbacks import COALESCE_SECONDS, Callbacks, Hook
from bot.relay.client import RelayClient
from bot.relay.errors import UnavailableError
from bot.relay.estimate import EARLY_READ
from bot.relay.models import Finished
from bot.relay.polling import Answer, Snapshot, Status, Unanswered, poll_events
from bot.relay.pool import callback_url
from bot.relay.webhook import AccountNotice, NoticeReceiver, callback_task_id

from .conftest import KEY, collect, finished, req

SECRET = "cb-secret-7d1e"


def test_a_callback_for_a_task_not_ours_is_ignored() -> None:
    callbacks = Callbacks(FakeClock())
    with callbacks.expect("main", "task-1") as wake:
        assert not callbacks.ring("main", "task-2")  # another task
        assert not callbacks.ring("backup", "task-1")  # the same id at another relay
        assert not wake.is_set
        assert callbacks.ring("main", "task-1") and wake.is_set
    assert not callbacks.ring("main", "task-1")  # no longer polled
    assert callbacks.ignored == 3 and len(callbacks) == 0


def test_callbacks_together_make_one_read() -> None:
    clock = FakeClock()
    callbacks = Callbacks(clock)
    with callbacks.expect("main", "t") as wake:
        assert callbacks.ring("main", "t")
        assert not callbacks.ring("main", "t")  # already due
        wake.answered()  # the read goes out
        clock.advance(COALESCE_SECONDS / 2)
        assert not callbacks.ring("main", "t") and not wake.is_set  # the same news
        clock.advance(COALESCE_SECONDS)
        assert callbacks.ring("main", "t") and wake.is_set  # later: worth a read
        assert wake.rung == 4


@pytest.mark.parametrize(
    ("body", "task_id"),
    [
        ({"task_id": "abc", "status": "SUCCESS"}, "abc"),
        ({"code": "success", "data": {"task_id": "abc"}}, "abc"),
        ({"id": 42}, "42"),
        ({"status": "SUCCESS"}, None),
        (["abc"], None),
        ({"task_id": True}, None),
    ],
)
def test_the_task_a_callback_names(body: object, task_id: str | None) -> None:
    assert callback_task_id(body) == task_id


@pytest.fixture
async def listener() -> AsyncIterator[tuple[NoticeReceiver, Callbacks, ScaledClock]]:
    clock = ScaledClock(60.0)  # a 60 s render in a real second
    callbacks = Callbacks(clock)
    notices: list[AccountNotice] = []

    async def handle(notice: AccountNotice) -> None:
        notices.append(notice)

    server = NoticeReceiver(handle, secret=SECRET, callbacks=callbacks)
    await server.start()
    try:
        yield server, callbacks, clock
    finally:
        await server.stop()


async def post(url: str, body: object) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as reply:
        return reply.status


async def test_the_callback_route_needs_the_secret_and_a_task(listener) -> None:
    server, callbacks, _ = listener
    base = f"http://127.0.0.1:{server.port}"
    with callbacks.expect("main", "t1") as wake:
        assert await post(f"{base}/relay-callback/wrong/main", {"task_id": "t1"}) == 404
        assert await post(f"{base}/relay-callback/{SECRET}/main", {"status": "x"}) == 400
        assert not wake.is_set
        assert await post(f"{base}/relay-callback/{SECRET}/main", {"task_id": "zz"}) == 204
        assert not wake.is_set and callbacks.ignored == 1  # same answer, nothing done
        assert await post(callback_url(base, SECRET, "main"), {"task_id": "t1"}) == 204
        assert wake.is_set


async def render_with_callbacks(
    server: NoticeReceiver, registry: Callbacks, clock: ScaledClock, **behaviour: object
) -> tuple[FakeRelay, int]:
    """A 60 s task render whose submit carries the hook: (the relay, its status reads)."""
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.behaviour.render_seconds = 60
        for name, value in behaviour.items():
            setattr(relay.behaviour, name, value)
        url = callback_url(f"http://127.0.0.1:{server.port}", SECRET, "main")
        hook = Hook(url, "main", registry)
        async with RelayClient(relay.url, SecretStr(KEY), clock=clock, hook=hook) as client:
            events = await collect(client.generate(req("a heron lands"), deadline=600))
        assert finished(events).result.url
        submit = relay.requests_to("task_submit")[0]
        assert submit.json["notify_hook"] == url
        assert len(registry) == 0  # nothing listens once the job ended
        return relay, len(relay.requests_to("task_poll"))


async def test_with_callbacks_a_60_s_render_costs_at_most_two_reads(listener) -> None:
    relay, reads = await render_with_callbacks(*listener)
    assert reads <= 2, reads
    assert [status for _, status, _ in relay.hook_calls] == ["SUCCESS"]


async def test_duplicate_callbacks_cost_one_read(listener) -> None:
    relay, reads = await render_with_callbacks(*listener, hook_repeats=4)
    assert len(relay.hook_calls) == 4
    assert reads <= 2, reads


async def test_a_lying_callback_costs_one_read_and_changes_nothing(listener) -> None:
    # A callback half-way through says "look now": the read says rendering, so the job
    # goes on, and is delivered when the real one comes.
    relay, reads = await render_with_callbacks(*listener, hook_lies=1)
    assert [status for _, status, _ in relay.hook_calls] == ["IN_PROGRESS", "SUCCESS"]
    assert reads <= 3, reads


async def test_a_relay_that_never_calls_back_is_still_read(listener) -> None:
    # The safety net: slow reads still find the finish (no deadline passes meanwhile).
    relay, reads = await render_with_callbacks(*listener, callbacks=False)
    assert relay.hook_calls == [] and 2 <= reads <= 4


async def test_a_callback_reads_at_once_and_a_failed_read_still_ends_nothing() -> None:
    """Issue 9's rule holds under callbacks: the woken read fails (the relay is down), so
    the job goes on with its backoff, and only the relay's definite answer ends it."""
    clock = FakeClock()
    callbacks = Callbacks(clock)
    start = clock.monotonic()
    reads: list[float] = []
    answers: list[Answer] = [
        Snapshot(Status.RUNNING, 10.0),
        Unanswered(UnavailableError("502 from the proxy")),
        Snapshot(Status.RUNNING, 40.0),
        Snapshot(Status.SUCCEEDED, 100.0, url="https://cdn.example/v.mp4"),
    ]
    with callbacks.expect("main", "t") as wake:

        async def fetch() -> tuple[Answer, float | None]:
            reads.append(clock.monotonic() - start)
            if len(reads) == 1:
                assert callbacks.ring("main", "t")  # a callback lands during the first read
            if len(reads) == 3:
                assert callbacks.ring("main", "t")  # and another, later
            return answers[len(reads) - 1], None

        events = [
            event
            async for event in poll_events(
                fetch,
                clock=clock,
                started=start,
                deadline=1200.0,
                expected=120.0,
                relay_id="t",
                fmt="task",
                wake=wake,
            )
        ]
    assert isinstance(events[-1], Finished)
    assert reads[0] == EARLY_READ
    assert reads[1] == reads[0]  # woken: read at once, no wait
    assert reads[2] > reads[1] + 1  # that read failed: back off, don't give up
    assert reads[3] == reads[2]  # the second callback: at once again
