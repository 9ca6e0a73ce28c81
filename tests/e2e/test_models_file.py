"""An operator's MODELS_FILE adds a model and changes a price, with no code change: the
real bot offers it in /video's autocomplete, validates by its entry, charges its price and
sends it to the relay as the entry says (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.fakes.discord import FakeDiscord
from bot.fakes.relay import FakeRelay

from .conftest import StartBot, final_message
from .test_errors import private_reply, used_units

MODELS = """
[models."sora-2"]          # the relay raised its price
cost = { 10 = 3 }

[models.kling-2]           # a model the relay started selling
label = "Kling 2"
labels = { zh-CN = "可灵 2" }
formats = ["task"]
durations = [5, 10]
max_images = 1
cost = { 5 = 2, 10 = 4 }
render_seconds = { 5 = 60, 10 = 100 }
orientations.landscape = { aspect_ratio = "16:9" }
orientations.portrait = { aspect_ratio = "9:16" }
"""


@pytest.fixture
def models_file(tmp_path: Path, relay: FakeRelay) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(MODELS)
    relay.behaviour.models = (*relay.behaviour.models, "kling-2")  # the relay sells it
    return path


def footer(message) -> str:
    return str(message.embeds[0].get("footer", {}).get("text", ""))


async def test_an_added_model_is_offered_validated_priced_and_rendered(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, models_file: Path
) -> None:
    bot = await start_bot(models_file=models_file)
    # Autocomplete: the new model under its label, in the member's language …
    choices = await fake_discord.autocomplete("video", {"model": "kl"}, focused="model")
    assert choices == [{"name": "Kling 2 (kling-2)", "value": "kling-2"}]
    zh = await fake_discord.autocomplete("video", {"model": ""}, focused="model", locale="zh-CN")
    assert {"name": "可灵 2 (kling-2)", "value": "kling-2"} in zh
    assert "veo3" not in [c["value"] for c in zh]  # shipped, but this relay doesn't sell it
    # … and the durations of the model already chosen.
    durations = await fake_discord.autocomplete(
        "video", {"model": "kling-2", "duration": ""}, focused="duration"
    )
    assert [c["value"] for c in durations] == [5, 10]

    await fake_discord.run_slash(
        "video", {"prompt": "a paper boat", "model": "kling-2", "duration": 5}
    )
    done = await final_message(fake_discord, 1)
    assert footer(done) == "Job #1 · 2 units"
    body = relay.requests_to("task_submit")[0].json
    # No orientation given: the model's first (its entry lists landscape first).
    assert (body["model"], body["duration"], body["aspect_ratio"]) == ("kling-2", "5", "16:9")
    # The changed price of a shipped model.
    await fake_discord.run_slash("video", {"prompt": "a kite"})
    plain = await final_message(fake_discord, 2)
    assert footer(plain) == "Job #2 · 3 units"
    assert await used_units(bot, fake_discord) == 2 + 3


async def test_the_added_models_rules_refuse_with_its_own_sentence(
    fake_discord: FakeDiscord, relay: FakeRelay, start_bot: StartBot, models_file: Path
) -> None:
    bot = await start_bot(models_file=models_file)
    inter = await fake_discord.run_slash(
        "video", {"prompt": "a boat", "model": "kling-2", "duration": 15}
    )
    assert await private_reply(inter) == (
        "kling-2 renders 5 or 10 s; pick one of those or another model."
    )
    zh = await fake_discord.run_slash(
        "video", {"prompt": "a boat", "model": "kling-2", "hd": True}, locale="zh-CN"
    )
    assert await private_reply(zh) == "高清需要支持它的模型:sora-2-pro。"
    assert relay.requests_to("task_submit") == [] and await used_units(bot, fake_discord) == 0
