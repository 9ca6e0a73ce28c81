"""Autocomplete for `/video` and `/storyboard`: models and durations from the catalogue.

The choices are data, like the models: a model the operator adds appears in the menu
without a code change, under its label in the member's language, and the durations
offered are those of the model already chosen in the same command.
"""

from __future__ import annotations

from collections.abc import Collection

from discord import app_commands

from bot.catalogue import Catalogue, Feature
from bot.ui.i18n import t

#: Discord shows at most this many autocomplete choices.
MAX_CHOICES = 25
_NAME_LIMIT = 100


def model_choices(
    catalogue: Catalogue,
    current: str,
    locale: str,
    offered: Collection[str] | None = None,
    *,
    needs: Feature | None = None,
) -> list[app_commands.Choice[str]]:
    """The models whose name or label contains what the member typed, in catalogue order.

    `offered`: the (lower-case) names some healthy relay offers; None means not known
    yet, so every model is shown (validation still refuses what no relay can carry).
    `needs`: only models whose entry has this feature (`/storyboard`: storyboard), so
    the menu never offers a model that could only be refused."""
    typed = current.strip().lower()
    choices = []
    for entry in catalogue:
        if offered is not None and entry.name.lower() not in offered:
            continue
        if needs is not None and not entry.supports(needs):
            continue
        label = entry.label_for(locale)
        if typed and typed not in entry.name.lower() and typed not in label.lower():
            continue
        shown = label if label.lower() == entry.name.lower() else f"{label} ({entry.name})"
        choices.append(app_commands.Choice(name=shown[:_NAME_LIMIT], value=entry.name))
    return choices[:MAX_CHOICES]


def duration_choices(
    catalogue: Catalogue, model: str | None, current: str, locale: str
) -> list[app_commands.Choice[int]]:
    """The durations of `model` (the one already chosen in the command), else of every
    model; those starting with what the member typed."""
    entry = catalogue.get(model) if model else None
    seconds = list(entry.durations) if entry is not None else catalogue.durations()
    typed = current.strip()
    return [
        app_commands.Choice(name=t("value.seconds", locale, n=n), value=n)
        for n in seconds
        if not typed or str(n).startswith(typed)
    ][:MAX_CHOICES]
