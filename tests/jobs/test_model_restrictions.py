"""A server's allowed models hold in the engine itself: a command, a rerun and a remix of
a model the admins took away are refused before any quota is reserved."""

from __future__ import annotations

import pytest

from bot.catalogue import Catalogue, shipped_catalogue
from bot.fakes.relay import FakeRelay
from bot.jobs.defaults import ModelNotAllowedError
from bot.jobs.engine import Requester
from bot.relay.models import InvalidRequest

from .conftest import new_job


async def test_a_model_not_allowed_is_refused_before_anything_is_reserved(
    open_engine, relay: FakeRelay
) -> None:
    engine, seen = await open_engine()
    await engine.start()
    first = await engine.submit(new_job("a lighthouse", model="sora-2-pro", duration=15))
    await seen.wait_for(lambda _: first.id in seen.finished())
    assert (await engine.db.jobs.get(first.id)).status == "succeeded"
    ledger_before = await engine.db.quotas.ledger(1)

    await engine.db.preferences.set_allowed_models(1, ["sora-2"])
    with pytest.raises(ModelNotAllowedError) as refused:
        await engine.submit(new_job("a second lighthouse", model="sora-2-pro"))
    assert refused.value.model == "sora-2-pro" and refused.value.allowed == ("sora-2",)
    asker = Requester(guild_id=1, user_id=12)
    with pytest.raises(ModelNotAllowedError):
        await engine.rerun(first.id, asker)
    with pytest.raises(ModelNotAllowedError):
        await engine.remix(first.id, "make it night", asker)

    assert await engine.db.quotas.ledger(1) == ledger_before
    assert await engine.db.jobs.get(first.id + 1) is None
    assert relay.submits_for("a second lighthouse") == 0
    assert relay.submits_for("make it night") == 0
    assert relay.submits_for("a lighthouse") == 1
    # The allowed model still renders here, and another server is not restricted.
    allowed = await engine.submit(new_job("a small boat"))
    other = await engine.submit(new_job("a far lighthouse", guild=2, model="sora-2-pro"))
    await seen.wait_for(lambda _: {allowed.id, other.id} <= seen.finished().keys())
    assert relay.submits_for("a far lighthouse") == 1


async def test_a_rerun_or_remix_of_a_model_the_catalogue_dropped_reserves_nothing(
    open_engine, relay: FakeRelay
) -> None:
    first, seen = await open_engine()
    await first.start()
    pro = await first.submit(new_job("a pro lighthouse", model="sora-2-pro", duration=15))
    await seen.wait_for(lambda _: pro.id in seen.finished())
    await first.stop()
    ledger_before = await first.db.quotas.ledger(1)

    # The operator's MODELS_FILE no longer has sora-2-pro (e.g. replace_defaults).
    only_sora = Catalogue([shipped_catalogue().require("sora-2")])
    engine, _ = await open_engine(catalogue=only_sora)
    await engine.start()
    asker = Requester(guild_id=1, user_id=12)
    with pytest.raises(InvalidRequest) as rerun:
        await engine.rerun(pro.id, asker)
    assert rerun.value.code == "unknown_model" and rerun.value.params["models"] == ("sora-2",)
    with pytest.raises(InvalidRequest):
        await engine.remixable(pro.id, guild_id=1)  # asked before the remix prompt is
    with pytest.raises(InvalidRequest):
        await engine.remix(pro.id, "make it night", asker)
    assert await engine.db.quotas.ledger(1) == ledger_before
    assert await engine.db.jobs.get(pro.id + 1) is None
    assert relay.submits_for("make it night") == 0 and relay.submits_for("a pro lighthouse") == 1
