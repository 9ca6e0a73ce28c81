from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.catalogue import shipped_catalogue
from bot.relay.models import VideoRequest
from bot.ui.progress import (
    estimate_remaining,
    format_duration,
    progress_bar,
    typical_render_seconds,
)
from tests.ui.conftest import make_job


@pytest.mark.parametrize(
    ("percent", "bar"),
    [
        (0, "▱▱▱▱▱▱▱▱▱▱ 0%"),
        (42, "▰▰▰▰▱▱▱▱▱▱ 42%"),
        (99.9, "▰▰▰▰▰▰▰▰▰▱ 99%"),
        (100, "▰▰▰▰▰▰▰▰▰▰ 100%"),
        (250, "▰▰▰▰▰▰▰▰▰▰ 100%"),
        (-5, "▱▱▱▱▱▱▱▱▱▱ 0%"),
        (None, "▱▱▱▱▱▱▱▱▱▱ …"),
        (float("nan"), "▱▱▱▱▱▱▱▱▱▱ …"),
    ],
)
def test_progress_bar(percent: float | None, bar: str) -> None:
    assert progress_bar(percent, width=10) == bar


def test_progress_bar_default_width_and_tiny_width() -> None:
    assert progress_bar(50).startswith("▰" * 10 + "▱" * 10)
    assert progress_bar(50, width=0) == "▱ 50%"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (-3, "0s"), (42.4, "42s"), (65, "1m 05s"), (600, "10m 00s"), (3720, "1h 02m")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_typical_render_times() -> None:
    assert typical_render_seconds(VideoRequest(prompt="x")) == 120
    assert typical_render_seconds(VideoRequest(prompt="x", duration=15)) == 240
    pro = {"prompt": "x", "model": "sora-2-pro"}
    assert typical_render_seconds(VideoRequest(**pro, duration=15, hd=True)) == 240 + 480
    # HD ignored at 25 s: the catalogue drops it when the request is resolved, and the
    # time is the model's entry's (issue 11; the same as the read plan's prior).
    asked = VideoRequest(**pro, duration=25, hd=True)
    assert typical_render_seconds(shipped_catalogue().resolve(asked)) == 420
    assert typical_render_seconds(VideoRequest(prompt="x", model="veo3-fast", duration=8)) == 90
    # A model the catalogue doesn't know: by duration.
    assert typical_render_seconds(VideoRequest(prompt="x", model="other", duration=15)) == 240


def test_eta_uses_the_rate_once_there_is_enough_progress(now: datetime) -> None:
    job = make_job(status="running", started_at=now - timedelta(seconds=60), progress=25.0)
    assert estimate_remaining(job, now) == pytest.approx(180)


def test_eta_falls_back_to_typical_time_early_on(now: datetime) -> None:
    job = make_job(status="running", started_at=now - timedelta(seconds=30), progress=3.0)
    assert estimate_remaining(job, now) == pytest.approx(90)
    assert estimate_remaining(job, now, typical_seconds=600) == pytest.approx(570)
    late = make_job(status="running", started_at=now - timedelta(seconds=500), progress=None)
    assert estimate_remaining(late, now) is None


def test_eta_for_waiting_and_final_jobs(now: datetime) -> None:
    assert estimate_remaining(make_job(status="queued"), now) == 120
    for status in ("succeeded", "failed", "cancelled", "timed_out", "interrupted"):
        assert estimate_remaining(make_job(status=status), now) is None


def test_the_job_message_estimates_from_the_bots_own_catalogue(now: datetime, tmp_path) -> None:
    """A model's typical time comes from the catalogue the bot runs with (issue 11)."""
    from bot.catalogue import load_catalogue
    from bot.jobs.costs import Prices
    from bot.ui.embeds import job_embed

    path = tmp_path / "models.toml"
    path.write_text("[models.veo3-fast]\nrender_seconds = { 8 = 200 }\n")
    veo = VideoRequest(prompt="x", model="veo3-fast", duration=8)
    queued = make_job(request=veo, status="queued")

    def eta(catalogue) -> str:
        embed = job_embed(queued, locale="en", now=now, costs=Prices(catalogue))
        return next(f.value or "" for f in embed.fields if f.name == "ETA")

    assert eta(shipped_catalogue()) == "1m 30s"
    assert eta(load_catalogue(path)) == "3m 20s"
