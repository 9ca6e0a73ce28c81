"""/video, /storyboard, /remix and the buttons on finished videos."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.catalogue import Feature
from bot.images import check_declared, reference_image
from bot.jobs.defaults import Resolved
from bot.jobs.engine import JobError, Requester
from bot.live_messages import NETWORK_ERRORS
from bot.relay.models import ImageInput, Shot, VideoRequest
from bot.store.jobs import Job, NewJob
from bot.store.preferences import Defaults
from bot.tree import UserFacingError, VideoTree, locale_of, member_context, render_error
from bot.ui.choices import duration_choices, model_choices
from bot.ui.embeds import job_embed
from bot.ui.i18n import t
from bot.ui.settings import labeller, skipped_notes
from bot.ui.views import JOB_BUTTONS, RemixModal, StoryboardModal, progress_view

if TYPE_CHECKING:
    from bot.app import VideoBot

log = logging.getLogger(__name__)

ORIENTATIONS = [
    app_commands.Choice(name=_("Portrait (9:16)"), value="portrait"),
    app_commands.Choice(name=_("Landscape (16:9)"), value="landscape"),
]
#: A storyboard with no duration typed or stored is 15 s (room for a few shots).
STORYBOARD_BASE = Defaults(duration=15)
SEND_ERRORS: tuple[type[Exception], ...] = (discord.HTTPException, *NETWORK_ERRORS)


def requester_guild(interaction: discord.Interaction) -> int:
    """The server a command was typed in (the tree refuses DMs before this)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    return interaction.guild_id


def requester(interaction: discord.Interaction) -> Requester:
    """The member behind an interaction, and the server they asked in, as the engine needs
    them for a job (the tree refuses DMs before this; a component from a DM lands here)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage
    roles, is_admin = member_context(interaction)
    return Requester(
        guild_id=interaction.guild_id,
        user_id=interaction.user.id,
        roles=roles,
        is_admin=is_admin,
        channel_id=interaction.channel_id,
        interaction_token=interaction.token,
        locale=locale_of(interaction),
    )


class Video(commands.Cog):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.job_actions = self  # the persistent buttons call back into this cog
        self.bot.add_dynamic_items(*JOB_BUTTONS)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(*JOB_BUTTONS)

    # -- commands -------------------------------------------------------------------

    @app_commands.command(name="video", description=_("Render a video from a prompt"))
    @app_commands.guild_only()
    @app_commands.describe(
        prompt=_("What should happen in the video? Use @alias for a saved character"),
        orientation=_("Portrait (default) or landscape"),
        duration=_("Length in seconds (each model offers its own)"),
        hd=_("High definition, where the model offers it (slower)"),
        model=_("Which model renders the video"),
        image=_("A reference image for the first frame"),
        image2=_("Another reference image"),
        image3=_("Another reference image"),
        private=_("Keep the video unpublished at the relay (it can't be remixed)"),
    )
    @app_commands.choices(orientation=ORIENTATIONS)
    async def video(
        self,
        interaction: discord.Interaction,
        prompt: str,
        orientation: str | None = None,
        duration: int | None = None,
        hd: bool | None = None,
        model: str | None = None,
        image: discord.Attachment | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        private: bool | None = None,
    ) -> None:
        attachments = [a for a in (image, image2, image3) if a is not None]
        # Checks that need nothing but the options are answered privately at once; all
        # else (the database, aliases, downloads) waits until the command is acknowledged
        # and its errors arrive as a private follow-up.
        for attachment in attachments:
            check_declared(
                attachment.filename,
                attachment.content_type,
                attachment.size,
                self.bot.settings.max_image_bytes,
            )
        typed = Defaults(
            model=model, orientation=orientation, duration=duration, hd=hd, private=private
        )
        # Options left out come from the member's and the server's /settings. A server
        # without any needs no database read, so its options are checked before the ack.
        # The model's own rules too (its durations, HD, how many images): its catalogue entry.
        count = len(attachments)
        chosen = self.bot.defaults.resolve_now(requester_guild(interaction), typed)
        among = self._offered()  # a refusal names only models usable here
        if chosen is not None:
            self.check(
                VideoRequest.build(prompt=prompt, **chosen.fields()), images=count, among=among
            )
        await self._acknowledge(interaction)
        if chosen is None:
            chosen = await self._resolve(interaction, typed)
            among = await self._usable(interaction)
            self.check(
                VideoRequest.build(prompt=prompt, **chosen.fields()), images=count, among=among
            )
        fields = dict(chosen.fields(), prompt=await self._rewrite(interaction, prompt))
        # An alias's text may break a rule: say so before a download.
        self.check(VideoRequest.build(**fields), images=count, among=among)
        images = [await self._read_image(a) for a in attachments]
        await self.start_job(interaction, VideoRequest.build(**fields, images=images))
        await self._skipped_notes(interaction, chosen)

    @video.autocomplete("model")
    async def _video_models(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.model_choices(interaction, current)

    @video.autocomplete("duration")
    async def _video_durations(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return self.duration_choices(interaction, current)

    @app_commands.command(
        name="storyboard", description=_("Render a multi-shot video from a storyboard")
    )
    @app_commands.guild_only()
    @app_commands.describe(
        duration=_("Total length in seconds; the shots must add up to it"),
        orientation=_("Portrait (default) or landscape"),
        model=_("Which model renders the video"),
    )
    @app_commands.choices(orientation=ORIENTATIONS)
    async def storyboard(
        self,
        interaction: discord.Interaction,
        duration: int | None = None,
        orientation: str | None = None,
        model: str | None = None,
    ) -> None:
        if model is not None:  # told now, not after the member wrote every shot
            entry = self.bot.catalogue.require(model)
            usable = self.bot.catalogue.usable(await self._usable(interaction))
            entry.require_feature("storyboard", catalogue=usable)
        # Options left out are filled from /settings when the shots are submitted.
        options = {"duration": duration, "orientation": orientation, "model": model}
        await interaction.response.send_modal(StoryboardModal(options, locale_of(interaction)))

    @storyboard.autocomplete("model")
    async def _storyboard_models(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.model_choices(interaction, current, needs="storyboard")

    @storyboard.autocomplete("duration")
    async def _storyboard_durations(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return self.duration_choices(interaction, current)

    @app_commands.command(name="remix", description=_("Change a finished video with a new prompt"))
    @app_commands.guild_only()
    @app_commands.describe(
        job=_("The job number of the finished video"), prompt=_("What to change")
    )
    async def remix(self, interaction: discord.Interaction, job: int, prompt: str) -> None:
        await self._remix(interaction, job, prompt)

    # -- shared by commands and buttons ---------------------------------------------

    async def start_job(self, interaction: discord.Interaction, request: VideoRequest) -> Job:
        """Reserve, queue and show a job; the interaction is already deferred."""
        request = self.bot.catalogue.resolve(request)
        asker = requester(interaction)
        new = NewJob(
            guild_id=asker.guild_id,
            channel_id=interaction.channel_id,
            user_id=asker.user_id,
            request=request,
            format=self.bot.relay.format_for(request),
            interaction_token=interaction.token,
            locale=locale_of(interaction),
        )
        job = await self.bot.engine.submit(new, roles=asker.roles, is_admin=asker.is_admin)
        await self._post_progress(interaction, job)
        return job

    async def _post_progress(self, interaction: discord.Interaction, job: Job) -> None:
        """Show the job in the reply to its command (deferred by the caller). The job is
        queued and paid for, so whatever Discord or the network does, it must end visible."""
        position = self.bot.engine.queue_position(job.id)
        embed = job_embed(
            job,
            locale=job.locale,
            now=self.bot.clock.now(),
            queue_position=position,
            costs=self.bot.costs,
        )
        content: dict[str, Any] = {
            "embed": embed,
            "view": progress_view(job, job.locale),
            "allowed_mentions": discord.AllowedMentions.none(),
        }
        message: discord.Message
        try:
            message = await interaction.followup.send(**content, wait=True)
        except discord.HTTPException as exc:
            log.warning(
                "job %s: first message failed (HTTP %s); using the channel", job.id, exc.status
            )
            await self.bot.live.detach(job.id)
            return
        except NETWORK_ERRORS as exc:
            # The post may or may not have landed. The first follow-up replaces the
            # "thinking" reply, so editing that reply is the retry that can't post twice.
            log.warning("job %s: first message lost (%s); editing the reply", job.id, exc)
            try:
                message = await interaction.edit_original_response(**content)
            except SEND_ERRORS as again:
                log.warning("job %s: reply edit failed too (%s); using the channel", job.id, again)
                await self.bot.live.detach(job.id)
                return
        await self.bot.live.attach(
            job.id,
            channel_id=interaction.channel_id,
            message_id=message.id,
            interaction_token=interaction.token,
        )

    # -- the catalogue: choices and rules -------------------------------------------

    def check(
        self, request: VideoRequest, *, images: int = 0, among: Collection[str] | None = None
    ) -> VideoRequest:
        """`request` resolved against its model's catalogue entry (`InvalidRequest` with
        the sentence naming what the model supports); `images` counts attachments not yet
        read, so a model's image limit is told before any download."""
        if images > len(request.images):
            placeholder = ImageInput(url="https://attachment.invalid/image.png")
            request = request.model_copy(update={"images": (placeholder,) * images})
        return self.bot.catalogue.resolve(request, among=among)

    def _offered(self) -> Collection[str] | None:
        """The (lower-case) models some healthy relay offers; None while that is unknown."""
        relay = getattr(self.bot, "relay", None)
        return relay.offered_names() if relay is not None else None

    async def _usable(self, interaction: discord.Interaction) -> Collection[str] | None:
        """The (lower-case) models some healthy relay offers and this server's admins
        allow (/settings-admin models); None: any."""
        offered = self._offered()
        if interaction.guild_id is None:
            return offered
        models = await self.bot.defaults.allowed_models(interaction.guild_id)
        allowed = {entry.name.lower() for entry in models}
        return allowed if offered is None else allowed & set(offered)

    async def model_choices(
        self, interaction: discord.Interaction, current: str, *, needs: Feature | None = None
    ) -> list[app_commands.Choice[str]]:
        """The catalogue's models some healthy relay offers (all, while that is unknown)
        and that this server's admins allow (/settings-admin models)."""
        offered = await self._usable(interaction)
        return model_choices(
            self.bot.catalogue, current, locale_of(interaction), offered, needs=needs
        )

    def duration_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        """The durations of the model already chosen in this command (else every one)."""
        model = getattr(interaction.namespace, "model", None)
        return duration_choices(
            self.bot.catalogue,
            model if isinstance(model, str) else None,
            current,
            locale_of(interaction),
        )

    async def _resolve(
        self, interaction: discord.Interaction, typed: Defaults, *, storyboard: bool = False
    ) -> Resolved:
        """The options typed, filled from the member's and the server's defaults."""
        return await self.bot.defaults.resolve(
            requester_guild(interaction),
            interaction.user.id,
            typed,
            base=STORYBOARD_BASE if storyboard else None,
            storyboard=storyboard,
        )

    async def _skipped_notes(self, interaction: discord.Interaction, chosen: Resolved) -> None:
        """Tell the member, privately, which stored defaults were passed over and why."""
        if not chosen.skipped:
            return
        locale = locale_of(interaction)
        notes = skipped_notes(chosen, locale, labeller(self.bot.catalogue, locale))
        try:
            await interaction.followup.send("\n".join(notes), ephemeral=True)
        except SEND_ERRORS as exc:  # the job is shown; a lost note loses nothing
            log.warning("could not send the skipped-defaults note: %s", exc)

    async def _acknowledge(self, interaction: discord.Interaction) -> None:
        """Defer publicly ("thinking"), then let the rest of a burst be acknowledged first."""
        tree = self.bot.tree
        if isinstance(tree, VideoTree):
            await tree.acks.defer(interaction, thinking=True)
        else:
            await interaction.response.defer(thinking=True)

    async def _rewrite(self, interaction: discord.Interaction, prompt: str) -> str:
        if interaction.guild_id is None or "@" not in prompt:
            return prompt
        return await self.bot.db.characters.rewrite_prompt(interaction.guild_id, prompt)

    async def _read_image(self, attachment: discord.Attachment) -> ImageInput:
        try:
            data = await attachment.read()
        except discord.HTTPException:
            raise UserFacingError("image_unreachable", name=attachment.filename) from None
        return reference_image(attachment.filename, data, self.bot.settings.max_image_bytes)

    # -- the buttons' and modals' callbacks (bot.ui.views.JobActions) ----------------

    async def on_rerun(self, interaction: discord.Interaction, job_id: int) -> None:
        await self._guarded(interaction, self._rerun, job_id)

    async def _rerun(self, interaction: discord.Interaction, job_id: int) -> None:
        await self._acknowledge(interaction)
        new = await self.bot.engine.rerun(job_id, requester(interaction))
        await self._post_progress(interaction, new)

    async def on_remix(self, interaction: discord.Interaction, job_id: int) -> None:
        await self._guarded(interaction, self._open_remix, job_id)

    async def _open_remix(self, interaction: discord.Interaction, job_id: int) -> None:
        await self.bot.engine.remixable(job_id, guild_id=requester(interaction).guild_id)
        await interaction.response.send_modal(RemixModal(job_id, locale_of(interaction)))

    async def on_remix_submit(
        self, interaction: discord.Interaction, job_id: int, prompt: str
    ) -> None:
        async def go(interaction: discord.Interaction, job_id: int) -> None:
            await self._remix(interaction, job_id, prompt)

        await self._guarded(interaction, go, job_id)

    async def _remix(self, interaction: discord.Interaction, job_id: int, prompt: str) -> None:
        await self._acknowledge(interaction)
        rewritten = await self._rewrite(interaction, prompt)
        new = await self.bot.engine.remix(job_id, rewritten, requester(interaction))
        await self._post_progress(interaction, new)

    async def on_details(self, interaction: discord.Interaction, job_id: int) -> None:
        async def go(interaction: discord.Interaction, job_id: int) -> None:
            job = await self._job(interaction, job_id)
            embed = job_embed(
                job,
                locale=locale_of(interaction),
                now=self.bot.clock.now(),
                details=True,
                costs=self.bot.costs,
            )
            await interaction.response.send_message(embed=embed, ephemeral=True)

        await self._guarded(interaction, go, job_id)

    async def on_cancel(self, interaction: discord.Interaction, job_id: int) -> None:
        async def go(interaction: discord.Interaction, job_id: int) -> None:
            # Stopping a running job waits for its task to wind down: answer first.
            await interaction.response.defer(ephemeral=True, thinking=True)
            asker = requester(interaction)
            job = await self.bot.engine.cancel(
                job_id, guild_id=asker.guild_id, user_id=asker.user_id, is_admin=asker.is_admin
            )
            if job.status != "cancelled":  # it finished on its own meanwhile
                raise JobError("already_finished", job.id)
            await interaction.followup.send(
                t("cancelled_ok", locale_of(interaction), id=job.id), ephemeral=True
            )

        await self._guarded(interaction, go, job_id)

    async def on_storyboard_submit(
        self,
        interaction: discord.Interaction,
        options: dict[str, object],
        shots: Sequence[Shot],
        prompt: str,
    ) -> None:
        async def go(interaction: discord.Interaction, _job_id: int) -> None:
            typed = Defaults(**{k: v for k, v in options.items() if v is not None})  # type: ignore[arg-type]
            board = {"storyboard": list(shots)}
            chosen = self.bot.defaults.resolve_now(
                requester_guild(interaction), typed, base=STORYBOARD_BASE, storyboard=True
            )
            if chosen is not None:
                self.check(VideoRequest.build(**chosen.fields(), prompt=prompt, **board))
            await self._acknowledge(interaction)
            if chosen is None:
                chosen = await self._resolve(interaction, typed, storyboard=True)
                self.check(VideoRequest.build(**chosen.fields(), prompt=prompt, **board))
            rewritten = await self._rewrite(interaction, prompt)
            request = VideoRequest.build(**chosen.fields(), prompt=rewritten, **board)
            await self.start_job(interaction, request)
            await self._skipped_notes(interaction, chosen)

        await self._guarded(interaction, go, 0)

    async def _guarded(
        self,
        interaction: discord.Interaction,
        action: Callable[[discord.Interaction, int], Awaitable[None]],
        job_id: int,
    ) -> None:
        """Components and modals bypass the tree (its DM check and its error handler):
        refuse DMs and render errors the same way here."""
        try:
            if interaction.guild_id is None:
                raise app_commands.NoPrivateMessage
            await action(interaction, job_id)
        except Exception as exc:
            await render_error(interaction, exc)

    async def _job(self, interaction: discord.Interaction, job_id: int) -> Job:
        return await self.bot.engine.find(job_id, guild_id=requester(interaction).guild_id)


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Video(bot))
