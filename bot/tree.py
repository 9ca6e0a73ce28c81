"""The command tree, and the one place where errors become what a member reads.

Cogs raise the bot's own exceptions (a rule broken, quota exhausted, unknown alias, a
relay failure) and this handler answers with one short sentence in the member's
language, ephemeral. Anything unexpected is logged with a reference and answered with a
generic apology, so no traceback ever reaches Discord.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import discord
from discord import app_commands

from bot.images import AttachmentError
from bot.jobs.defaults import ModelNotAllowedError
from bot.jobs.engine import JobError
from bot.relay.errors import ContentPolicyError, RelayError
from bot.relay.models import InvalidRequest
from bot.store.characters import AliasError
from bot.store.quotas import QuotaExceededError
from bot.ui.i18n import (
    alias_error_text,
    attachment_error_text,
    invalid_request_text,
    job_error_text,
    model_not_allowed_text,
    quota_error_text,
    relay_error_text,
    t,
)

log = logging.getLogger(__name__)


class UserFacingError(Exception):
    """A cog's own refusal: a catalogue key plus its parameters."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def locale_of(interaction: discord.Interaction) -> str:
    return str(interaction.locale)


def manages_guild(interaction: discord.Interaction) -> bool:
    """Whether the member may administer the bot here (Manage Server)."""
    member = interaction.user
    return isinstance(member, discord.Member) and member.guild_permissions.manage_guild


def member_context(interaction: discord.Interaction) -> tuple[list[int], bool]:
    """The member's role ids and whether they manage the server (quota rules use both)."""
    user = interaction.user
    roles = [role.id for role in user.roles] if isinstance(user, discord.Member) else []
    return roles, manages_guild(interaction)


def describe_error(exc: BaseException, locale: str) -> str | None:
    """The sentence for a known error in `locale`, or None for an unexpected one."""
    match exc:
        case UserFacingError():
            return t(exc.key, locale, **exc.params)
        case AttachmentError():
            limit = float(str(exc.params.get("limit_mb", 10)))
            return attachment_error_text(exc.code, exc.name, locale, limit_mb=limit)
        case InvalidRequest():
            return invalid_request_text(exc, locale)
        case QuotaExceededError():
            return quota_error_text(exc, locale)
        case AliasError():
            return alias_error_text(exc, locale)
        case JobError():
            return job_error_text(exc.code, exc.job_id, locale)
        case ModelNotAllowedError():
            return model_not_allowed_text(exc, locale)
        case ContentPolicyError():
            return t(f"content_policy_{exc.stage}", locale)
        case RelayError():
            return relay_error_text(exc.code, locale)
    return None


async def reply_privately(interaction: discord.Interaction, text: str) -> None:
    """Answer with an ephemeral sentence, whatever state the interaction is in.

    After a public "thinking" defer, that placeholder is removed first so a refusal meant
    for one member doesn't stay in the channel.
    """
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not answer interaction %s", interaction.id)


async def render_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer `interaction` with the sentence for `error`; log anything unexpected."""
    locale = locale_of(interaction)
    if isinstance(error, app_commands.NoPrivateMessage):
        await reply_privately(interaction, t("generic.guild_only", locale))
        return
    if isinstance(error, app_commands.CheckFailure):
        await reply_privately(interaction, t("not_allowed", locale))
        return
    text = describe_error(error, locale)
    if text is None:
        reference = uuid.uuid4().hex[:8]
        name = interaction.command.qualified_name if interaction.command else "component"
        log.error("/%s failed (ref %s)", name, reference, exc_info=error)
        text = t("internal_error", locale, ref=reference)
    await reply_privately(interaction, text)


def server_only(command: object) -> bool:
    """Whether a command (or the group it belongs to) is registered as server-only."""
    root = getattr(command, "root_parent", None) or command
    return bool(getattr(root, "guild_only", False))


class AckFirst:
    """Acknowledgements go before any other work of a burst of commands.

    Discord drops an interaction not answered within 3 s, and a member reads "thinking"
    only once it is answered; the job's database rows and first message can wait a few
    milliseconds. Every command counts as unanswered from the moment its gateway frame is
    parsed until it is deferred (or its handler ends); work after a defer first waits
    until none is unanswered, for at most `max_wait` seconds so nothing starves.
    """

    def __init__(self, max_wait: float = 1.0) -> None:
        self.max_wait = max_wait
        self._unanswered: set[int] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def arrived(self, interaction: discord.Interaction[Any]) -> None:
        self._unanswered.add(interaction.id)
        self._idle.clear()

    def answered(self, interaction: discord.Interaction[Any]) -> None:
        self._unanswered.discard(interaction.id)
        if not self._unanswered:
            self._idle.set()

    @property
    def unanswered(self) -> int:
        return len(self._unanswered)

    async def defer(self, interaction: discord.Interaction[Any], **options: Any) -> None:
        """Defer `interaction`, then let the other acknowledgements of the burst go first."""
        try:
            await interaction.response.defer(**options)
        finally:
            self.answered(interaction)
        await self.settled()

    async def settled(self) -> None:
        """Return once no command waits for its acknowledgement (or `max_wait` passed).

        Commands released together go on in the order they arrived (a job's number and
        its place in the queue follow that order): the last one answered, which finds
        nothing to wait for, still steps behind those woken by its answer.
        """
        if self._idle.is_set():
            await asyncio.sleep(0)
            return
        try:
            async with asyncio.timeout(self.max_wait):
                await self._idle.wait()
        except TimeoutError:
            pass


class VideoTree(app_commands.CommandTree):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks = AckFirst()

    def _from_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Called by discord.py as the gateway frame is parsed (before any task runs):
        count the command as unanswered until its handler defers or ends."""
        self.acks.arrived(interaction)

        async def wrapper() -> None:
            try:
                await self._call(interaction)
            except app_commands.AppCommandError as e:
                await self._dispatch_error(interaction, e)
            finally:
                self.acks.answered(interaction)

        self.client.loop.create_task(wrapper(), name="CommandTree-invoker")

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Server-only commands are hidden in DMs, but a stale client or a raw request can
        still send one: refuse it with one sentence before it runs (or spends anything)."""
        if interaction.guild_id is not None or not server_only(interaction.command):
            return True
        if interaction.type is discord.InteractionType.autocomplete:
            return False  # nothing to suggest there; an autocomplete can't carry a sentence
        raise app_commands.NoPrivateMessage

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        cause: BaseException = error
        if isinstance(error, app_commands.CommandInvokeError):
            cause = error.original
        await render_error(interaction, cause)
