"""The Bot subclass: `setup_hook` wires the store, the relay, the job engine and the cogs.

Dependencies are built here and handed to the parts that need them; nothing is a
module-level global, so tests can start several bots against loopback fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

import aiohttp
import discord
import yarl
from discord.ext import commands

from bot.catalogue import Catalogue
from bot.clock import Clock, SystemClock
from bot.jobs.costs import Prices
from bot.jobs.defaults import DefaultsService
from bot.jobs.engine import JobEngine
from bot.live_messages import LiveMessages
from bot.logs import install_token_redaction
from bot.operator_notices import OperatorNotices
from bot.relay.pool import RelayPool
from bot.relay.webhook import NoticeReceiver
from bot.settings import Settings
from bot.store.interface import Store, open_store
from bot.tree import VideoTree
from bot.ui.i18n import BotTranslator
from bot.ui.views import JobActions

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.video", "cogs.characters", "cogs.jobs", "cogs.admin", "cogs.settings")
IMAGE_CLEANUP_INTERVAL = 3600.0  # real seconds between two sweeps of unused images
OFFERS_STARTUP_WAIT = 5.0  # real seconds start-up waits for the relays' model lists


def point_at_discord(api_base: str, gateway_url: str) -> None:
    """Use a REST/gateway proxy (or a loopback fake) instead of Discord's own hosts."""
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class VideoBot(commands.AutoShardedBot):
    """The bot. Shards automatically, or runs the shards `SHARD_IDS` of `SHARD_COUNT`;
    needs no privileged intents.

    A process may run only some shards: it receives the interactions of their guilds,
    while any process can render and deliver any job (edits, follow-ups and uploads are
    REST calls, which need no gateway). Commands are never synced at start-up: that is
    `python -m bot sync`, run once per change, not by every process.
    """

    db: Store
    relay: RelayPool
    engine: JobEngine
    defaults: DefaultsService
    live: LiveMessages
    job_actions: JobActions  # set by the video cog; the persistent buttons call it

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sync_only: bool = False,
        freeze_gc: bool = False,
        **options: object,
    ) -> None:
        install_token_redaction()  # discord.py logs interaction tokens at DEBUG
        intents = discord.Intents.default()
        intents.message_content = False
        intents.typing = False
        intents.presences = False
        if settings.shard_count is not None:
            options.setdefault("shard_count", settings.shard_count)
        if settings.shard_ids:
            options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            tree_cls=VideoTree,
            allowed_mentions=discord.AllowedMentions.none(),
            # A bounded, kept-alive pool: a burst of commands reuses connections instead of
            # opening one per concurrent callback (measured: about half the burst latency).
            connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60),
            **options,  # type: ignore[arg-type]
        )
        self.settings = settings
        self.clock = clock or SystemClock()
        #: The video models (shipped defaults changed by MODELS_FILE): rules, prices, times.
        self.catalogue: Catalogue = settings.catalogue()
        self.costs = Prices.from_settings(self.catalogue, settings.cost_table)
        if (note := self.costs.table_note()) is not None:
            log.warning(note)
        self.sync_only = sync_only
        self.freeze_gc = freeze_gc  # the real process only; tests share their interpreter
        self.notice_receiver: NoticeReceiver | None = None
        self._image_cleaner: asyncio.Task[None] | None = None

    async def setup_hook(self) -> None:
        await self.tree.set_translator(BotTranslator())
        if self.sync_only:  # `python -m bot sync`: commands only, no jobs resumed
            for extension in EXTENSIONS:
                await self.load_extension(extension)
            return
        s = self.settings
        self.db = await open_store(
            s.database_url.get_secret_value() if s.database_url else None,
            s.database_path,
            clock=self.clock,
            pool_size=s.database_pool_size,
            default_guild_monthly=s.quota_guild_monthly,
            default_user_daily=s.quota_user_daily,
        )
        self.defaults = DefaultsService(self.db.preferences, self.catalogue)
        await self.defaults.load()
        await self.clean_images()
        self._image_cleaner = asyncio.create_task(self._clean_images_hourly(), name="images")
        self.relay = RelayPool.from_settings(s, clock=self.clock, catalogue=self.catalogue)
        await self.relay.read_offers_at_start(OFFERS_STARTUP_WAIT)
        self.engine = JobEngine(
            self.db,
            self.relay,
            costs=self.costs,
            catalogue=self.catalogue,
            clock=self.clock,
            max_running=s.max_concurrent_jobs,
            max_per_guild=s.max_concurrent_jobs_per_guild,
            deadline_minutes=s.job_deadline_minutes,
            host=s.process_name or None,
            lease_seconds=s.job_lease_seconds,
        )
        self.live = LiveMessages(
            self,
            min_interval=s.progress_edit_interval,
            token_ttl=s.interaction_token_ttl,
            max_download_bytes=s.max_download_bytes,
            edits_per_second=s.progress_edits_per_second,  # the bot's; see _share_edits
            clock=self.clock,
            # Videos stream to disk beside the database before upload, and are removed.
            download_dir=s.database_path.parent / "downloads",
            owner=self.engine.owner,
        )
        self.engine.add_listener(self.live.on_update)
        # Budgets of the relay keys and of the bot token are shared by every process.
        self.engine.add_share_listener(self.relay.set_share)
        self.engine.add_share_listener(self._share_edits)
        self.notices = OperatorNotices(self, channel_id=s.operator_channel_id)
        if s.public_base_url:  # callbacks arrive at the notice listener
            s.require("relay_webhook_port", "relay_webhook_secret")
        if s.relay_webhook_port is not None:
            s.require("relay_webhook_secret")
            assert s.relay_webhook_secret is not None
            self.notice_receiver = NoticeReceiver(
                self.notices.handle,
                secret=s.relay_webhook_secret.get_secret_value(),
                host=s.relay_webhook_host,
                port=s.relay_webhook_port,
                callbacks=self.relay.callbacks if s.public_base_url else None,
            )
            await self.notice_receiver.start()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.engine.start()
        await self.live.redeliver_pending()

    def _share_edits(self, processes: int) -> None:
        """The edit budget is the bot token's: each of the live processes keeps its share,
        and never more than its shards' share (`SHARD_IDS` of `SHARD_COUNT`), which holds
        from the start, before the processes have seen each other in the database, and
        with processes that keep separate databases."""
        self.live.set_share(max(float(processes), 1 / self.settings.shard_share))

    async def clean_images(self) -> None:
        """Drop reference images no rerun can need any more (`IMAGE_RETENTION_DAYS`)."""
        try:
            removed = await self.db.images.cleanup(self.settings.image_retention_days)
        except Exception:
            log.exception("could not clean up reference images")
            return
        if removed:
            days = self.settings.image_retention_days
            log.info("removed %d reference images unused for %g days", removed, days)

    async def _clean_images_hourly(self) -> None:
        # Real time, not self.clock: a test's fake clock would turn this into a busy loop.
        while True:
            await asyncio.sleep(IMAGE_CLEANUP_INTERVAL)
            await self.clean_images()

    async def close(self) -> None:
        if self._image_cleaner is not None:
            self._image_cleaner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._image_cleaner
        if self.notice_receiver is not None:
            await self.notice_receiver.stop()
        if hasattr(self, "engine"):
            await self.engine.stop()
        if hasattr(self, "live"):
            await self.live.close()
        if hasattr(self, "relay"):
            await self.relay.aclose()
        if hasattr(self, "db"):
            await self.db.close()
        await super().close()

    async def on_ready(self) -> None:
        if self.freeze_gc:
            settle_garbage_collector()
        shards = ",".join(str(shard) for shard in sorted(self.shards))
        log.info(
            "ready as %s in %d servers (shards %s of %s)",
            self.user,
            len(self.guilds),
            shards,
            self.shard_count,
        )


def settle_garbage_collector() -> None:
    """Keep the collector's full passes out of a burst of commands.

    Measured with 200 `/video` at once: the oldest generation's passes walked every
    object discord.py, pydantic and aiohttp made at start-up and paused the event loop
    for 30-90 ms, right while acknowledgements were due. Objects alive once the bot is
    ready live as long as the process, so they are moved out of the collector's sight.
    """
    gc.collect()
    gc.freeze()


async def run_bot(settings: Settings) -> None:
    settings.require("discord_token")
    settings.relay_configs()  # fails with one line when no relay is configured
    point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
    assert settings.discord_token is not None
    async with VideoBot(settings, freeze_gc=True) as bot:
        await bot.start(settings.discord_token.get_secret_value())


async def sync_commands(settings: Settings, guild_id: int | None = None) -> list[str]:
    """Register the slash commands with Discord (globally, or in one guild at once)."""
    settings.require("discord_token")
    point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
    assert settings.discord_token is not None
    bot = VideoBot(settings, sync_only=True)
    try:
        await bot.login(settings.discord_token.get_secret_value())  # runs setup_hook
        guild = discord.Object(guild_id) if guild_id else None
        if guild is not None:
            bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
        return [command.name for command in synced]
    finally:
        await bot.close()
