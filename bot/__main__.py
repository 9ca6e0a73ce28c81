"""`python -m bot`: run the bot, sync its commands, or check and use the relay by hand.

    python -m bot                 # same as `run`
    python -m bot [run] [--shard-ids 0,1 --shard-count 4]
    python -m bot sync [--guild ID]
    python -m bot check [--verbose]
    python -m bot sandbox [--lang zh-CN] [--format task|official|chat|all]
    python -m bot migrate         # apply pending migrations; prints from -> to
    python -m bot copy-db [--from sqlite:PATH] [--to postgresql://…] [--replace]
    python -m bot generate [--verbose] [--format chat|task|official] [--portrait|--landscape]
                           [--duration 10|15|25] [--hd] [--model M] [--image PATH_OR_URL]...
                           [--output FILE] PROMPT

`generate` prints progress on stderr and the video link alone as the last line of stdout;
with `--output FILE` it saves the video to FILE and prints FILE's path last instead. A
relay that serves the file but gives no link (OpenAI's own official format) can only be
saved: without `--output` the video goes to `sora-<id>.mp4` in the current folder.
Every failure is one plain sentence on stderr: exit 2 for bad options or settings, 1 for
a relay failure. `--verbose` adds, before that sentence, what the relay said (its status,
request id and words, which may be JSON or HTML; the key is redacted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import mimetypes
import os
import sqlite3
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import aiohttp
import discord
from pydantic import ValidationError

from bot.jobs.costs import CostTableError
from bot.logs import secrets_of, setup_logging
from bot.relay.errors import RelayError
from bot.relay.models import (
    Finished,
    ImageInput,
    InvalidRequest,
    Progress,
    Submitted,
    VideoRequest,
    VideoResult,
)
from bot.settings import Settings, SettingsError, database_password, load_settings
from bot.store.database import MigrationError, SchemaTooNewError

if TYPE_CHECKING:
    from bot.relay.client import RelayClient
    from bot.relay.pool import RelayHealth

log = logging.getLogger("bot")

EXIT_FAILED = 1
EXIT_USAGE = 2


_VERBOSE_HELP = "also print what the relay said on a failure (status, request id, raw text)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _shard_flags(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a flag given before `run` is not reset by the subcommand's own default.
    parser.add_argument(
        "--shard-ids",
        default=argparse.SUPPRESS,
        metavar="0,1",
        help="the shards this process runs (SHARD_IDS); the others run elsewhere",
    )
    parser.add_argument(
        "--shard-count",
        type=int,
        default=argparse.SUPPRESS,
        metavar="N",
        help="the bot's shards in all, over every process (SHARD_COUNT)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bot", description="Sora video bot for Discord.")
    _shard_flags(parser)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _shard_flags(sub.add_parser("run", help="run the bot (default)"))
    sync = sub.add_parser("sync", help="publish the slash commands to Discord")
    sync.add_argument("--guild", type=int, default=None, help="only this guild (instant)")
    check = sub.add_parser("check", help="reach the relay, validate the key, list models")
    check.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    gen = sub.add_parser("generate", help="render one video and print its link")
    gen.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    gen.add_argument("--format", choices=["chat", "task", "official"], default=None)
    side = gen.add_mutually_exclusive_group()
    side.add_argument("--portrait", dest="orientation", action="store_const", const="portrait")
    side.add_argument("--landscape", dest="orientation", action="store_const", const="landscape")
    gen.add_argument(
        "--duration", type=int, default=None, help="seconds (default: the model's first)"
    )
    gen.add_argument("--hd", action="store_true")
    gen.add_argument("--model", default=None, help="a catalogue model (default: its default)")
    gen.add_argument("--image", action="append", default=[], metavar="PATH_OR_URL")
    gen.add_argument(
        "--output", "-o", type=Path, default=None, metavar="FILE", help="save the video to FILE"
    )
    gen.add_argument("prompt", metavar="PROMPT")
    sub.add_parser(
        "migrate", help="apply pending database migrations (DATABASE_URL, else DATABASE_PATH)"
    )
    copy = sub.add_parser("copy-db", help="copy a SQLite installation into PostgreSQL")
    copy.add_argument(
        "--from", dest="source", default=None, metavar="sqlite:PATH",
        help="the SQLite database (default: sqlite:DATABASE_PATH)",
    )  # fmt: skip
    copy.add_argument(
        "--to", dest="target", default=None, metavar="postgresql://…",
        help="an empty PostgreSQL database (default: DATABASE_URL)",
    )  # fmt: skip
    copy.add_argument(
        "--replace", action="store_true", help="empty a target that already holds data first"
    )
    box = sub.add_parser("sandbox", help="replay a scripted session offline, on built-in fakes")
    box.add_argument("--lang", default="en-US", help="the member's Discord locale, e.g. zh-CN")
    box.add_argument("--format", choices=["task", "official", "chat", "all"], default="all")
    return parser


def _say(sentence: str) -> None:
    print(sentence, file=sys.stderr, flush=True)


def _relay_failure(err: RelayError, *, verbose: bool = False) -> None:
    """The one sentence (last line of stderr); with `--verbose`, what the relay said first.

    The relay's own words can be JSON or an HTML page: they are for an operator who asks,
    never part of the sentence. They were redacted of the key where they were read.
    """
    if verbose:
        for line in _relay_detail(err.code, err.detail, err.status, err.request_id):
            _say(line)
    _say(err.user_message)


def _relay_detail(
    code: str, detail: str | None, status: int | None = None, request_id: str | None = None
) -> list[str]:
    where = ", ".join(
        part
        for part in (
            f"HTTP {status}" if status is not None else "",
            f"request id {request_id}" if request_id else "",
        )
        if part
    )
    head = f"relay error {code}" + (f" ({where})" if where else "")
    text = (detail or "").strip() or "(no detail)"
    return [f"{head}: {text}"]


def _image(value: str, settings: Settings) -> ImageInput:
    if value.startswith(("http://", "https://")):
        return _checked_image(url=value)
    path = Path(value)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(
            "image_file", f"Cannot read the image {value}: {exc.strerror}."
        ) from None
    if len(data) > settings.max_image_bytes:
        raise InvalidRequest(
            "image_size", f"The image {value} is larger than {settings.max_image_bytes:,} bytes."
        )
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _checked_image(data=data, content_type=content_type, filename=path.name)


def _checked_image(**fields: object) -> ImageInput:
    try:
        return ImageInput.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, InvalidRequest):
                raise cause from None
        raise InvalidRequest("image", "That image cannot be used.") from None


def _request(args: argparse.Namespace, settings: Settings) -> VideoRequest:
    """The request as the bot would render it: checked against the model's catalogue entry
    (`InvalidRequest` with its one sentence), with the model's own default duration."""
    chosen = {"duration": args.duration, "model": args.model}
    request = VideoRequest.build(
        prompt=args.prompt,
        orientation=args.orientation or "portrait",
        hd=args.hd,
        images=tuple(_image(value, settings) for value in args.image),
        **{name: value for name, value in chosen.items() if value is not None},
    )
    return settings.catalogue().resolve(request)


async def _generate(args: argparse.Namespace, settings: Settings, request: VideoRequest) -> int:
    from bot.relay.client import RelayClient

    client = RelayClient.from_config(
        settings.relay_configs()[0],
        timeout=settings.relay_timeout,
        stream_idle=settings.relay_stream_idle_seconds,
        catalogue=settings.catalogue(),
    )
    if args.format:
        client.format = args.format
    if not client.carries(request):
        _say(f"{request.model} cannot go in the {client.format} format; pick another model.")
        await client.aclose()
        return EXIT_USAGE
    deadline = settings.job_deadline_minutes * 60
    try:
        async with client:
            async for event in client.generate(request, deadline=deadline):
                match event:
                    case Submitted(relay_id=relay_id):
                        _say(f"submitted ({client.format}): {relay_id or 'no id yet'}")
                    case Progress(percent=percent, phase=phase):
                        shown = "" if percent is None else f" {percent:g}%"
                        _say(f"{phase}{shown}")
                    case Finished(result=result):
                        return await _deliver(client, result, args.output, verbose=args.verbose)
    except RelayError as err:
        _relay_failure(err, verbose=args.verbose)
        return EXIT_FAILED
    _say("The relay ended without a video link.")
    return EXIT_FAILED


async def _deliver(
    client: RelayClient, result: VideoResult, output: Path | None, *, verbose: bool = False
) -> int:
    """Print the link, or save the file (always, when the relay gives no link)."""
    if output is None and result.url:
        print(result.url, flush=True)
        return 0
    if output is None:
        output = Path(f"sora-{(result.relay_id or 'video').replace(':', '_')}.mp4")
        _say(f"The relay gives no link to this video; saving it to {output}.")
    try:
        await _save(client, result.location, output)
    except OSError as exc:
        _say(f"Cannot write the video to {output}: {exc.strerror or exc}.")
        return EXIT_FAILED
    except RelayError as err:
        # The render is done and billed: say where it is rather than invite a second one.
        if verbose:
            for line in _relay_detail(err.code, err.detail, err.status, err.request_id):
                _say(line)
        _say(
            f"Video {result.relay_id} is finished but could not be downloaded from "
            f"{result.location}."
        )
        return EXIT_FAILED
    print(output, flush=True)
    return 0


async def _save(client: RelayClient, location: str, output: Path) -> None:
    """Stream into a temporary file beside `output`, then rename: FILE is whole or absent."""
    folder = output.parent
    handle, temp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(handle, "w+b") as sink:
            await client.fetch_into(location, sink, max_bytes=None)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


async def _check(settings: Settings, *, verbose: bool = False) -> int:
    """Reach every configured relay, validate its key, list its models: one block each."""
    from bot.relay.pool import RelayPool

    pool = RelayPool.from_settings(settings, catalogue=settings.catalogue())
    try:
        report = await pool.health()
    finally:
        await pool.aclose()
    failed = 0
    for member, health in zip(pool.members, report, strict=True):
        print(f"relay: {health.name} ({health.format}) {member.client.base_url}")
        if not health.ok:
            failed += 1
            if verbose:
                for line in _relay_detail(health.error_code or "relay_error", health.detail):
                    _say(f"relay {health.name}: {line}")
            _say(f"relay {health.name}: {health.error}")
            for line in _offer_lines(health):
                print(line)
            continue
        latency = f"{health.latency * 1000:.0f} ms" if health.latency is not None else "?"
        print(f"key: accepted ({latency})")
        print(f"models: {len(health.models)} ({_some(health.models)})")
        for line in _offer_lines(health):
            print(line)
    return EXIT_FAILED if failed else 0


def _some(names: Sequence[str], limit: int = 20) -> str:
    return ", ".join(names[:limit]) + (", …" if len(names) > limit else "")


def _offer_lines(health: RelayHealth) -> list[str]:
    """Which catalogue models the relay offers, and what it lists that the catalogue
    doesn't know (a model to add to MODELS_FILE, or a text model)."""
    offers = ", ".join(health.offers) or "none of the catalogue's models"
    if not health.listed:
        return [f"offers: unknown, no model list; may carry {offers} (its format)"]
    lines = [f"offers: {offers}"]
    if health.unknown:
        lines.append(f"not in the catalogue: {len(health.unknown)} ({_some(health.unknown)})")
    return lines


def _run(settings: Settings) -> int:
    import bot.app

    asyncio.run(bot.app.run_bot(settings))
    return 0


async def _migrate(settings: Settings) -> int:
    """`python -m bot migrate`: the configured store's pending migrations, from→to."""
    from bot.store.transfer import TransferError, migrate_store

    url = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        report = await migrate_store(url, settings.database_path)
    except TransferError as exc:
        _say(str(exc))
        return EXIT_FAILED
    print(report.line())
    return 0


async def _copy_db(
    settings: Settings, source: str | None, target: str | None, replace: bool
) -> int:
    """`python -m bot copy-db`: SQLite → PostgreSQL, proven row by row (bot.store.transfer)."""
    import asyncpg

    from bot.store.postgres import safe_url
    from bot.store.transfer import TransferError, copy_sqlite_to_postgres, parse_source

    if target is None and settings.database_url is None:
        _say("copy-db needs --to postgresql://… (or DATABASE_URL).")
        return EXIT_USAGE
    to = target or (settings.database_url.get_secret_value() if settings.database_url else "")
    try:
        path = parse_source(source or f"sqlite:{settings.database_path}")
        report = await copy_sqlite_to_postgres(path, to, replace=replace)
    except TransferError as exc:
        _say(str(exc))
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:
        _say(f"The SQLite database cannot be read: {exc}.")
        return EXIT_FAILED
    except asyncpg.PostgresError as exc:
        _say(f"PostgreSQL refused the copy, nothing was kept: {str(exc).splitlines()[0]}.")
        return EXIT_FAILED
    print(report.line(f"sqlite:{path}", safe_url(to)))
    return 0


def _sync(settings: Settings, guild_id: int | None) -> int:
    import bot.app

    names = asyncio.run(bot.app.sync_commands(settings, guild_id))
    print(f"synced {len(names or [])} commands" + (f" to guild {guild_id}" if guild_id else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "run"
    if command == "sandbox":  # no keys, no .env: everything it needs is built in
        from bot.sandbox import main as sandbox

        return sandbox(args)
    try:
        flags = {
            name: getattr(args, name)
            for name in ("shard_ids", "shard_count")
            if hasattr(args, name)
        }
        settings = load_settings(**flags)
        if command in ("run", "sync"):
            settings.require("discord_token")
        needs_relays = command not in ("sync", "migrate", "copy-db")
        relays = settings.relay_configs() if needs_relays else []
    except SettingsError as exc:
        _say(str(exc))
        return EXIT_USAGE
    secrets = [
        settings.relay_api_key,
        settings.discord_token,
        settings.relay_webhook_secret,
        *(relay.api_key for relay in relays),
        database_password(settings),
    ]
    setup_logging(settings.log_level, secrets_of(*secrets))
    try:
        match command:
            case "generate":
                try:
                    request = _request(args, settings)
                except InvalidRequest as exc:
                    _say(exc.message)
                    return EXIT_USAGE
                if args.output is not None and not args.output.parent.is_dir():
                    # Checked before anything is spent: a paid render must have a place to go.
                    _say(f"The folder of {args.output} does not exist.")
                    return EXIT_USAGE
                return asyncio.run(_generate(args, settings, request))
            case "check":
                return asyncio.run(_check(settings, verbose=args.verbose))
            case "sync":
                return _sync(settings, args.guild)
            case "migrate":
                return asyncio.run(_migrate(settings))
            case "copy-db":
                return asyncio.run(_copy_db(settings, args.source, args.target, args.replace))
            case _:
                return _run(settings)
    except KeyboardInterrupt:
        return 130
    except discord.LoginFailure:
        _say("DISCORD_TOKEN was rejected by Discord; copy the bot token again from the portal.")
        return EXIT_USAGE
    except (aiohttp.ClientError, discord.GatewayNotFound, discord.HTTPException) as exc:
        reason = type(exc).__name__
        _say(f"Discord could not be reached ({reason}); check the network and DISCORD_API_BASE.")
        return EXIT_FAILED
    except (SettingsError, SchemaTooNewError, MigrationError, CostTableError) as exc:
        _say(str(exc))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
