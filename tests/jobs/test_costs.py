"""What a video costs: per duration, HD, and per model (issue 9, point 9)."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.fakes.relay import FakeRelay
from bot.jobs.costs import CostTable, CostTableError
from bot.relay.models import InvalidRequest, VideoRequest
from bot.settings import Settings

from .conftest import new_job
from .test_engine import ledger_kinds


def req(**fields: object) -> VideoRequest:
    return VideoRequest.build(prompt="a lighthouse", **fields)


def test_sora_2_pro_costs_three_times_sora_2_by_default() -> None:
    table = CostTable.parse("10=1,15=2,25=4,hd=2,sora-2=1,sora-2-pro=3")
    assert table.cost(req()) == 1
    assert table.cost(req(model="sora-2-pro")) == 3
    assert table.cost(req(model="sora-2-pro", duration=15, hd=True)) == 12
    assert table.cost(req(model="sora-2-pro", duration=25)) == 12
    assert CostTable().cost(req(model="sora-2-pro", duration=15)) == 6


def test_the_default_daily_limit_fits_the_priciest_single_video() -> None:
    """With the default settings a member must be able to make any video the bot offers."""
    default = {name: field.default for name, field in Settings.model_fields.items()}
    table = CostTable.parse(default["cost_table"])
    prices = []
    for duration in (10, 15, 25):
        for hd in (False, True):
            for model in ("sora-2", "sora-2-pro"):
                try:
                    prices.append(table.cost(req(duration=duration, hd=hd, model=model)))
                except InvalidRequest:
                    continue  # a combination the relay does not offer
    assert max(prices) == 12  # 15 s HD sora-2-pro, or 25 s sora-2-pro (HD is moot at 25 s)
    assert default["quota_user_daily"] >= max(prices)
    assert default["quota_guild_monthly"] >= default["quota_user_daily"]


def test_a_table_without_model_entries_still_prices_pro() -> None:
    """An operator's older COST_TABLE must not make the expensive model cheap."""
    old = CostTable.parse("10=1,15=2,25=4,hd=2")
    assert old.cost(req(model="sora-2-pro")) == 3
    assert CostTable.parse("10=1,15=2,25=4,sora-2-pro=1").cost(req(model="sora-2-pro")) == 1


def test_factors_round_up_and_unknown_models_cost_one() -> None:
    table = CostTable.parse("10=1,15=2,25=5,hd=1.5,sora-2-pro=2.5,veo3-fast=0.5")
    assert table.cost(req(model="sora-2-pro", duration=15, hd=True)) == 8  # 2 × 1.5 × 2.5 = 7.5
    assert table.cost(req(model="veo3-fast")) == 1  # 0.5 rounds up: nothing is free
    assert table.cost(req(model="some-new-model", duration=15)) == 2
    part = table.breakdown(req(model="sora-2-pro", duration=15, hd=True))
    assert (part.base, part.hd_multiplier, part.model_factor, part.total) == (2, 1.5, 2.5, 8)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10=1,15=2,25=4,sora-2-pro=three", "is not a number"),
        ("10=1,15=2,25=4,sora-2-pro=0", "model factors"),
        ("10=1,15=2,25=4,sora-2-pro=-2", "model factors"),
        ("10=1,15=2,25=4,Sora 2=2", "names neither"),
        ("10=1,15=2,sora-2-pro=3", "no price for [25]"),
        ("10=1,15=2,25=4,sora-2-pro", "is not key=value"),
    ],
)
def test_a_bad_table_says_which_entry(text: str, says: str) -> None:
    with pytest.raises(CostTableError, match=r"^COST_TABLE") as info:
        CostTable.parse(text)
    assert says in str(info.value)


async def test_a_pro_job_reserves_and_refunds_its_factored_cost(
    open_engine, relay: FakeRelay
) -> None:
    relay.fail_next("task_submit", status=503, body="down", content_type="text/plain")
    engine, seen = await open_engine()
    await engine.start()
    failed = await engine.submit(new_job("a pro outage", model="sora-2-pro", duration=15))
    await seen.wait_for(lambda _: failed.id in seen.finished())
    done = await engine.submit(new_job("a pro render", model="sora-2-pro", duration=15))
    await seen.wait_for(lambda _: done.id in seen.finished())

    assert failed.cost == done.cost == 6
    entries = await engine.db.quotas.ledger(1, limit=100)
    units = Counter()
    for entry in entries:
        units[(entry.job_id, entry.kind)] += entry.units
    assert units[(failed.id, "reserve")] == units[(failed.id, "refund")] == 6
    assert units[(done.id, "reserve")] == units[(done.id, "commit")] == 6
    assert await ledger_kinds(engine, failed.id) == Counter(reserve=1, refund=1)
    status = await engine.db.quotas.status(1, 10)
    assert status.user_used == 6 and status.guild_used == 6
