"""/jobs show | list | cancel and /queue: a member's view of their videos."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.store.jobs import Job
from bot.tree import locale_of
from bot.ui.embeds import job_embed, job_list_embed
from bot.ui.i18n import t
from bot.ui.progress import format_duration, typical_render_seconds
from bot.ui.views import result_view

if TYPE_CHECKING:
    from bot.app import VideoBot


@app_commands.guild_only()
class Jobs(commands.GroupCog, group_name="jobs", group_description=_("Your video jobs")):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="show", description=_("Show a video job"))
    @app_commands.describe(id=_("Job number"))
    async def show(self, interaction: discord.Interaction, id: int) -> None:
        job = await self._visible_job(interaction, id)
        locale = locale_of(interaction)
        embed = job_embed(
            job,
            locale=locale,
            now=self.bot.clock.now(),
            queue_position=self.bot.engine.queue_position(job.id),
            details=True,
            costs=self.bot.costs,
        )
        view = (
            result_view(job, locale, self.bot.catalogue)
            if job.status == "succeeded"
            else discord.utils.MISSING
        )
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="list", description=_("List your recent videos"))
    @app_commands.describe(member=_("Member to show"))
    async def list(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        target = member or interaction.user
        jobs = await self.bot.db.jobs.recent_for_user(interaction.guild_id, target.id, limit=15)
        await interaction.response.send_message(
            embed=job_list_embed(jobs, locale_of(interaction)), ephemeral=True
        )

    @app_commands.command(name="cancel", description=_("Cancel a video that is still rendering"))
    @app_commands.describe(id=_("Job number"))
    async def cancel(self, interaction: discord.Interaction, id: int) -> None:
        await self._visible_job(interaction, id)
        await self.bot.job_actions.on_cancel(interaction, id)  # the Cancel button's path

    @show.autocomplete("id")
    @cancel.autocomplete("id")
    async def job_autocomplete(
        self, interaction: discord.Interaction, current: int | str
    ) -> builtins.list[app_commands.Choice[int]]:
        # Every keystroke lands here: read id, status and prompt only, no request.
        jobs = await self.bot.db.jobs.summaries_for_user(
            interaction.guild_id, interaction.user.id, limit=25
        )
        typed = str(current)
        return [
            app_commands.Choice(name=f"#{job.id} {job.status} · {job.prompt}"[:100], value=job.id)
            for job in jobs
            if str(job.id).startswith(typed)
        ]

    async def _visible_job(self, interaction: discord.Interaction, job_id: int) -> Job:
        """Jobs are visible only in the server they were made in."""
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage
        return await self.bot.engine.find(job_id, guild_id=interaction.guild_id)


class Queue(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    @app_commands.command(name="queue", description=_("Show the video queue and your place in it"))
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        engine = self.bot.engine
        locale = locale_of(interaction)
        lines = [
            t("queue.summary", locale, running=engine.queue.running, waiting=len(engine.queue))
        ]
        mine = await self.bot.db.jobs.recent_for_user(
            interaction.guild_id, interaction.user.id, limit=25
        )
        per_slot = max(engine.queue.max_running, 1)
        for job in mine:
            if job.is_final:
                continue
            position = engine.queue_position(job.id)
            if position is None:
                lines.append(
                    t("queue.rendering", locale, id=job.id, percent=f"{job.progress or 0:.0f}")
                )
            else:
                typical = typical_render_seconds(job.request, self.bot.catalogue)
                wait = typical * ((position - 1) // per_slot + 1)
                lines.append(
                    t(
                        "queue.waiting",
                        locale,
                        id=job.id,
                        position=position,
                        wait=format_duration(wait),
                    )
                )
        await interaction.response.send_message("\n".join(lines), ephemeral=True)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Jobs(bot))
    await bot.add_cog(Queue(bot))
