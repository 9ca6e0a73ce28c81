"""/quota for everyone; /quota-admin and /relay for members who manage the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.jobs.defaults import ModelNotAllowedError
from bot.store.preferences import Defaults
from bot.tree import locale_of, manages_guild, member_context
from bot.ui.embeds import quota_embed, relay_status_embed
from bot.ui.i18n import t
from bot.ui.settings import labeller, summary

if TYPE_CHECKING:
    from bot.app import VideoBot


class Quota(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="quota", description=_("Show your and this server's video units"))
    async def quota(self, interaction: discord.Interaction) -> None:
        roles, is_admin = member_context(interaction)
        locale = locale_of(interaction)
        status = await self.bot.db.quotas.status(
            interaction.guild_id, interaction.user.id, roles, is_admin=is_admin
        )
        embed = quota_embed(
            status,
            locale,
            self.bot.clock.now(),
            in_guild=interaction.guild_id is not None,
            prices=self.bot.costs,
            defaults=await self._defaults(interaction, locale),
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _defaults(self, interaction: discord.Interaction, locale: str) -> str | None:
        """What a /video with no options renders here, with a pointer to /settings."""
        if interaction.guild_id is None:
            return None
        try:
            resolved = await self.bot.defaults.resolve(
                interaction.guild_id, interaction.user.id, Defaults()
            )
        except ModelNotAllowedError:
            return None
        shown = summary(resolved, locale, labeller(self.bot.catalogue, locale))
        return t("settings.quota_line", locale, summary=shown)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class QuotaAdmin(
    commands.GroupCog,
    group_name="quota-admin",
    group_description=_("Manage this server's video units"),
):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Default permissions can be overridden by the server; check again here."""
        return manages_guild(interaction)

    @app_commands.command(
        name="set", description=_("Set the monthly server limit and daily member limit")
    )
    @app_commands.describe(
        monthly=_("Units per month for the whole server (empty = keep)"),
        daily=_("Units per day for each member (empty = keep)"),
    )
    async def set_limits(
        self,
        interaction: discord.Interaction,
        monthly: app_commands.Range[int, 0, 1_000_000] | None = None,
        daily: app_commands.Range[int, 0, 1_000_000] | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        changes: dict[str, int] = {}
        if monthly is not None:
            changes["monthly"] = monthly
        if daily is not None:
            changes["user_daily"] = daily
        if changes:
            await self.bot.db.quotas.set_limits(interaction.guild_id, **changes)  # type: ignore[arg-type]
        await self._show(interaction)

    @app_commands.command(name="grant", description=_("Give extra units to the server or a member"))
    @app_commands.describe(units=_("How many units"), member=_("Member to show"))
    async def grant(
        self,
        interaction: discord.Interaction,
        units: app_commands.Range[int, 1, 1_000_000],
        member: discord.Member | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        await self.bot.db.quotas.grant(
            interaction.guild_id,
            units,
            user_id=member.id if member else None,
            actor=interaction.user.id,
        )
        await self._show(interaction, member)

    @app_commands.command(name="reset", description=_("Clear the usage of the server or a member"))
    @app_commands.describe(member=_("Member to show"))
    async def reset(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await self.bot.db.quotas.reset(
            interaction.guild_id, user_id=member.id if member else None, actor=interaction.user.id
        )
        await self._show(interaction, member)

    async def _show(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        target = member or interaction.user
        roles = [role.id for role in target.roles] if isinstance(target, discord.Member) else []
        status = await self.bot.db.quotas.status(interaction.guild_id, target.id, roles)
        embed = quota_embed(status, locale_of(interaction), self.bot.clock.now())
        await interaction.response.send_message(embed=embed, ephemeral=True)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Relay(commands.GroupCog, group_name="relay", group_description=_("Check the video services")):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return manages_guild(interaction)

    @app_commands.command(name="status", description=_("Check the video services"))
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = locale_of(interaction)
        embed = relay_status_embed(await self.bot.relay.health(), locale)
        running, waiting = self.bot.engine.queue.running, len(self.bot.engine.queue)
        embed.set_footer(text=t("queue.summary", locale, running=running, waiting=waiting))
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Quota(bot))
    await bot.add_cog(QuotaAdmin(bot))
    await bot.add_cog(Relay(bot))
