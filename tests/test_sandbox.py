"""`python -m bot sandbox`: the real bot, offline, prints a session a member would recognise."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import bot.sandbox
from bot.fakes.relay import FakeRelay
from bot.sandbox import humanize_timestamps, run_session
from bot.ui.i18n import t

REPO = Path(__file__).resolve().parents[1]


def sandbox(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI where a `.env` and the environment would break a bot that read them."""
    (tmp_path / ".env").write_text("RELAY_FORMAT=bogus\nQUOTA_USER_DAILY=999\n", encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "QUOTA_USER_DAILY": "999",
        "DISCORD_API_BASE": "https://discord.invalid/api/v10",
        "RELAY_BASE_URL": "https://relay.invalid",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot", "sandbox", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def test_the_whole_script_in_every_format(tmp_path: Path) -> None:
    done = sandbox(tmp_path)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no voice warnings, no log noise
    for fmt in ("task", "official", "chat"):
        assert f"({fmt} format)" in out
    # Each video shows its result and link first, then the same message with its file.
    assert out.count("✅") == 6 and "📎 sora-3.mp4 (4.0 KB)" in out
    assert out.count(f"[bot, edited] {t('live.attaching', 'en-US')}\n✅ Done\n") == 3
    assert "[bot, thinking…]" in out and "Rendering — 42%" in out  # the history, not just the end
    assert "buttons: [▶️ Open video ↗] · [🔁 Rerun] · [🎨 Remix] · [ℹ️ Details]" in out
    assert "❌" in out and t("refund.refunded", "en-US", units=1) in out
    assert "[bot, only you can see this] HD needs a model that offers it: sora-2-pro." in out
    assert "You have used 3 of your 4 daily units; this video needs 2." in out
    assert "You: 3 / 4 units used" in out
    assert "<t:" not in out and "\033[" not in out  # timestamps readable, no colours in a pipe


def test_chinese_member(tmp_path: Path) -> None:
    done = sandbox(tmp_path, "--lang", "zh-CN", "--format", "chat")
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "✅ 完成" in out and "(chat format)" in out and "(task format)" not in out
    assert t("refund.refunded", "zh-CN", units=1) in out
    assert "你今天已用 1 / 2 额度" in out and "小时后" in out


def test_bad_options_are_usage_errors(tmp_path: Path) -> None:
    assert sandbox(tmp_path, "--format", "telepathy").returncode == 2
    done = sandbox(tmp_path, "--lang", "klingon")
    assert done.returncode == 2 and "klingon" in done.stderr


async def test_in_process_one_format() -> None:
    out = io.StringIO()
    await run_session(("official",), "en-US", out)
    text = out.getvalue()
    assert "(official format)" in text and "✅ Done" in text and "📎 sora-1.mp4" in text
    assert "Your units were refunded (1 unit)." in text
    assert "You have used 1 of your 2 daily units" in text


def test_a_step_that_goes_wrong_exits_1_with_one_sentence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class BrokenRelay(FakeRelay):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.behaviour.outcome = "failed"

    monkeypatch.setattr(bot.sandbox, "FakeRelay", BrokenRelay)
    out = io.StringIO()
    code = bot.sandbox.main(argparse.Namespace(lang="en-US", format="task"), out=out)
    assert code == 1
    assert capsys.readouterr().err.strip() == "The task-format video did not finish with ✅."
    assert "❌" in out.getvalue()  # what went wrong is still shown


def test_discord_timestamps_read_like_the_client_shows_them() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    midnight = int(datetime(2026, 1, 2, tzinfo=UTC).timestamp())
    assert humanize_timestamps(f"resets <t:{midnight}:R>", now) == "resets in 15 hours"
    assert humanize_timestamps(f"<t:{midnight}:R>", now, "zh-CN") == "15 小时后"
    assert humanize_timestamps(f"<t:{midnight}:f>", now) == "2026-01-02 00:00 UTC"
