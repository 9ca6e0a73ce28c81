"""How /settings, /quota and a new job show a member's defaults, in the member's language."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord

from bot.jobs.defaults import Resolved, Skipped
from bot.store.preferences import Defaults, Preferences
from bot.ui.embeds import BLURPLE, fit
from bot.ui.i18n import has_key, t

if TYPE_CHECKING:
    from bot.catalogue import Catalogue

#: A model's name as members read it (the catalogue's label in their language).
Labeller = Callable[[str], str]


def _plain(name: str) -> str:
    return name


def labeller(catalogue: Catalogue, locale: str) -> Labeller:
    """Model names as the catalogue labels them in `locale` (unknown names stay as is)."""

    def label(name: str) -> str:
        entry = catalogue.get(name)
        return entry.label_for(locale) if entry is not None else name

    return label


def value_text(field: str, value: Any, locale: str, label: Labeller = _plain) -> str:
    """One option's value as shown: `15 s`, `Portrait`, `Yes`, a model's label."""
    if field == "model":
        return label(str(value))
    if field == "duration":
        return t("value.seconds", locale, n=value)
    if field in ("hd", "private"):
        return t("value.yes" if value else "value.no", locale)
    key = f"value.{value}"
    return t(key, locale) if has_key(key) else str(value)


def defaults_text(defaults: Defaults, locale: str, label: Labeller = _plain) -> str:
    """One line per option set at this level, or "Not set"."""
    lines = [
        f"{t(f'field.{field}', locale)}: {value_text(field, value, locale, label)}"
        for field, value in defaults.as_dict().items()
    ]
    return "\n".join(lines) or t("settings.not_set", locale)


def summary(resolved: Resolved, locale: str, label: Labeller = _plain) -> str:
    """What a video gets: `Sora 2 Pro · 15 s · Portrait`, plus HD and Private when on."""
    parts = [
        value_text("model", resolved.model, locale, label),
        value_text("duration", resolved.duration, locale),
        value_text("orientation", resolved.orientation, locale),
    ]
    parts += [t(f"field.{flag}", locale) for flag in ("hd", "private") if getattr(resolved, flag)]
    return " · ".join(parts)


def skipped_note(skip: Skipped, resolved: Resolved, locale: str, label: Labeller = _plain) -> str:
    """One sentence: which stored default was passed over, why, and what was used."""
    key = f"settings.skipped.{skip.reason}"
    if skip.reason == "unsupported" and skip.field in ("hd", "model"):
        key += f"_{skip.field}"
    return t(
        key,
        locale,
        whose=t(f"settings.whose.{skip.level}", locale),
        field=t(f"settings.field.{skip.field}", locale),
        value=value_text(skip.field, skip.value, locale, label),
        used=value_text(skip.field, skip.used, locale, label),
        model=label(resolved.model),
    )


def skipped_notes(resolved: Resolved, locale: str, label: Labeller = _plain) -> list[str]:
    return [skipped_note(skip, resolved, locale, label) for skip in resolved.skipped]


def settings_embed(
    prefs: Preferences,
    resolved: Resolved | None,
    allowed: Sequence[str],
    locale: str,
    *,
    restricted: bool,
    label: Labeller = _plain,
) -> discord.Embed:
    """The member's defaults here, the server's, the models allowed, and what a /video
    with no options would render (with any stored default that had to be skipped)."""
    embed = discord.Embed(title=f"⚙️ {t('settings.title', locale)}", colour=BLURPLE)
    embed.add_field(
        name=t("settings.yours", locale), value=defaults_text(prefs.member, locale, label)
    )
    embed.add_field(
        name=t("settings.server", locale), value=defaults_text(prefs.server, locale, label)
    )
    names = ", ".join(label(name) for name in allowed) or "—"
    shown = names if restricted else t("settings.all_models", locale, models=names)
    embed.add_field(name=t("settings.allowed", locale), value=shown, inline=False)
    if resolved is not None:
        lines = [summary(resolved, locale, label), *skipped_notes(resolved, locale, label)]
        embed.add_field(name=t("settings.effective", locale), value="\n".join(lines), inline=False)
    embed.set_footer(text=t("settings.footer", locale))
    return fit(embed)
