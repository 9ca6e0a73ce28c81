from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import get_args

import discord
import pytest

from bot.relay.models import Shot, VideoRequest
from bot.ui.embeds import (
    BLURPLE,
    GREEN,
    GREY,
    RED,
    character_list_embed,
    clamp,
    error_embed,
    fit,
    job_embed,
    job_list_embed,
    quota_embed,
    relay_status_embed,
)
from bot.ui.i18n import t
from bot.ui.records import JobStatus
from tests.ui.conftest import FakeJob, assert_within_limits, make_job

URL = "https://cdn.example.com/v/abc.mp4"


def _finished(now: datetime, **fields: object) -> dict[str, object]:
    return {
        "started_at": now - timedelta(minutes=3),
        "finished_at": now - timedelta(seconds=5),
        **fields,
    }


@pytest.mark.parametrize("status", get_args(JobStatus))
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_every_status_renders_within_limits(status: JobStatus, locale: str, now: datetime) -> None:
    job = make_job(
        status=status,
        progress=42.0,
        phase="rendering",
        result_url=URL,
        error_code="rate_limited",
        **_finished(now) if status not in {"queued", "submitting", "running"} else {},
    )
    embed = job_embed(job, locale=locale, now=now, queue_position=3, details=True)
    assert_within_limits(embed)
    assert embed.footer.text and "42" in embed.footer.text


def test_titles_and_colours(now: datetime) -> None:
    queued = job_embed(make_job(), locale="en", now=now, queue_position=3)
    assert (queued.title, queued.colour) == ("⏳ Queued — #3 in line", BLURPLE)
    running = make_job(status="running", progress=42.7, phase="rendering", started_at=now)
    assert job_embed(running, locale="en", now=now).title == "🎬 Rendering — 42%"
    checking = make_job(status="running", progress=None, phase="checking", started_at=now)
    assert job_embed(checking, locale="zh-CN", now=now).title == "🎬 内容审核中"
    done = job_embed(make_job(status="succeeded", result_url=URL), locale="en", now=now)
    assert (done.title, done.colour, done.url) == ("✅ Done", GREEN, URL)
    failed = job_embed(make_job(status="failed"), locale="en", now=now)
    assert failed.colour == RED
    cancelled = job_embed(make_job(status="cancelled"), locale="en", now=now)
    assert cancelled.colour == GREY
    interrupted = job_embed(make_job(status="interrupted"), locale="en", now=now)
    assert interrupted.title == "🔁 Interrupted by a restart — your units were refunded"


def test_running_shows_bar_phase_elapsed_and_eta(now: datetime) -> None:
    job = make_job(
        status="running", progress=25.0, phase="rendering", started_at=now - timedelta(minutes=1)
    )
    fields = {f.name: f.value for f in job_embed(job, locale="en", now=now).fields}
    assert fields["Progress"] == "▰▰▰▰▰▱▱▱▱▱▱▱▱▱▱▱▱▱▱▱ 25%"
    assert fields["Phase"] == "Rendering"
    assert fields["Elapsed"] == "1m 00s"
    assert fields["ETA"] == "3m 00s"
    assert fields["Duration"] == "10 s"


def test_prompt_is_escaped(now: datetime) -> None:
    job = make_job(request=VideoRequest(prompt="@everyone **x** <@123> @here `code`"))
    embed = job_embed(job, locale="en", now=now)
    text = embed.description or ""
    assert "@everyone" not in text and "@here" not in text
    assert "**x**" not in text and "\\*\\*x\\*\\*" in text
    assert "<@123>" not in text
    assert "\\`code\\`" in text


def test_huge_prompt_and_storyboard_stay_within_limits(now: datetime) -> None:
    shots = tuple(Shot(duration=0.5, scene="*" * 1000) for _ in range(20))
    request = VideoRequest.model_construct(
        prompt="_" * 10_000, storyboard=shots, images=(), model="m" * 300, duration=10
    )
    for status in get_args(JobStatus):
        job = make_job(
            request=request,
            status=status,
            error_message="x" * 5000,
            result_url="https://x/" + "a" * 3000,
        )
        embed = job_embed(job, locale="en", now=now, details=True)
        assert_within_limits(embed)
        assert (embed.description or "").endswith("…")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("rate_limited", "The video service is busy; try again in a minute.\n"
         "Your units were refunded (2 units)."),
        ("content_policy", "The video was refused by the content policy; change the prompt or "
         "images and try again.\nNo refund: content-policy refusals are charged."),
        ("internal", "Something went wrong on our side; it has been logged as job #42.\n"
         "Your units were refunded (2 units)."),
        ("remix_options", "A remix takes only a new prompt; drop the images or storyboard.\n"
         "Your units were refunded (2 units)."),
    ],
)  # fmt: skip
def test_failure_sentence_and_refund_note(code: str, expected: str, now: datetime) -> None:
    job = make_job(status="failed", error_code=code, error_message="raw relay text")
    fields = {f.name: f.value for f in job_embed(job, locale="en", now=now).fields}
    assert fields["What happened"] == expected


def test_failure_in_chinese_and_unknown_code_uses_stored_sentence(now: datetime) -> None:
    zh = job_embed(make_job(status="timed_out", error_code="timed_out"), locale="zh-CN", now=now)
    values = [f.value for f in zh.fields]
    assert any("视频生成时间过长" in (v or "") and "已退还" in (v or "") for v in values)
    odd = make_job(status="failed", error_code="weird", error_message="Relay said *no*.")
    values = [f.value or "" for f in job_embed(odd, locale="en", now=now).fields]
    assert any(v.startswith("Relay said \\*no\\*.") for v in values)


def test_explicit_refunded_flag_wins(now: datetime) -> None:
    job = make_job(status="cancelled")
    assert not any(
        "refunded" in (f.value or "") for f in job_embed(job, locale="en", now=now).fields
    )

    @dataclass(frozen=True)
    class RefundedJob(FakeJob):
        refunded: bool = True

    flagged = RefundedJob(status="cancelled")
    values = [f.value for f in job_embed(flagged, locale="en", now=now).fields]
    assert "Your units were refunded (2 units)." in values


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_a_cancel_says_whether_the_units_came_back(locale: str, now: datetime) -> None:
    """Issue 9 point 8: a cancel before any relay had the job is refunded, and says so."""
    refunded = make_job(status="cancelled", error_code="cancelled", error_detail="refunded")
    charged = make_job(status="cancelled", error_code="cancelled", error_detail="charged")
    note = t("refund.refunded", locale, units=refunded.cost)
    assert note in [f.value for f in job_embed(refunded, locale=locale, now=now).fields]
    assert note not in [f.value for f in job_embed(charged, locale=locale, now=now).fields]


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("hello", 10, "hello"),
        ("hello world", 5, "hell…"),
        ("abc\\*", 5, "abc\\*"),
        ("ab\\*\\*", 4, "ab…"),  # never leave a lone backslash escaping the ellipsis
        ("ab\\\\cd", 5, "ab\\\\…"),
        ("x", 0, ""),
    ],
)
def test_clamp(text: str, limit: int, expected: str) -> None:
    assert clamp(text, limit) == expected
    assert len(clamp(text, limit)) <= max(limit, 0)


def test_fit_trims_fields_and_total() -> None:
    embed = discord.Embed(title="t" * 300, description="d" * 5000)
    for n in range(30):
        embed.add_field(name=f"n{n}" * 200, value="v" * 2000)
    embed.set_footer(text="f" * 3000)
    assert_within_limits(fit(embed))


def test_error_embed(now: datetime) -> None:
    embed = error_embed("x" * 9000, "zh-CN")
    assert embed.title == "⚠️ 出了点问题" and embed.colour == RED
    assert_within_limits(embed)


@dataclass(frozen=True)
class Quota:
    guild_used: int = 40
    guild_limit: int | None = 100
    guild_resets_at: datetime = datetime(2026, 4, 1, tzinfo=UTC)
    user_used: int = 3
    user_limit: int | None = 5
    user_resets_at: datetime = datetime(2026, 3, 2, tzinfo=UTC)
    user_exempt: bool = False


def test_quota_embed(now: datetime) -> None:
    embed = quota_embed(Quota(), "en", now)
    fields = {f.name: f.value for f in embed.fields}
    assert fields["You"] == "3 / 5 units used · resets <t:1772409600:R>"
    assert fields["This server"] == "40 / 100 units used · resets <t:1775001600:R>"
    dm = quota_embed(Quota(user_limit=None), "zh-CN", now, in_guild=False)
    assert [f.value for f in dm.fields] == ["已用 3 额度 · 无上限"]
    exempt = quota_embed(Quota(user_exempt=True), "en", now)
    assert exempt.fields[0].value == "No limit for you"


def test_job_list_embed(now: datetime) -> None:
    assert job_list_embed([], "en").description == "No videos yet. Try /video."
    jobs = [
        make_job(id=n, status="succeeded", result_url=URL, request=VideoRequest(prompt="p " * 900))
        for n in range(300)
    ]
    embed = job_list_embed(jobs, "en")
    assert_within_limits(embed)
    assert "more" in (embed.description or "").splitlines()[-1]
    assert (embed.description or "").startswith("`#0` ✅ Done")


@dataclass(frozen=True)
class Alias:
    alias: str
    username: str
    created_by: int


def test_character_list_embed() -> None:
    assert character_list_embed([], "en").description == "No characters yet."
    embed = character_list_embed([Alias("bob", "cookie.dancer", 7)], "en")
    assert embed.description == "`bob` → @cookie.dancer · created by <@7>"
    many = [Alias(f"a{n}" * 10, "u_" * 40, n) for n in range(500)]
    assert_within_limits(character_list_embed(many, "zh-CN"))


@dataclass(frozen=True)
class Health:
    name: str
    ok: bool
    latency: float | None = 0.32
    models: tuple[str, ...] = ("sora-2", "sora-2-pro")
    error: str | None = None
    breaker: str = "closed"
    low_credit: float | None = None
    low_credit_noticed: bool = False
    offers: tuple[str, ...] = ("sora-2", "sora-2-pro")
    listed: bool = True
    unknown: tuple[str, ...] = ()


def test_relay_status_embed_names_paused_and_low_credit_relays() -> None:
    embed = relay_status_embed(
        [
            Health("main", True, low_credit=0.5, low_credit_noticed=True),
            Health("b", False, breaker="open"),
        ],
        "en",
    )
    main, backup = (field.value or "" for field in embed.fields)
    assert "credit is low (0.5 left)" in main and "Skipped after repeated failures (open)" in backup


def test_relay_status_embed() -> None:
    embed = relay_status_embed(
        [
            Health("main", True, unknown=("gpt-4o",)),
            Health("backup", False, None, (), "401", listed=False),
        ],
        "en",
    )
    assert embed.colour == RED
    assert [(f.name, f.value) for f in embed.fields] == [
        (
            "main",
            "✅ OK · 320 ms\nOffers: sora-2, sora-2-pro\nListed, not in the catalogue: gpt-4o",
        ),
        (
            "backup",
            "❌ Error: 401\nOffers: unknown (no model list); may carry sora-2, sora-2-pro",
        ),
    ]
    assert relay_status_embed([Health("main", True)], "en").colour == GREEN
    assert relay_status_embed([], "en").description == "No video services are configured."
    crowd = [
        Health(
            f"r{n}" * 100,
            False,
            error="e" * 2000,
            models=("m" * 500,),
            offers=("o" * 500,) * 3,
            unknown=("u" * 500,) * 3,
        )
        for n in range(40)
    ]
    embed = relay_status_embed(crowd, "en")
    assert_within_limits(embed)
