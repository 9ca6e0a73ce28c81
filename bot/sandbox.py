"""`python -m bot sandbox`: the whole real bot, offline, replaying a short scripted session.

The bot is the unpatched `VideoBot` (discord.py, the relay client, the job engine, SQLite),
talking to `FakeDiscord` and `FakeRelay` on 127.0.0.1 only. No keys, no network, no `.env`:
the settings are built here from explicit values. The bot runs on a `FakeClock`, so a
render that "takes" minutes finishes at once while the messages still show its progress.

The relay format is a bot setting, so the script starts one bot per format, one after
another, on the same fake Discord and database (what a restart with a new setting does).
What a member would see is printed message by message, every edit included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import sys
import tempfile
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TextIO

import discord
from pydantic import SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from bot.app import VideoBot, point_at_discord
from bot.catalogue import shipped_catalogue
from bot.clock import FakeClock
from bot.fakes.discord import EPHEMERAL, LOADING, FakeDiscord, FakeInteraction, RecordedMessage
from bot.fakes.relay import FakeRelay
from bot.relay.models import InvalidRequest, VideoRequest
from bot.settings import RelayFormat, Settings
from bot.ui.i18n import invalid_request_text, t

FORMATS: Final[tuple[RelayFormat, ...]] = ("task", "official", "chat")
RELAY_KEY: Final = "sk-sandbox-offline-0000"
FINAL_TITLES: Final = ("✅", "❌", "🚫", "⌛", "🔁")
STEP_TIMEOUT: Final = 15.0
QUIET_FOR: Final = 0.05  # real seconds without a change before a step counts as settled
START: Final = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


class ScriptFailed(Exception):
    """A step of the script did not end as a member should see it; the message is one sentence."""


class SandboxSettings(Settings):
    """Settings from the constructor only: a stray `.env` or environment can't change the demo."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class SandboxBot(VideoBot):
    """The real bot; only discord.py's 5 s pause between shard IDENTIFYs is skipped."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


# --------------------------------------------------------------------------- rendering


class Style:
    """ANSI colours when stdout is a terminal; pipes and tests get plain text."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def header(self, text: str) -> str:
        return self._wrap("1;36", text)

    def label(self, text: str) -> str:
        return self._wrap("2", text)

    def private(self, text: str) -> str:
        return self._wrap("35", text)


_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::([tTdDfFR]))?>")


_UNITS: Final = (
    (86400 * 30, "month", "个月"),
    (86400, "day", "天"),
    (3600, "hour", "小时"),
    (60, "minute", "分钟"),
    (1, "second", "秒"),
)


def _relative(seconds: float, lang: str) -> str:
    """Like Discord's client: the largest whole unit, in the reader's language."""
    span = abs(seconds)
    size, en, zh = next((u for u in _UNITS if span >= u[0]), _UNITS[-1])
    count = max(1, round(span / size))
    if lang.startswith("zh"):
        return f"{count} {zh}{'后' if seconds > 0 else '前'}"
    words = f"{count} {en}{'' if count == 1 else 's'}"
    return f"in {words}" if seconds > 0 else f"{words} ago"


def humanize_timestamps(text: str, now: datetime, lang: str = "en-US") -> str:
    """Discord renders `<t:…>` tags in each member's time zone; show them as a reader would."""

    def replace(match: re.Match[str]) -> str:
        when = datetime.fromtimestamp(int(match.group(1)), UTC)
        if (match.group(2) or "f") != "R":
            return when.strftime("%Y-%m-%d %H:%M UTC")
        return _relative((when - now).total_seconds(), lang)

    return _TIMESTAMP.sub(replace, text)


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two, so continuation lines still line up."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _size(n: int) -> str:
    return (
        f"{n} B"
        if n < 1024
        else f"{n / 1024:.1f} KB"
        if n < 1024 * 1024
        else f"{n / 1048576:.1f} MB"
    )


def _buttons(components: Iterable[dict[str, Any]]) -> list[str]:
    """Button labels in reading order; links get ↗, disabled ones are bracketed."""
    found: list[str] = []

    def walk(items: Iterable[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == 2:
                emoji = (item.get("emoji") or {}).get("name", "")
                label = " ".join(p for p in (emoji, item.get("label") or "") if p)
                if item.get("url"):
                    label += " ↗"
                found.append(f"({label})" if item.get("disabled") else label)
            walk(item.get("components", []))

    walk(components)
    return found


def _progress_line(embed: dict[str, Any]) -> str:
    """An in-between version in one line: its title and the progress bar, if it has one."""
    title = str(embed.get("title", ""))
    values = [str(f.get("value", "")) for f in embed.get("fields", [])]
    bar = next((v for v in values if "▰" in v or "▱" in v), "")
    return f"{title}  {bar}".rstrip()


def render_embed(embed: dict[str, Any], indent: str = "    ") -> list[str]:
    """Title, description, fields, footer: the parts of an embed a member reads."""
    lines: list[str] = []
    if title := embed.get("title"):
        lines.append(str(title))
    if description := embed.get("description"):
        lines += [indent + line for line in str(description).splitlines()]
    for field in embed.get("fields", []):
        name, value = str(field.get("name", "")), str(field.get("value", "")).splitlines()
        first, rest = (value[0], value[1:]) if value else ("", [])
        lines.append(f"{indent}{name}: {first}")
        lines += [f"{indent}{' ' * (_width(name) + 2)}{line}" for line in rest]
    if footer := (embed.get("footer") or {}).get("text"):
        lines.append(f"{indent}— {footer}")
    return lines


def render_message(
    message: RecordedMessage, style: Style, now: datetime, lang: str = "en-US"
) -> list[str]:
    """Every version of one message, oldest first: first and last in full, the rest in a line."""
    sizes = {a.filename: a.size for a in message.attachments}
    out: list[str] = []
    last = len(message.history) - 1
    repeats = 1
    for index, version in enumerate(message.history):
        tags = ["bot"]
        if version.flags & LOADING:
            tags.append("thinking…")
        elif index:
            tags.append("edited")
        if version.flags & EPHEMERAL:
            tags.append(style.private("only you can see this"))
        head = style.label(f"[{', '.join(tags)}]")
        if version.flags & LOADING and not version.content and not version.embeds:
            out.append(head)
            continue
        body: list[str] = []
        if version.content:
            body += version.content.splitlines()
        full = index in (0, last) or not version.embeds
        for embed in version.embeds:
            body += render_embed(embed) if full else [_progress_line(embed)]
        if full:
            for name in version.attachment_names:
                size = f" ({_size(sizes[name])})" if name in sizes else ""
                body.append(f"    📎 {name}{size}")
            if buttons := _buttons(version.components):
                body.append("    buttons: " + " · ".join(f"[{b}]" for b in buttons))
        body = [humanize_timestamps(line, now, lang) for line in body] or [""]
        line = f"{head} {body[0]}".rstrip()
        if not full and out and out[-1].split(" (×")[0] == line:
            repeats += 1  # an edit a member can't tell apart (only the elapsed time moved)
            out[-1] = f"{line} (×{repeats})"
            continue
        repeats = 1
        out.append(line)
        out += body[1:]
    if message.deleted:
        out.append(style.label(f"[message deleted by the {message.deleted_by or 'bot'}]"))
    return out


# --------------------------------------------------------------------------- the session


@dataclass
class Step:
    """One thing a member does, and what must be on screen afterwards for it to count."""

    header: str
    act: Callable[[], Awaitable[FakeInteraction]]
    done: Callable[[list[RecordedMessage]], bool]
    expect: Callable[[list[RecordedMessage]], str | None]  # None if fine, else the sentence


def _title(message: RecordedMessage) -> str:
    return str(message.embeds[0].get("title", "")) if message.embeds else ""


def _text(message: RecordedMessage) -> str:
    return message.content + "\n" + "\n".join(str(e) for e in message.embeds)


def _finished(messages: list[RecordedMessage]) -> RecordedMessage | None:
    return next((m for m in messages if not m.deleted and _title(m).startswith(FINAL_TITLES)), None)


def _private(messages: list[RecordedMessage]) -> RecordedMessage | None:
    return next((m for m in messages if m.ephemeral and not m.deleted and m.content), None)


def _before(template: str) -> str:
    """The fixed start of a sentence with a time in it, to look for in what the member got."""
    return template.split("\x00")[0]


class Session:
    """One fake Discord, one fake relay, one database; bots come and go per relay format."""

    def __init__(
        self, fake: FakeDiscord, relay: FakeRelay, workdir: Path, lang: str, out: TextIO
    ) -> None:
        self.fake, self.relay, self.workdir = fake, relay, workdir
        self.lang, self.out = lang, out
        self.style = Style(out.isatty())
        self.clock = FakeClock(START)

    def settings(self, fmt: RelayFormat, daily_quota: int) -> Settings:
        return SandboxSettings(
            discord_token=SecretStr(self.fake.token or ""),
            discord_api_base=f"{self.fake.url}/api/v10",
            discord_gateway_url=self.fake.gateway_url,
            relay_base_url=self.relay.url,
            relay_api_key=SecretStr(RELAY_KEY),
            relay_format=fmt,
            database_path=self.workdir / "sandbox.db",
            progress_edit_interval=0,
            quota_guild_monthly=100,
            quota_user_daily=daily_quota,
            log_level="WARNING",
        )

    @contextlib.asynccontextmanager
    async def bot(self, settings: Settings) -> AsyncIterator[SandboxBot]:
        """A logged-in, ready bot with its commands synced; closed (like a restart) on exit."""
        point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
        bot = SandboxBot(settings, clock=self.clock, guild_ready_timeout=0.05)
        assert settings.discord_token is not None
        connection: asyncio.Task[None] | None = None
        try:
            await bot.login(settings.discord_token.get_secret_value())
            connection = asyncio.create_task(bot.connect(reconnect=True))
            ready = asyncio.create_task(bot.wait_until_ready())
            done, _ = await asyncio.wait(
                {connection, ready}, timeout=STEP_TIMEOUT, return_when="FIRST_COMPLETED"
            )
            if ready not in done:
                ready.cancel()
                if connection in done:
                    connection.result()
                raise ScriptFailed("The bot did not connect to the fake Discord.")
            await bot.tree.sync()
            yield bot
        finally:
            await bot.close()
            if connection is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await connection

    def say(self, line: str = "") -> None:
        print(line, file=self.out, flush=True)

    async def run(self, step: Step) -> None:
        """Do the step, wait until it is final and the bot stops editing, then print and check."""
        self.say(self.style.header(f"── {step.header} ──"))
        seen = set(self.fake.messages)
        await step.act()

        def new() -> list[RecordedMessage]:
            return [m for mid, m in self.fake.messages.items() if mid not in seen]

        try:
            await self.fake.changes.wait_for(lambda: step.done(new()), STEP_TIMEOUT)
        except TimeoutError:
            self._print(new())
            raise ScriptFailed(f"Nothing final appeared after {step.header}.") from None
        await self._settled()
        messages = new()
        self._print(messages)
        if problem := step.expect(messages):
            raise ScriptFailed(problem)

    async def _settled(self) -> None:
        for _ in range(40):
            version = self.fake.changes.version
            await asyncio.sleep(QUIET_FOR)
            if version == self.fake.changes.version:
                return

    def _print(self, messages: list[RecordedMessage]) -> None:
        for message in sorted(messages, key=lambda m: m.id):
            for line in render_message(message, self.style, self.clock.now(), self.lang):
                self.say(line)
        self.say()

    # -- the steps ------------------------------------------------------------------

    def slash(self, name: str, **options: Any) -> Callable[[], Awaitable[FakeInteraction]]:
        return lambda: self.fake.run_slash(name, options, locale=self.lang)

    def video(self, prompt: str, fmt: str) -> Step:
        def expect(messages: list[RecordedMessage]) -> str | None:
            done = _finished(messages)
            if done is None or not _title(done).startswith("✅"):
                return f"The {fmt}-format video did not finish with ✅."
            if not any(a.filename.endswith(".mp4") for a in done.attachments):
                return f"The {fmt}-format video was not attached."
            return None

        attaching = t("live.attaching", self.lang)

        def done(messages: list[RecordedMessage]) -> bool:
            # The result is shown first and its file follows in a later edit (after the
            # download, with no change to Discord meanwhile): wait for that edit, which
            # takes the "attaching" line away, rather than for a quiet moment.
            final = _finished(messages)
            return final is not None and attaching not in final.content

        return Step(
            f'/video prompt:"{prompt}" ({fmt} format)',
            self.slash("video", prompt=prompt),
            done,
            expect,
        )

    def outage(self, prompt: str, fmt: str) -> Step:
        async def act() -> FakeInteraction:
            self.relay.fail_next(
                "submit", status=503, body="<html>502 Bad Gateway</html>", content_type="text/html"
            )
            return await self.slash("video", prompt=prompt)()

        refunded = t("refund.refunded", self.lang, units=1)

        def expect(messages: list[RecordedMessage]) -> str | None:
            done = _finished(messages)
            if done is None or not _title(done).startswith("❌"):
                return "The video during the relay outage did not end as failed (❌)."
            if refunded not in _text(done):
                return "The failed video did not say that the units were refunded."
            return None

        return Step(
            f'/video prompt:"{prompt}" ({fmt} format, the relay answers 503)',
            act,
            lambda messages: _finished(messages) is not None,
            expect,
        )

    def rule_break(self) -> Step:
        """HD asked of the default model, which (shipped) has none: the catalogue's sentence."""
        catalogue = shipped_catalogue()
        model = catalogue.default.name
        try:
            catalogue.resolve(VideoRequest.build(prompt="a boat at dawn", hd=True, model=model))
        except InvalidRequest as exc:
            sentence = invalid_request_text(exc, self.lang)
        else:  # pragma: no cover - the shipped default model has no HD
            raise AssertionError(f"{model} renders HD; the sandbox's rule break needs another")

        def expect(messages: list[RecordedMessage]) -> str | None:
            reply = _private(messages)
            if reply is None or sentence not in reply.content:
                return f"The HD-with-{model} request was not refused privately."
            if any(not m.ephemeral and not m.deleted for m in messages):
                return f"The HD-with-{model} refusal left a public message."
            return None

        return Step(
            f'/video prompt:"a boat at dawn" hd:True model:{model} ({model} has no HD)',
            self.slash("video", prompt="a boat at dawn", hd=True, model=model),
            lambda messages: _private(messages) is not None,
            expect,
        )

    def over_quota(self, used: int, limit: int) -> Step:
        start = _before(
            t("quota.user_exhausted", self.lang, used=used, limit=limit, cost=2, resets="\x00")
        )

        def expect(messages: list[RecordedMessage]) -> str | None:
            reply = _private(messages)
            if reply is None or start not in reply.content:
                return f"The member over the daily quota was not told they used {used} of {limit}."
            if _finished(messages) is not None or self.relay.submits_for("a longer cat video") > 0:
                return "A video was made past the daily quota."
            return None

        return Step(
            f'/video prompt:"a longer cat video" duration:15 (needs 2 units; daily quota {limit})',
            self.slash("video", prompt="a longer cat video", duration=15),
            lambda messages: _private(messages) is not None,
            expect,
        )

    def quota(self, used: int, limit: int) -> Step:
        title = t("quota.title", self.lang)

        def reply(messages: list[RecordedMessage]) -> RecordedMessage | None:
            return next((m for m in messages if m.ephemeral and m.embeds), None)

        def expect(messages: list[RecordedMessage]) -> str | None:
            shown = reply(messages)
            if (
                shown is None
                or title not in _title(shown)
                or f"{used} / {limit}" not in _text(shown)
            ):
                return f"/quota did not show {used} / {limit} units used."
            return None

        return Step("/quota", self.slash("quota"), lambda m: reply(m) is not None, expect)


async def run_session(formats: Sequence[RelayFormat], lang: str, out: TextIO) -> None:
    """Start the fakes, then one bot per format; the last bot also meets the failures."""
    limit = len(formats) + 1  # every video once, then too little left for a 2-unit one
    with tempfile.TemporaryDirectory(prefix="sora-sandbox-") as workdir:
        async with (
            FakeDiscord(edit_rate_limit=(50, 1.0), message_rate_limit=(50, 1.0)) as fake,
            FakeRelay(api_key=RELAY_KEY) as relay,
        ):
            session = Session(fake, relay, Path(workdir), lang, out)
            restore = fake.point_discord_py_here()
            try:
                session.say(
                    f"Sandbox: the real bot against a fake Discord ({fake.url}) and a fake relay "
                    f"({relay.url}); member alice, locale {lang}, daily quota {limit} units."
                )
                session.say()
                for index, fmt in enumerate(formats):
                    async with session.bot(session.settings(fmt, limit)):
                        await session.run(session.video("a cat walks across a piano", fmt))
                        if index < len(formats) - 1:
                            continue
                        await session.run(session.outage("a calm lake", fmt))
                        await session.run(session.rule_break())
                        await session.run(session.over_quota(len(formats), limit))
                        await session.run(session.quota(len(formats), limit))
            finally:
                restore()
            if fake.internal_errors:
                raise ScriptFailed(f"The fake Discord failed inside: {fake.internal_errors[0]!r}.")


def _quiet_logs() -> None:
    """Only real trouble reaches stderr; discord.py's voice warnings are noise offline."""
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("discord.client").setLevel(logging.CRITICAL)


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the scripted session; 0 if every step ended as expected, 1 with one sentence if not."""
    stream = out or sys.stdout
    try:
        lang = discord.Locale(args.lang).value
    except ValueError:
        print(f"--lang {args.lang} is not a Discord locale (try en-US or zh-CN).", file=sys.stderr)
        return 2
    formats = FORMATS if args.format == "all" else (args.format,)
    _quiet_logs()
    try:
        asyncio.run(run_session(formats, lang, stream))
    except ScriptFailed as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    return 0
