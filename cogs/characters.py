"""/character create | list | delete: cameo aliases a server can use as @alias in prompts."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.jobs.engine import JobError
from bot.relay.models import check_timestamps
from bot.tree import UserFacingError, locale_of, manages_guild
from bot.ui.embeds import character_list_embed
from bot.ui.i18n import t

if TYPE_CHECKING:
    from bot.app import VideoBot


@app_commands.guild_only()
class Characters(
    commands.GroupCog, group_name="character", group_description=_("Manage character aliases")
):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="create", description=_("Create a character from a video clip"))
    @app_commands.describe(
        alias=_("Short name to use in prompts"),
        start=_("Second where the character appears"),
        end=_("Second where the clip ends"),
        video=_("Video clip with the character"),
        url=_("Link to a video clip with the character"),
        job=_("Job number of a finished video with the character"),
    )
    async def create(
        self,
        interaction: discord.Interaction,
        alias: app_commands.Range[str, 2, 32],
        start: app_commands.Range[float, 0, 600],
        end: app_commands.Range[float, 0, 600],
        video: discord.Attachment | None = None,
        url: str | None = None,
        job: int | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        sources = [s for s in (video, url, job) if s is not None]
        if len(sources) != 1:
            raise UserFacingError("character.one_source")
        check_timestamps(start, end)
        if await self.bot.db.characters.get(interaction.guild_id, alias) is not None:
            raise UserFacingError("alias_taken", alias=f"@{alias}")
        from_task = None
        relay_name = None
        clip_url = url
        if video is not None:
            if not (video.content_type or "").startswith("video/"):
                raise UserFacingError("character.not_a_video", name=video.filename)
            clip_url = video.url
        if job is not None:
            source = await self.bot.engine.find(job, guild_id=interaction.guild_id)
            if source.status != "succeeded" or not source.relay_id:
                raise JobError("remix_not_finished", job)
            from_task = source.relay_id
            relay_name = source.relay_name
        await interaction.response.defer(thinking=True)
        character = await self.bot.relay.create_character(
            url=clip_url, from_task=from_task, start=start, end=end, relay_name=relay_name
        )
        saved = await self.bot.db.characters.add(
            interaction.guild_id,
            alias,
            character_id=character.id,
            username=character.username,
            permalink=character.permalink,
            picture_url=character.profile_picture_url,
            created_by=interaction.user.id,
        )
        await interaction.followup.send(
            t(
                "character.created",
                locale_of(interaction),
                alias=saved.alias,
                username=saved.username,
            )
        )

    @app_commands.command(name="list", description=_("List this server's characters"))
    async def list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        aliases = await self.bot.db.characters.list(interaction.guild_id)
        await interaction.response.send_message(
            embed=character_list_embed(aliases, locale_of(interaction)), ephemeral=True
        )

    @app_commands.command(name="delete", description=_("Remove a character alias"))
    @app_commands.describe(alias=_("Short name to use in prompts"))
    async def delete(self, interaction: discord.Interaction, alias: str) -> None:
        assert interaction.guild_id is not None
        found = await self.bot.db.characters.get(interaction.guild_id, alias)
        if found is None:
            raise UserFacingError("unknown_alias", names=f"@{alias}")
        if found.created_by != interaction.user.id and not manages_guild(interaction):
            raise UserFacingError("character.not_yours", alias=found.alias)
        await self.bot.db.characters.delete(interaction.guild_id, alias)
        await interaction.response.send_message(
            t("character.deleted", locale_of(interaction), alias=found.alias), ephemeral=True
        )

    @delete.autocomplete("alias")
    async def alias_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> builtins.list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        found = await self.bot.db.characters.search(
            interaction.guild_id, current.lstrip("@"), limit=25
        )
        return [
            app_commands.Choice(name=f"@{a.alias} → @{a.username}"[:100], value=a.alias)
            for a in found
        ]


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Characters(bot))
