from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
from discord.app_commands import TranslationContext, TranslationContextLocation, locale_str

from bot.relay.errors import ERRORS_BY_CODE
from bot.relay.models import InvalidRequest, VideoRequest
from bot.ui.i18n import (
    EN,
    ZH,
    ZH_COMMAND_TEXT,
    BotTranslator,
    alias_error_text,
    attachment_error_text,
    has_key,
    invalid_request_text,
    job_error_text,
    normalize_locale,
    placeholders,
    quota_error_text,
    relay_error_text,
    resolve_key,
    t,
)

INVALID_CODES = [
    # A model's rules (bot/catalogue.py, issue 11).
    "model_duration",
    "model_orientation",
    "model_hd",
    "model_images",
    "model_storyboard",
    "model_remix",
    "model_characters",
    "unknown_model",
    "prompt_empty",
    "prompt_too_long",
    "too_many_images",
    "storyboard_total",
    "remix_options",
    "timestamps_order",
    "timestamps_span",
    "image_type",
    "image_url",
    "image_source",
]


def test_en_and_zh_have_the_same_keys_and_placeholders() -> None:
    assert EN.keys() == ZH.keys()
    for key in EN:
        assert placeholders(EN[key]) == placeholders(ZH[key]), key
        assert ZH[key].strip(), key


def test_every_relay_and_request_code_has_a_sentence() -> None:
    for code in ERRORS_BY_CODE:
        assert f"error.{code}" in EN
    for code in INVALID_CODES:
        assert f"invalid.{code}" in EN
    for stage in ("prompt", "image", "output"):
        assert f"error.content_policy.{stage}" in EN


def test_english_error_sentences_match_the_relay_defaults() -> None:
    for code, cls in ERRORS_BY_CODE.items():
        assert EN[f"error.{code}"] == cls.default_message


@pytest.mark.parametrize(
    ("locale", "lang"),
    [
        ("zh-CN", "zh-CN"),
        (discord.Locale.chinese, "zh-CN"),
        ("zh", "zh-CN"),
        ("en-US", "en"),
        ("en-GB", "en"),
        (discord.Locale.french, "en"),
        ("zh-TW", "en"),
        (None, "en"),
    ],
)
def test_locales_map_to_a_catalogue(locale: str | discord.Locale | None, lang: str) -> None:
    assert normalize_locale(locale) == lang


def test_bare_codes_from_other_layers_resolve() -> None:
    assert t("rate_limited", "zh-CN") == ZH["error.rate_limited"]
    assert t("timed_out", "en") == EN["error.timed_out"]
    assert t("model_hd", "en", models="x") == "HD needs a model that offers it: x."
    assert t("job_not_found", "en", id=9) == "Job #9 not found."
    assert t("unknown_alias", "en", names="@x") == "Unknown character @x; see /character list."
    assert t("content_policy_image", "en") == EN["error.content_policy.image"]
    assert has_key("prompt_too_long", {"chars": 1, "max": 2})
    assert not has_key("prompt_too_long", {})
    assert not has_key("nope")


def test_t_formats_falls_back_and_never_raises() -> None:
    assert t("state.queued", "en-US", position=3) == "Queued — #3 in line"
    assert t("state.queued", "zh-CN", position=3) == "排队中 — 第 3 位"
    assert t("button.open", "de") == "Open video"
    assert t("no.such.key", "en") == "no.such.key"
    assert t("state.queued", "en") == "Queued — #{position} in line"


def test_invalid_request_sentences_keep_their_numbers_in_chinese() -> None:
    with pytest.raises(InvalidRequest) as info:
        VideoRequest.build(prompt="x" * 5000)
    zh = invalid_request_text(info.value, "zh-CN")
    assert "5,000" in zh and "4,000" in zh
    assert invalid_request_text(info.value, "en-US") == info.value.message

    total = InvalidRequest("storyboard_total", "The shots add up to 12 s but the video is 10 s; x.")
    assert "12" in invalid_request_text(total, "zh-CN")
    assert "{" not in invalid_request_text(InvalidRequest("too_many_images", "x"), "zh-CN")


def test_unknown_invalid_codes_show_the_detail() -> None:
    exc = InvalidRequest("invalid_duration", "Check duration: bad.")
    assert invalid_request_text(exc, "en") == "Check the options: Check duration: bad."


def test_relay_job_attachment_quota_and_alias_sentences() -> None:
    assert relay_error_text("rate_limited", "zh-CN") == ZH["error.rate_limited"]
    assert relay_error_text("weird", "en") == EN["error.relay_error"]
    assert relay_error_text(None, "en") == EN["error.relay_error"]
    assert job_error_text("remix_private", 7, "en") == "Job #7 is private and can't be remixed."
    assert job_error_text("cancel_not_yours", 7, "en") == EN["generic.not_owner"]
    text = attachment_error_text("image_too_large", "big_*pic*.png", "en", limit_mb=8)
    assert text == "big\\_\\*pic\\*.png is larger than 8 MB; attach a smaller image."

    resets = datetime(2026, 3, 2, tzinfo=UTC)
    over = SimpleNamespace(scope="guild", limit=100, used=99, cost=2, resets_at=resets)
    assert "<t:" in quota_error_text(over, "en") and "99" in quota_error_text(over, "zh-CN")
    off = SimpleNamespace(scope="user", limit=0, used=0, cost=1, resets_at=resets)
    assert quota_error_text(off, "en") == EN["quota.user_off"]

    unknown = SimpleNamespace(code="alias_unknown", aliases=["bob", "al_ice"], message="")
    assert (
        alias_error_text(unknown, "en") == "Unknown character @bob, @al\\_ice; see /character list."
    )
    taken = SimpleNamespace(code="alias_taken", message="@bob is already taken on this server")
    assert alias_error_text(taken, "zh-CN").startswith("@bob ")


def _ctx(location: TranslationContextLocation) -> TranslationContext:  # type: ignore[type-arg]
    return TranslationContext(location, None)  # type: ignore[call-overload]


async def test_translator_gives_chinese_descriptions_only_for_zh_cn() -> None:
    translator = BotTranslator()
    desc = _ctx(TranslationContextLocation.command_description)
    text = locale_str("Render a video from a prompt")
    assert await translator.translate(text, discord.Locale.chinese, desc) == "根据提示词生成视频"
    assert await translator.translate(text, discord.Locale.american_english, desc) is None
    assert await translator.translate(text, discord.Locale.taiwan_chinese, desc) is None
    choice = _ctx(TranslationContextLocation.choice_name)
    assert await translator.translate(locale_str("Landscape"), discord.Locale.chinese, choice) == (
        "横屏"
    )


async def test_translator_keeps_names_and_honours_call_site_text() -> None:
    translator = BotTranslator()
    name = _ctx(TranslationContextLocation.command_name)
    assert await translator.translate(locale_str("video"), discord.Locale.chinese, name) is None
    desc = _ctx(TranslationContextLocation.parameter_description)
    inline = locale_str("Something new", zh="新的东西")
    assert await translator.translate(inline, discord.Locale.chinese, desc) == "新的东西"
    missing = locale_str("Not in the table")
    assert await translator.translate(missing, discord.Locale.chinese, desc) is None


ROOT = Path(__file__).resolve().parents[2]


def _python_sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_key_callers_use_exists() -> None:
    """`t("literal", ...)` anywhere outside bot/ui must resolve, or members see a raw key."""
    missing = []
    for path in _python_sources("bot", "cogs"):
        if "ui" in path.relative_to(ROOT).parts[:2]:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and resolve_key(node.args[0].value) is None
            ):
                missing.append(f"{path.relative_to(ROOT)}: {node.args[0].value}")
    assert missing == []


def test_every_command_text_has_a_chinese_translation() -> None:
    """Descriptions and choice names marked `_("...")`/`locale_str` in cogs are translated."""
    missing = []
    for path in _python_sources("cogs"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"_", "locale_str"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and not any(k.arg == "zh" for k in node.keywords)
                and node.args[0].value not in ZH_COMMAND_TEXT
            ):
                missing.append(f"{path.relative_to(ROOT)}: {node.args[0].value}")
    assert missing == []
    assert all(len(text) <= 100 for text in ZH_COMMAND_TEXT.values())
