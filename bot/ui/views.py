"""Buttons and modals on a job's message, wired to the engine only through `JobActions`.

The buttons are `DynamicItem`s whose `custom_id` carries just the action and the job id,
so they keep working after a restart without re-registering views per message; whoever
handles the click reloads the job from the database. The UI never imports the engine:
the bot object exposes `job_actions`, and the handlers answer the interaction.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final, Literal, Protocol, Self, assert_never, cast

import discord

from bot.catalogue import Catalogue, shipped_catalogue
from bot.relay.models import InvalidRequest, Shot
from bot.ui.embeds import clamp
from bot.ui.i18n import invalid_request_text, t
from bot.ui.records import JobLike

JobAction = Literal["rerun", "remix", "details", "cancel"]

CUSTOM_ID_LIMIT: Final = 100
LINK_URL_LIMIT: Final = 512
BUTTON_LABEL_LIMIT: Final = 80
MODAL_TITLE_LIMIT: Final = 45
INPUT_LABEL_LIMIT: Final = 45
PLACEHOLDER_LIMIT: Final = 100
MAX_PROMPT_INPUT: Final = 4000
MAX_SHOTS: Final = 10
MAX_SCENE_CHARS: Final = 1000


class JobActions(Protocol):
    """What the buttons and modals need; the engine-facing cog implements it.

    Each handler must answer or defer the interaction itself (within 3 seconds).
    """

    async def on_rerun(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...

    async def on_remix(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Usually answers by sending `RemixModal(job_id, locale)`."""
        ...

    async def on_details(self, interaction: discord.Interaction[Any], job_id: int) -> None: ...

    async def on_cancel(self, interaction: discord.Interaction[Any], job_id: int) -> None:
        """Must check that the clicker owns the job (or is an admin)."""
        ...

    async def on_remix_submit(
        self, interaction: discord.Interaction[Any], job_id: int, prompt: str
    ) -> None: ...

    async def on_storyboard_submit(
        self, interaction: discord.Interaction[Any], options: Any, shots: list[Shot], prompt: str
    ) -> None:
        """`options` is whatever the command passed to `StoryboardModal`, handed back as is."""
        ...


def job_actions(client: discord.Client) -> JobActions:
    """The handler object the bot was built with; a missing one is a wiring bug, said loudly."""
    actions = getattr(client, "job_actions", None)
    if actions is None:
        raise RuntimeError("the bot has no `job_actions`; set it in setup_hook")
    return cast(JobActions, actions)


# --- Persistent buttons -----------------------------------------------------------------

_STYLES: Final[dict[JobAction, discord.ButtonStyle]] = {
    "rerun": discord.ButtonStyle.primary,
    "remix": discord.ButtonStyle.secondary,
    "details": discord.ButtonStyle.secondary,
    "cancel": discord.ButtonStyle.danger,
}
_EMOJI: Final[dict[JobAction, str]] = {
    "rerun": "🔁",
    "remix": "🎨",
    "details": "ℹ️",
    "cancel": "✖️",
}


def job_custom_id(action: JobAction, job_id: int) -> str:
    return f"job:{action}:{job_id}"


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"job:(?P<action>rerun|remix|details|cancel):(?P<id>[0-9]{1,20})",
):
    """Rerun / Remix / Details / Cancel on a job message; survives restarts."""

    def __init__(self, action: JobAction, job_id: int, *, label: str | None = None) -> None:
        super().__init__(
            discord.ui.Button(
                style=_STYLES[action],
                label=clamp(label, BUTTON_LABEL_LIMIT) if label else None,
                emoji=_EMOJI[action],
                custom_id=job_custom_id(action, job_id),
            )
        )
        self.action: JobAction = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> Self:
        label = getattr(item, "label", None)
        return cls(cast(JobAction, match["action"]), int(match["id"]), label=label)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        actions = job_actions(interaction.client)
        action = self.action
        if action == "rerun":
            await actions.on_rerun(interaction, self.job_id)
        elif action == "remix":
            await actions.on_remix(interaction, self.job_id)
        elif action == "details":
            await actions.on_details(interaction, self.job_id)
        elif action == "cancel":
            await actions.on_cancel(interaction, self.job_id)
        else:
            assert_never(action)


JOB_BUTTONS: Final[tuple[type[JobButton], ...]] = (JobButton,)
"""Pass to `bot.add_dynamic_items(*JOB_BUTTONS)` in a cog's `cog_load`."""
DYNAMIC_ITEMS: Final = JOB_BUTTONS


def _button(action: JobAction, job: JobLike, locale: str) -> JobButton:
    return JobButton(action, job.id, label=t(f"button.{action}", locale))


def result_view(job: JobLike, locale: str, catalogue: Catalogue | None = None) -> discord.ui.View:
    """Buttons under a finished job: open the video, rerun, remix (unless private, or its
    model's catalogue entry has no remix: a button that can only refuse is not shown),
    details. The custom ids never change, so buttons on older messages still work."""
    view = discord.ui.View(timeout=None)
    url = job.result_url
    if url and len(url) <= LINK_URL_LIMIT and url.startswith(("https://", "http://")):
        view.add_item(
            discord.ui.Button(
                style=discord.ButtonStyle.link, label=t("button.open", locale), url=url, emoji="▶️"
            )
        )
    view.add_item(_button("rerun", job, locale))
    entry = (catalogue or shipped_catalogue()).get(job.request.model)
    if job.status == "succeeded" and not job.request.private and entry and entry.remix:
        view.add_item(_button("remix", job, locale))
    view.add_item(_button("details", job, locale))
    return view


def progress_view(job: JobLike, locale: str) -> discord.ui.View:
    """The one button a job has while it waits or renders."""
    view = discord.ui.View(timeout=None)
    view.add_item(_button("cancel", job, locale))
    return view


# --- Modals -----------------------------------------------------------------------------


class RemixModal(discord.ui.Modal):
    """Ask for the remix prompt; the handler starts the job."""

    def __init__(self, job_id: int, locale: str, *, default: str | None = None) -> None:
        super().__init__(
            title=clamp(t("modal.remix_title", locale, id=job_id), MODAL_TITLE_LIMIT),
            custom_id=f"remix:{job_id}",
            timeout=900,
        )
        self.job_id = job_id
        self.locale = locale
        self.prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
            label=clamp(t("modal.remix_label", locale), INPUT_LABEL_LIMIT),
            style=discord.TextStyle.paragraph,
            placeholder=clamp(t("modal.remix_placeholder", locale), PLACEHOLDER_LIMIT),
            default=default[:MAX_PROMPT_INPUT] if default else None,
            min_length=1,
            max_length=MAX_PROMPT_INPUT,
        )
        self.add_item(self.prompt)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await job_actions(interaction.client).on_remix_submit(
            interaction, self.job_id, self.prompt.value.strip()
        )


class StoryboardError(InvalidRequest):
    """A storyboard line we can't read; `params` fills the translated sentence."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code, t(f"invalid.{code}", "en", **params))
        self.params = params


_SECONDS_SUFFIX = re.compile(r"\s*(seconds?|secs?|s|秒)$", re.IGNORECASE)
_SEPARATORS: Final = ("|", "｜")


def _parse_seconds(text: str) -> float | None:
    value = _SECONDS_SUFFIX.sub("", text.strip()).replace(",", ".")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def parse_storyboard(text: str, *, max_shots: int = MAX_SHOTS) -> list[Shot]:
    """Read one shot per line, `seconds | scene` (`7.5 | a plane takes off`; `7.5s`, `｜` ok).

    Blank lines are skipped; errors name the line so the member can find it.
    """
    shots: list[Shot] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        sep = next((s for s in _SEPARATORS if s in line), None)
        if sep is None:
            raise StoryboardError("storyboard_line", line=number)
        duration_text, scene = (part.strip() for part in line.split(sep, 1))
        duration = _parse_seconds(duration_text)
        if duration is None:
            raise StoryboardError("storyboard_duration", line=number)
        if not 1 <= len(scene) <= MAX_SCENE_CHARS:
            raise StoryboardError("storyboard_scene", line=number, max=MAX_SCENE_CHARS)
        shots.append(Shot(duration=duration, scene=scene))
        if len(shots) > max_shots:
            raise StoryboardError("storyboard_too_many", max=max_shots)
    if not shots:
        raise StoryboardError("storyboard_empty")
    return shots


class StoryboardModal(discord.ui.Modal):
    """An optional overall prompt plus the shots, one `seconds | scene` per line."""

    def __init__(self, options: Any, locale: str, *, prompt: str = "", shots: str = "") -> None:
        super().__init__(
            title=clamp(t("modal.storyboard_title", locale), MODAL_TITLE_LIMIT), timeout=900
        )
        self.options = options
        self.locale = locale
        self.prompt: discord.ui.TextInput[StoryboardModal] = discord.ui.TextInput(
            label=clamp(t("modal.storyboard_prompt_label", locale), INPUT_LABEL_LIMIT),
            style=discord.TextStyle.paragraph,
            placeholder=clamp(t("modal.storyboard_prompt_placeholder", locale), PLACEHOLDER_LIMIT),
            default=prompt[:1000] or None,
            required=False,
            max_length=1000,
        )
        self.shots: discord.ui.TextInput[StoryboardModal] = discord.ui.TextInput(
            label=clamp(t("modal.storyboard_shots_label", locale), INPUT_LABEL_LIMIT),
            style=discord.TextStyle.paragraph,
            placeholder=clamp(t("modal.storyboard_shots_placeholder", locale), PLACEHOLDER_LIMIT),
            default=shots[:MAX_PROMPT_INPUT] or None,
            min_length=1,
            max_length=MAX_PROMPT_INPUT,
        )
        self.add_item(self.prompt)
        self.add_item(self.shots)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        try:
            shots = parse_storyboard(self.shots.value)
        except InvalidRequest as exc:
            await interaction.response.send_message(
                invalid_request_text(exc, self.locale), ephemeral=True
            )
            return
        await job_actions(interaction.client).on_storyboard_submit(
            interaction, self.options, shots, self.prompt.value.strip()
        )
