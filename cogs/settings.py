"""/settings for members (their defaults in this server) and /settings-admin for members
who manage the server (the server's defaults and which models members may use)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, cast

import discord
from discord import app_commands
from discord.app_commands import locale_str as _
from discord.ext import commands

from bot.catalogue import ModelEntry
from bot.jobs.defaults import ModelNotAllowedError, Resolved, check_allowed, resolve
from bot.relay.models import VideoRequest
from bot.store.preferences import Defaults, Preferences
from bot.tree import UserFacingError, locale_of, manages_guild, render_error
from bot.ui.choices import duration_choices, model_choices
from bot.ui.i18n import t
from bot.ui.settings import labeller, settings_embed

if TYPE_CHECKING:
    from bot.app import VideoBot

ORIENTATIONS = [
    app_commands.Choice(name=_("Portrait (9:16)"), value="portrait"),
    app_commands.Choice(name=_("Landscape (16:9)"), value="landscape"),
]
OPTIONS = [
    app_commands.Choice(name=_("Model"), value="model"),
    app_commands.Choice(name=_("Orientation"), value="orientation"),
    app_commands.Choice(name=_("Duration"), value="duration"),
    app_commands.Choice(name=_("HD"), value="hd"),
    app_commands.Choice(name=_("Private"), value="private"),
]
SET_DESCRIPTIONS: dict[str, Any] = {
    "model": _("Default model"),
    "orientation": _("Default orientation"),
    "duration": _("Default length in seconds"),
    "hd": _("Default HD (models with HD only)"),
    "private": _("Keep videos unpublished at the relay by default (no remixes)"),
}


ToggleField = Literal["hd", "private"]


class ToggleButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"settings:toggle:(?P<field>hd|private)",
):
    """HD or Private on a member's /settings message, green when on; a click flips the
    member's own default. The custom id names only the field, so it survives restarts."""

    def __init__(self, field: ToggleField, on: bool = False, locale: str = "en-US") -> None:
        state = t("value.yes" if on else "value.no", locale)
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.success if on else discord.ButtonStyle.secondary,
                label=f"{t(f'field.{field}', locale)}: {state}",
                custom_id=f"settings:toggle:{field}",
            )
        )
        self.field: ToggleField = field

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> ToggleButton:
        return cls(cast(ToggleField, match["field"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        client = interaction.client
        cog = client.get_cog("Settings") if isinstance(client, commands.bot.BotBase) else None
        if isinstance(cog, Settings):
            await cog.toggle(interaction, self.field)


def toggle_view(resolved: Resolved, locale: str) -> discord.ui.View:
    """The toggles as they stand for what a /video with no options gets."""
    view = discord.ui.View(timeout=None)
    for field in ("hd", "private"):
        view.add_item(ToggleButton(field, bool(getattr(resolved, field)), locale))
    return view


def _changes(**given: Any) -> dict[str, Any]:
    return {name: value for name, value in given.items() if value is not None}


class SettingsBase:
    """What the member and admin commands share: validation, autocomplete, the embed."""

    bot: VideoBot

    def _entry(self, model: str) -> ModelEntry:
        """The catalogue entry a typed model names, or the sentence listing the known ones."""
        entry = self.bot.catalogue.get(model)
        if entry is None:
            names = ", ".join(self.bot.catalogue.names())
            raise UserFacingError("settings.unknown_model", model=model, models=names)
        return entry

    async def _save(
        self, interaction: discord.Interaction, level: str, changes: dict[str, Any]
    ) -> str | None:
        """Validate and store a level's changed defaults; the note to show, None if none."""
        if not changes:
            return None
        assert interaction.guild_id is not None
        prefs = await self.bot.defaults.stored(interaction.guild_id, interaction.user.id)
        self._validate(prefs, level, changes)
        locale = locale_of(interaction)
        if level == "member":
            await self.bot.defaults.set_member(interaction.guild_id, interaction.user.id, **changes)
            return t("settings.saved", locale)
        await self.bot.defaults.set_server(interaction.guild_id, **changes)
        return t("settings.server_saved", locale)

    def _validate(self, prefs: Preferences, level: str, changes: dict[str, Any]) -> None:
        """Refuse, with one sentence, defaults that could never render: an unknown or
        disallowed model, or options the model they would render with lacks. The level's
        values after the change are checked together, as if all typed in /video, so a
        level never holds a duration its own model lacks (a stored model that is gone or
        denied is left out: it is skipped when rendering anyway)."""
        catalogue = self.bot.catalogue
        model = changes.get("model")
        if model is not None:
            entry = self._entry(model)
            changes["model"] = entry.name
            check_allowed(entry.name, prefs.allowed_models, catalogue)
        merged = replace(prefs.member if level == "member" else prefs.server, **changes)
        if level == "member":
            trial = replace(prefs, member=merged)
        else:  # a server default applies to members who set nothing themselves
            trial = replace(prefs, member=Defaults(), server=merged)
        stored = catalogue.get(merged.model) if merged.model is not None else None
        if "model" not in changes and merged.model is not None:
            allowed = prefs.allowed_models
            if stored is None or (allowed is not None and stored.name not in allowed):
                merged = replace(merged, model=None)
        resolved = resolve(merged, trial, catalogue)
        request = VideoRequest.build(prompt="settings", **resolved.fields())
        catalogue.check(request)

    async def _show(
        self, interaction: discord.Interaction, note: str | None = None, *, toggles: bool = False
    ) -> None:
        """The embed of everything that decides what a /video with no options renders;
        `toggles`: with buttons that flip the member's own HD and private defaults."""
        embed, resolved = await self._embed(interaction)
        content: dict[str, Any] = {"embed": embed, "ephemeral": True}
        if toggles and resolved is not None:
            content["view"] = toggle_view(resolved, locale_of(interaction))
        if note is not None:
            content["content"] = note
        await interaction.followup.send(**content)

    async def _embed(
        self, interaction: discord.Interaction
    ) -> tuple[discord.Embed, Resolved | None]:
        assert interaction.guild_id is not None
        locale = locale_of(interaction)
        catalogue = self.bot.catalogue
        prefs = await self.bot.defaults.stored(interaction.guild_id, interaction.user.id)
        resolved: Resolved | None
        try:
            resolved = resolve(Defaults(), prefs, catalogue)
        except ModelNotAllowedError:  # nothing allowed here: the embed says which models are
            resolved = None
        allowed = [
            e.name
            for e in catalogue
            if prefs.allowed_models is None or e.name in prefs.allowed_models
        ]
        embed = settings_embed(
            prefs,
            resolved,
            allowed,
            locale,
            restricted=prefs.allowed_models is not None,
            label=labeller(catalogue, locale),
        )
        return embed, resolved

    async def _model_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Catalogue models allowed here whose name or label contains what was typed."""
        allowed = None
        if interaction.guild_id is not None:
            models = await self.bot.defaults.allowed_models(interaction.guild_id)
            allowed = {entry.name.lower() for entry in models}
        return model_choices(self.bot.catalogue, current, locale_of(interaction), allowed)

    async def _duration_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        """The durations of the model chosen in the same command, else of every model."""
        model = getattr(interaction.namespace, "model", None)
        return duration_choices(
            self.bot.catalogue,
            model if isinstance(model, str) else None,
            current,
            locale_of(interaction),
        )


@app_commands.guild_only()
class Settings(
    SettingsBase,
    commands.GroupCog,
    group_name="settings",
    group_description=_("Your video defaults in this server"),
):
    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ToggleButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ToggleButton)

    @app_commands.command(
        name="show", description=_("Show your defaults, the server's and the models allowed here")
    )
    async def show(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self._show(interaction, toggles=True)

    @app_commands.command(name="set", description=_("Set your defaults for /video in this server"))
    @app_commands.describe(**SET_DESCRIPTIONS)
    @app_commands.choices(orientation=ORIENTATIONS)
    async def set_defaults(
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        orientation: str | None = None,
        duration: int | None = None,
        hd: bool | None = None,
        private: bool | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes = _changes(
            model=model, orientation=orientation, duration=duration, hd=hd, private=private
        )
        await self._show(
            interaction, await self._save(interaction, "member", changes), toggles=True
        )

    @app_commands.command(name="reset", description=_("Clear your defaults in this server"))
    @app_commands.describe(option=_("Only this option (empty = all of them)"))
    @app_commands.choices(option=OPTIONS)
    async def reset(self, interaction: discord.Interaction, option: str | None = None) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        if option is None:
            await self.bot.defaults.reset_member(interaction.guild_id, interaction.user.id)
        else:
            await self.bot.defaults.set_member(
                interaction.guild_id, interaction.user.id, **{option: None}
            )
        await self._show(interaction, t("settings.cleared", locale_of(interaction)), toggles=True)

    async def toggle(self, interaction: discord.Interaction, field: ToggleField) -> None:
        """A toggle button on the member's own /settings message: flip what a /video with
        no options would get (validated like /settings set), then redraw the message."""
        try:
            if interaction.guild_id is None:
                raise app_commands.NoPrivateMessage
            await interaction.response.defer()
            prefs = await self.bot.defaults.stored(interaction.guild_id, interaction.user.id)
            current = getattr(resolve(Defaults(), prefs, self.bot.catalogue), field)
            changes: dict[str, Any] = {field: not current}
            self._validate(prefs, "member", changes)
            await self.bot.defaults.set_member(interaction.guild_id, interaction.user.id, **changes)
            embed, resolved = await self._embed(interaction)
            view = toggle_view(resolved, locale_of(interaction)) if resolved else None
            await interaction.edit_original_response(embed=embed, view=view)
        except Exception as exc:
            await render_error(interaction, exc)

    @set_defaults.autocomplete("model")
    async def _model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._model_choices(interaction, current)

    @set_defaults.autocomplete("duration")
    async def _duration_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return await self._duration_choices(interaction, current)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class SettingsAdmin(
    SettingsBase,
    commands.GroupCog,
    group_name="settings-admin",
    group_description=_("Set this server's video defaults and allowed models"),
):
    defaults = app_commands.Group(
        name="defaults", description=_("The server's defaults for /video")
    )
    models = app_commands.Group(name="models", description=_("Which models members can use"))

    def __init__(self, bot: VideoBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Default permissions can be overridden by the server; check again here."""
        return manages_guild(interaction)

    @defaults.command(name="set", description=_("Set the server's defaults for /video"))
    @app_commands.describe(**SET_DESCRIPTIONS)
    @app_commands.choices(orientation=ORIENTATIONS)
    async def set_server(
        self,
        interaction: discord.Interaction,
        model: str | None = None,
        orientation: str | None = None,
        duration: int | None = None,
        hd: bool | None = None,
        private: bool | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        changes = _changes(
            model=model, orientation=orientation, duration=duration, hd=hd, private=private
        )
        await self._show(interaction, await self._save(interaction, "server", changes))

    @defaults.command(name="reset", description=_("Clear the server's defaults"))
    @app_commands.describe(option=_("Only this option (empty = all of them)"))
    @app_commands.choices(option=OPTIONS)
    async def reset_server(
        self, interaction: discord.Interaction, option: str | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        if option is None:
            await self.bot.defaults.reset_server(interaction.guild_id)
        else:
            await self.bot.defaults.set_server(interaction.guild_id, **{option: None})
        await self._show(interaction, t("settings.server_cleared", locale_of(interaction)))

    @models.command(name="allow", description=_("Let members use a model here again"))
    @app_commands.describe(model=_("The model"))
    async def allow(self, interaction: discord.Interaction, model: str) -> None:
        await self._restrict(interaction, model, allow=True)

    @models.command(name="deny", description=_("Stop members using a model here"))
    @app_commands.describe(model=_("The model"))
    async def deny(self, interaction: discord.Interaction, model: str) -> None:
        await self._restrict(interaction, model, allow=False)

    @models.command(name="reset", description=_("Let members use every model again"))
    async def allow_all(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.defaults.set_allowed_models(interaction.guild_id, None)
        await self._show(interaction, t("settings.models_all", locale_of(interaction)))

    async def _restrict(self, interaction: discord.Interaction, model: str, *, allow: bool) -> None:
        """Add or remove one model; a list that names every model again is "all"."""
        assert interaction.guild_id is not None
        await interaction.response.defer(ephemeral=True, thinking=True)
        locale = locale_of(interaction)
        catalogue = self.bot.catalogue
        entry = self._entry(model)
        stored = (
            await self.bot.defaults.stored(interaction.guild_id, interaction.user.id)
        ).allowed_models
        current = set(catalogue.names()) if stored is None else set(stored)
        chosen = current | {entry.name} if allow else current - {entry.name}
        if not chosen & set(catalogue.names()):
            raise UserFacingError("settings.last_model")
        everything = set(catalogue.names()) <= chosen
        await self.bot.defaults.set_allowed_models(
            interaction.guild_id, None if everything else chosen
        )
        if everything:
            note = t("settings.models_all", locale)
        else:
            names = ", ".join(e.label_for(locale) for e in catalogue if e.name in chosen)
            note = t("settings.models_saved", locale, models=names)
        await self._show(interaction, note)

    @set_server.autocomplete("model")
    async def _server_model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._model_choices(interaction, current)

    @set_server.autocomplete("duration")
    async def _server_duration_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        return await self._duration_choices(interaction, current)

    @allow.autocomplete("model")
    @deny.autocomplete("model")
    async def _any_model_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return model_choices(self.bot.catalogue, current, locale_of(interaction))


async def setup(bot: VideoBot) -> None:
    await bot.add_cog(Settings(bot))
    await bot.add_cog(SettingsAdmin(bot))
