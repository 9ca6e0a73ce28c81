"""What a video costs: per duration, HD, and per model (issue 9, point 9)."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.catalogue import load_catalogue
from bot.fakes.relay import FakeRelay
from bot.jobs.costs import CostTable, CostTableError, Prices
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
    catalogue = load_catalogue(default["models_file"])
    table = Prices.from_settings(catalogue, default["cost_table"])  # the catalogue's prices
    prices = []
    for entry in catalogue:  # every model the bot offers (issue 11), not only sora
        for duration in entry.durations:
            for hd in (False, True):
                try:
                    asked = req(duration=duration, hd=hd, model=entry.name)
                    prices.append(table.cost(catalogue.resolve(asked)))
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


# --- Prices from the model catalogue (issue 11) ------------------------------------------


def resolved(catalogue, **fields: object) -> VideoRequest:
    return catalogue.resolve(req(**fields))


def test_the_catalogue_prices_every_model_as_the_old_default_table_did() -> None:
    catalogue = load_catalogue(None)
    prices = Prices(catalogue)
    old = CostTable.parse("10=1,15=2,25=4,hd=2,sora-2=1,sora-2-pro=3")
    for model, durations in (("sora-2", (10, 15)), ("sora-2-pro", (10, 15, 25))):
        for duration in durations:
            for hd in (False, True) if model == "sora-2-pro" else (False,):
                asked = resolved(catalogue, model=model, duration=duration, hd=hd)
                assert prices.cost(asked) == old.cost(asked), (model, duration, hd)
    part = prices.breakdown(resolved(catalogue, model="sora-2-pro", duration=15, hd=True))
    assert (part.base, part.hd_multiplier, part.model_factor, part.total) == (2, 2, 3, 12)
    veo = prices.breakdown(resolved(catalogue, model="veo3-fast"))
    assert (veo.duration, veo.base, veo.model_factor, veo.total) == (8, 2, 1, 2)


def test_an_operator_file_changes_a_price_without_code(tmp_path) -> None:
    path = tmp_path / "models.toml"
    path.write_text('[models."sora-2-pro"]\ncost = { 15 = 5 }\nhd_multiplier = 1.5\n')
    catalogue = load_catalogue(path)
    prices = Prices(catalogue)
    assert prices.cost(resolved(catalogue, model="sora-2-pro", duration=15)) == 5
    assert prices.cost(resolved(catalogue, model="sora-2-pro", duration=15, hd=True)) == 8  # 7.5
    assert prices.cost(resolved(catalogue, model="sora-2-pro", duration=10)) == 3  # unchanged


def test_cost_table_still_prices_the_durations_it_names_unless_models_file_does(
    tmp_path,
) -> None:
    """An operator who set COST_TABLE keeps those prices after the upgrade; a price set in
    MODELS_FILE (newer, per model) wins; the catalogue prices what the table can't."""
    shipped = load_catalogue(None)
    table = "10=2,15=4,25=8,hd=3"
    prices = Prices.from_settings(shipped, table)
    assert prices.cost(resolved(shipped, model="sora-2", duration=10)) == 2
    # Not named: pro keeps its catalogue factor ×3, as COST_TABLE always did.
    assert prices.cost(resolved(shipped, model="sora-2-pro", duration=15, hd=True)) == 36
    assert prices.cost(resolved(shipped, model="veo3")) == 4  # 8 s: the catalogue's
    assert prices.table_note() is not None and "10, 15, 25 s" in (prices.table_note() or "")
    path = tmp_path / "models.toml"
    path.write_text('[models."sora-2-pro"]\ncost = { 10 = 1 }\n')
    mine = load_catalogue(path)
    both = Prices.from_settings(mine, table)
    assert both.cost(resolved(mine, model="sora-2-pro", duration=10)) == 1  # MODELS_FILE
    assert both.cost(resolved(mine, model="sora-2-pro", duration=15)) == 6  # its file entry
    assert both.cost(resolved(mine, model="sora-2", duration=15)) == 4  # COST_TABLE
    assert Prices.from_settings(shipped, "").table is None


def test_no_model_name_is_priced_in_code() -> None:
    """The old default factors are the shipped catalogue's, not literals."""
    from bot.jobs.costs import DEFAULT_MODEL_FACTORS

    assert dict(DEFAULT_MODEL_FACTORS) == {"sora-2": 1.0, "sora-2-pro": 3.0}


async def test_an_unknown_model_or_a_broken_rule_is_refused_before_any_unit_is_reserved(
    open_engine,
) -> None:
    engine, _ = await open_engine()
    await engine.start()
    for fields in ({"model": "sora-9"}, {"model": "veo3-fast", "duration": 10}, {"hd": True}):
        with pytest.raises(InvalidRequest):
            await engine.submit(new_job("refused", **fields))
    assert await engine.db.quotas.ledger(1, limit=100) == []
    status = await engine.db.quotas.status(1, 10)
    assert status.user_used == 0 and status.guild_used == 0


async def test_a_veo_job_is_resolved_priced_and_sent_as_its_entry_says(
    open_engine, relay: FakeRelay
) -> None:
    relay.behaviour.models = (*relay.behaviour.models, "veo3-fast")  # the relay sells it
    engine, seen = await open_engine()
    await engine.start()
    job = await engine.submit(new_job("a red kite", model="veo3-fast", orientation="landscape"))
    await seen.wait_for(lambda _: job.id in seen.finished())
    assert (job.request.duration, job.cost) == (8, 2)
    final = seen.finished()[job.id].job
    assert final.status == "succeeded", (final.error_code, final.error_message)
    body = relay.requests_to("task_submit")[0].json
    assert (body["model"], body["duration"], body["aspect_ratio"]) == ("veo3-fast", "8", "16:9")
    assert await ledger_kinds(engine, job.id) == Counter(reserve=1, commit=1)
