"""Each wire format reads the model's catalogue entry (issue 11): the task aspect ratio and
HD, the official size, the chat family and its unnamed duration; a relay whose format the
entry lacks is never offered the job; the render-time prior is the entry's."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.catalogue import Catalogue, load_catalogue
from bot.clock import FakeClock
from bot.fakes.relay import FakeRelay
from bot.relay.client import RelayClient
from bot.relay.models import Submitted
from bot.relay.pool import RelayPool

from .conftest import KEY, collect, finished, req

OPERATOR = """
[models.wide-one]
formats = ["task", "official", "chat"]
chat = { family = "wide_chat", plain_duration = 6 }
durations = [6, 12]
hd = true
cost = { 6 = 1, 12 = 2 }
render_seconds = { 6 = 600, 12 = 900 }
orientations.landscape = { aspect_ratio = "21:9", size = "1680x720", hd_size = "2520x1080" }

[models.task-only]
formats = ["task"]
durations = [5]
cost = { 5 = 1 }
orientations.portrait = { aspect_ratio = "9:16" }
"""


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    path = tmp_path / "models.toml"
    path.write_text(OPERATOR)
    return load_catalogue(path)


async def test_task_body_reads_the_entry(relay, make_client, catalogue) -> None:
    client = make_client(format="task", catalogue=catalogue)
    await collect(
        client.generate(req(model="wide-one", duration=12, orientation="landscape", hd=True))
    )
    await collect(make_client(format="task").generate(req(model="veo3", duration=8)))
    wide, veo = (r.json for r in relay.requests_to("task_submit"))
    assert (wide["model"], wide["aspect_ratio"], wide["duration"], wide["hd"]) == (
        "wide-one",
        "21:9",
        "12",
        True,
    )
    assert (veo["model"], veo["aspect_ratio"], veo["duration"], veo["hd"]) == (
        "veo3",
        "9:16",
        "8",
        False,
    )


async def test_official_size_reads_the_entry(relay, make_client, catalogue) -> None:
    client = make_client(format="official", catalogue=catalogue)
    wide = req(model="wide-one", duration=6, orientation="landscape")
    await collect(client.generate(wide))
    await collect(client.generate(wide.model_copy(update={"hd": True})))
    sizes = [(r.form["size"], r.form["seconds"]) for r in relay.requests_to("official_submit")]
    assert sizes == [("1680x720", "6"), ("2520x1080", "6")]


@pytest.mark.parametrize(
    ("style", "fields", "model", "words"),
    [
        ("suffix", {"duration": 6}, "wide_chat-landscape", ""),
        ("suffix", {"duration": 12, "hd": True}, "wide_chat-landscape-hd-12s", ""),
        ("prefix", {"duration": 12}, "wide_chat", "横屏 12s "),
    ],
)
async def test_chat_family_and_its_unnamed_duration_come_from_the_entry(
    relay, make_client, catalogue, style, fields, model, words
) -> None:
    client = make_client(
        format="chat", chat_style=style, chat_model="sora_video2", catalogue=catalogue
    )
    await collect(
        client.generate(req("a bay", model="wide-one", orientation="landscape", **fields))
    )
    body = relay.requests_to("chat")[0].json
    assert body["model"] == model
    assert body["messages"][0]["content"] == f"{words}a bay"


async def test_the_relays_chat_model_still_carries_sora(relay, make_client) -> None:
    client = make_client(format="chat", chat_model="my_relays_sora")
    await collect(client.generate(req(model="sora-2-pro", duration=15)))
    assert relay.requests_to("chat")[0].json["model"] == "my_relays_sora-portrait-15s"


async def test_a_model_goes_only_to_relays_whose_format_its_entry_names(
    relay: FakeRelay, clock: FakeClock, catalogue: Catalogue
) -> None:
    async with FakeRelay(api_key=KEY) as tasks:
        pool = RelayPool(
            [
                (
                    "chat",
                    RelayClient(
                        relay.url, SecretStr(KEY), format="chat", clock=clock, catalogue=catalogue
                    ),
                ),
                (
                    "tasks",
                    RelayClient(
                        tasks.url, SecretStr(KEY), format="task", clock=clock, catalogue=catalogue
                    ),
                ),
            ],
            clock=clock,
            catalogue=catalogue,
        )
        try:
            only = req(model="task-only", duration=5)
            assert pool.format_for(only) == "task"  # the first relay that can carry it
            assert pool.format_for(req()) == "chat"
            events = await collect(pool.generate(only))
            assert next(e for e in events if isinstance(e, Submitted)).relay == "tasks"
            finished(events)
            assert relay.requests_to("chat") == [] and len(tasks.requests_to("task_submit")) == 1
        finally:
            await pool.aclose()


async def render_reads(clock: FakeClock, catalogue: Catalogue | None) -> int:
    """Status reads of a 10-minute render that reports no percent, with no history."""
    async with FakeRelay(api_key=KEY, clock=clock) as relay:
        relay.behaviour.render_seconds = 600
        relay.behaviour.report_progress = False
        kw = {} if catalogue is None else {"catalogue": catalogue}
        async with RelayClient(relay.url, SecretStr(KEY), clock=clock, **kw) as client:
            finished(
                await collect(
                    client.generate(req(model="wide-one", duration=6, orientation="landscape"))
                )
            )
        return len(relay.requests_to("task_poll"))


async def test_with_no_history_the_read_plan_starts_from_the_models_typical_time(
    catalogue: Catalogue,
) -> None:
    """The entry says 10 minutes: reads wait for then. Without it (the generic 2-minute
    guess) the job looks late for 8 minutes and is read far more often."""
    knows = await render_reads(FakeClock(), catalogue)
    guesses = await render_reads(FakeClock(), None)
    print(f"reads: {knows} with the entry, {guesses} without")
    assert knows < guesses, (knows, guesses)
