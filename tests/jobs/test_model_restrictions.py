"""A server's allowed models hold in the engine itself: a command, a rerun and a remix of
a model the admins took away are refused before any quota is reserved."""

from __future__ import annotations

import pytest

from bot.fakes.relay import FakeRelay
from bot.jobs.defaults import ModelNotAllowedError
from bot.jobs.engine import Requester

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
