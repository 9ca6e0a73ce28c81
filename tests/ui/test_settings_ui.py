"""How defaults and skipped defaults read, in English and Chinese."""

from __future__ import annotations

from bot.catalogue import shipped_catalogue
from bot.jobs.defaults import Resolved, Skipped
from bot.store.preferences import Defaults, Preferences
from bot.ui.settings import labeller, settings_embed, skipped_notes, summary

CATALOGUE = shipped_catalogue()


def test_a_summary_names_the_model_duration_orientation_and_what_is_on() -> None:
    chosen = Resolved("sora-2-pro", "landscape", 15, True, False)
    assert summary(chosen, "en-US", labeller(CATALOGUE, "en-US")) == (
        "Sora 2 Pro · 15 s · Landscape · HD"
    )
    assert summary(chosen, "zh-CN") == "sora-2-pro · 15 秒 · 横屏 · 高清"


def test_each_skipped_default_is_one_sentence_saying_what_was_used() -> None:
    chosen = Resolved(
        "sora-2",
        "portrait",
        10,
        False,
        False,
        (
            Skipped("model", "sora-2-pro", "member", "not_allowed", "sora-2"),
            Skipped("model", "sora-1", "server", "unknown", "sora-2"),
            Skipped("duration", 25, "member", "unsupported", 10),
            Skipped("hd", True, "server", "unsupported", False),
            Skipped("model", "veo3", "member", "unsupported", "sora-2"),
        ),
    )
    en = skipped_notes(chosen, "en-US", labeller(CATALOGUE, "en-US"))
    assert en == [
        "Your default model Sora 2 Pro is not allowed here, so this video uses Sora 2.",
        "This server's default model sora-1 is no longer offered, so this video uses Sora 2.",
        "Your default duration (25 s) doesn't fit Sora 2, so this video uses 10 s.",
        "This server's default HD doesn't fit Sora 2, so this video is not in HD.",
        "Your default model Veo 3 can't render what this video asks for, so it uses Sora 2.",
    ]
    zh = skipped_notes(chosen, "zh-CN")
    assert zh[0] == "你的默认模型 sora-2-pro 在这里不被允许,本视频改用 sora-2。"
    assert zh[2] == "你的默认时长(25 秒)不适用于 sora-2,本视频改用 10 秒。"


def test_the_settings_embed_shows_both_levels_and_the_allowed_models() -> None:
    prefs = Preferences(1, 10, Defaults(duration=15), Defaults(), frozenset({"sora-2"}))
    chosen = Resolved("sora-2", "portrait", 15, False, False)
    embed = settings_embed(prefs, chosen, ["sora-2"], "en-US", restricted=True)
    fields = {field.name: field.value for field in embed.fields}
    assert fields["Yours in this server"] == "Duration: 15 s"
    assert fields["This server's"] == "Not set"
    assert fields["Models allowed here"] == "sora-2"
    assert fields["A /video with no options renders"] == "sora-2 · 15 s · Portrait"
