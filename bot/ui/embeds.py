"""Pure embed builders: a record and a locale in, a `discord.Embed` within Discord's limits out.

Nothing here awaits or touches the network, so every status can be rendered in tests.
Member text (prompts, aliases, file names) is escaped so it can neither format the embed
nor ping anyone, and everything is clamped because Discord rejects the whole edit when
one limit is exceeded, which would freeze a job's progress message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, assert_never

import discord

from bot.catalogue import ModelEntry
from bot.jobs.costs import CostTable, Prices
from bot.relay.errors import ERRORS_BY_CODE
from bot.relay.models import InvalidRequest, VideoRequest
from bot.ui.i18n import EN, has_key, relay_error_text, t
from bot.ui.progress import (
    elapsed_seconds,
    estimate_remaining,
    format_duration,
    progress_bar,
    typical_render_seconds,
)
from bot.ui.records import (
    CharacterAliasLike,
    JobLike,
    QuotaStatusLike,
    RelayHealthLike,
)

TITLE_LIMIT: Final = 256
DESCRIPTION_LIMIT: Final = 4096
FIELD_NAME_LIMIT: Final = 256
FIELD_VALUE_LIMIT: Final = 1024
FOOTER_LIMIT: Final = 2048
FIELD_COUNT_LIMIT: Final = 25
TOTAL_LIMIT: Final = 6000
URL_LIMIT: Final = 2048
ELLIPSIS: Final = "…"

BLURPLE: Final = discord.Colour.blurple()
GREEN: Final = discord.Colour.green()
RED: Final = discord.Colour.red()
GREY: Final = discord.Colour.light_grey()
ORANGE: Final = discord.Colour.orange()


def clamp(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters with an ellipsis, never leaving a dangling escape."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    cut = text[: limit - 1]
    # A trailing odd run of backslashes would escape the ellipsis (or half an escape pair).
    run = len(cut) - len(cut.rstrip("\\"))
    if run % 2:
        cut = cut[:-1]
    return cut + ELLIPSIS


def escape_member_text(text: str) -> str:
    """Markdown-escape and defuse mentions (`@everyone`, `<@id>`, `<@&role>`, `<#channel>`)."""
    text = discord.utils.escape_mentions(discord.utils.escape_markdown(text))
    return text.replace("<@", "<\u200b@").replace("<#", "<\u200b#")


def fit(embed: discord.Embed) -> discord.Embed:
    """Enforce the per-part and 6000-character total limits; the description gives way first."""
    if embed.title:
        embed.title = clamp(embed.title, TITLE_LIMIT)
    if embed.description:
        embed.description = clamp(embed.description, DESCRIPTION_LIMIT)
    while len(embed.fields) > FIELD_COUNT_LIMIT:
        embed.remove_field(-1)
    for index, field in enumerate(embed.fields):
        embed.set_field_at(
            index,
            name=clamp(field.name or "\u200b", FIELD_NAME_LIMIT),
            value=clamp(field.value or "\u200b", FIELD_VALUE_LIMIT),
            inline=bool(field.inline),
        )
    if embed.footer.text:
        embed.set_footer(
            text=clamp(embed.footer.text, FOOTER_LIMIT), icon_url=embed.footer.icon_url
        )
    excess = len(embed) - TOTAL_LIMIT
    if excess > 0 and embed.description:
        embed.description = clamp(embed.description, max(1, len(embed.description) - excess))
        excess = len(embed) - TOTAL_LIMIT
    while excess > 0 and embed.fields:
        embed.remove_field(-1)
        excess = len(embed) - TOTAL_LIMIT
    return embed


def embed_to_dict(embed: discord.Embed) -> dict[str, object]:
    """The JSON Discord receives; handy for tests and logs."""
    return dict(embed.to_dict())


def timestamp(when: datetime, style: discord.utils.TimestampStyle = "R") -> str:
    """A `<t:…:R>` tag: each member's client renders it in their own time zone and language."""
    return discord.utils.format_dt(when, style)


# --- Jobs -------------------------------------------------------------------------------

_FAILED_EMOJI: Final = "❌"


def _yes_no(value: bool, locale: str) -> str:
    return t("value.yes" if value else "value.no", locale)


def _phase_label(phase: str | None, locale: str) -> str:
    # Accepted but not reported on yet: the relay hasn't started it, as far as we know.
    key = f"phase.{phase or 'queued'}"
    return t(key if key in _KNOWN_PHASES else "phase.rendering", locale)


_KNOWN_PHASES: Final = frozenset(
    {"phase.queued", "phase.rendering", "phase.checking", "phase.finishing", "phase.no_answer"}
)


def _title(job: JobLike, locale: str, queue_position: int | None) -> tuple[str, discord.Colour]:
    status = job.status
    if status == "queued":
        label = (
            t("state.queued", locale, position=queue_position)
            if queue_position is not None
            else t("state.queued_unknown", locale)
        )
        return f"⏳ {label}", BLURPLE
    if status == "submitting":
        return f"⏳ {t('state.submitting', locale)}", BLURPLE
    if status == "running" and job.phase == "no_answer":
        # The relay holds the job but its status can't be read: say so, keep waiting.
        return f"📡 {_phase_label(job.phase, locale)}", BLURPLE
    if status == "running":
        label = _phase_label(job.phase, locale)
        if job.progress is not None:
            label += f" — {int(min(100.0, max(0.0, job.progress)))}%"
        return f"🎬 {label}", BLURPLE
    if status == "succeeded":
        return f"✅ {t('state.succeeded', locale)}", GREEN
    if status == "failed":
        return f"{_FAILED_EMOJI} {t('state.failed', locale)}", RED
    if status == "cancelled":
        return f"🚫 {t('state.cancelled', locale)}", GREY
    if status == "timed_out":
        return f"⌛ {t('state.timed_out', locale)}", RED
    if status == "interrupted":
        return f"🔁 {t('state.interrupted', locale)}", ORANGE
    assert_never(status)


def _prompt_text(request: VideoRequest) -> str:
    return escape_member_text(request.prompt) if request.prompt else "\u200b"


def _storyboard_text(request: VideoRequest) -> str:
    lines = [
        f"{n}. {shot.duration:g} s — {escape_member_text(shot.scene)}"
        for n, shot in enumerate(request.storyboard, 1)
    ]
    return clamp("\n".join(lines), FIELD_VALUE_LIMIT)


def _option_fields(embed: discord.Embed, request: VideoRequest, locale: str) -> None:
    embed.add_field(
        name=t("field.orientation", locale), value=t(f"value.{request.orientation}", locale)
    )
    embed.add_field(
        name=t("field.duration", locale), value=t("value.seconds", locale, n=request.duration)
    )
    embed.add_field(name=t("field.model", locale), value=escape_member_text(request.model))
    embed.add_field(name=t("field.hd", locale), value=_yes_no(request.effective_hd, locale))
    if request.images:
        embed.add_field(name=t("field.images", locale), value=str(len(request.images)))
    if request.storyboard:
        embed.add_field(
            name=t("field.storyboard", locale), value=_storyboard_text(request), inline=False
        )


def refund_note(job: JobLike, locale: str) -> str | None:
    """Whether the units came back, mirroring the engine's rule (errors.py `refund` flags).

    A record may carry an explicit `refunded` flag; it wins over the inference.
    """
    if job.cost <= 0:
        return None
    refunded: bool | None = getattr(job, "refunded", None)
    if refunded is None and job.status == "cancelled":
        # The engine records a cancel's outcome: nothing billed yet means a full refund.
        refunded = job.error_detail == "refunded"
    if refunded is None:
        if job.status not in {"failed", "timed_out"}:
            return None
        error = ERRORS_BY_CODE.get(job.error_code or "")
        refunded = True if error is None else error.refund
    if refunded:
        return t("refund.refunded", locale, units=job.cost)
    if job.error_code == "content_policy":
        return t("refund.policy_charged", locale)
    return None


def failure_text(job: JobLike, locale: str) -> str:
    """The translated sentence for why a job failed; English detail only when we have no code."""
    code = job.error_code
    if code == "internal":
        return t("generic.internal", locale, id=job.id)
    if code == "content_policy" and has_key(f"content_policy_{job.error_detail}"):
        return t(f"content_policy_{job.error_detail}", locale)
    if code and (f"error.{code}" in _ERROR_KEYS or f"invalid.{code}" in _ERROR_KEYS):
        return relay_error_text(code, locale)
    if job.error_message:
        return escape_member_text(job.error_message)
    return relay_error_text(None, locale)


_ERROR_KEYS: Final = frozenset(k for k in EN if k.startswith(("error.", "invalid.")))


def cost_text(job: JobLike, locale: str, costs: Prices | CostTable | None = None) -> str:
    """The job's units and, when HD or a COST_TABLE factor changed the price, how today's
    prices reach it ("15 s = 2 units × HD 2 × 3 (sora-2-pro) = 12 units"). A job priced under
    older prices shows its units only, since the explanation would not add up."""
    plain = t("value.units", locale, units=job.cost)
    if costs is None or not costs.prices(job.request):
        return plain
    try:
        part = costs.breakdown(job.request)
    except (InvalidRequest, KeyError):
        return plain
    if part.total != job.cost or (part.hd_multiplier is None and part.model_factor == 1):
        return plain
    hd = t("cost.hd", locale, factor=f"{part.hd_multiplier:g}") if part.hd_multiplier else ""
    if part.model_factor == 1 and isinstance(costs, Prices):
        return t(
            "cost.explain_model",
            locale,
            duration=part.duration,
            model=escape_member_text(part.model),
            base=f"{part.base:g}",
            hd=hd,
            units=part.total,
        )
    return t(
        "cost.explain",
        locale,
        duration=part.duration,
        base=f"{part.base:g}",
        hd=hd,
        factor=f"{part.model_factor:g}",
        model=escape_member_text(part.model),
        units=part.total,
    )


def prices_text(costs: Prices | CostTable, locale: str) -> str:
    """The price list, as `/quota` shows it: per model, its units per duration and HD
    multiplier (a bare COST_TABLE: units per duration, then the multipliers)."""
    if isinstance(costs, Prices):
        return "\n".join(_model_prices(costs, entry, locale) for entry in costs.catalogue)
    durations = " · ".join(
        f"{t('value.seconds', locale, n=seconds)}: {units}"
        for seconds, units in sorted(costs.per_duration.items())
    )
    models = " · ".join(
        f"{escape_member_text(model)} ×{factor:g}"
        for model, factor in sorted(costs.model_factors.items())
    )
    return "\n".join(
        (
            t("quota.price_durations", locale, durations=durations),
            t("quota.price_factors", locale, hd=f"{costs.hd_multiplier:g}", models=models),
        )
    )


def _model_prices(costs: Prices, entry: ModelEntry, locale: str) -> str:
    """`Sora 2 Pro: 10 s: 3 · 15 s: 6 · 25 s: 12 units · HD ×2`, as the bot charges it."""
    durations = []
    hd = ""
    for seconds in entry.durations:
        plain = VideoRequest.build(prompt="-", model=entry.name, duration=seconds)
        durations.append(f"{t('value.seconds', locale, n=seconds)}: {costs.cost(plain)}")
        if not hd and entry.hd:
            part = costs.breakdown(plain.model_copy(update={"hd": True}))
            if part.hd_multiplier is not None:
                hd = t("quota.price_model_hd", locale, hd=f"{part.hd_multiplier:g}")
    return t(
        "quota.price_model",
        locale,
        model=escape_member_text(entry.label_for(locale)),
        durations=" · ".join(durations),
        hd=hd,
    )


def _is_link(url: str | None, limit: int = URL_LIMIT) -> bool:
    """Only http(s) links of sane length become buttons or embed URLs; Discord rejects others."""
    return url is not None and len(url) <= limit and url.startswith(("https://", "http://"))


def job_embed(
    job: JobLike,
    *,
    locale: str,
    now: datetime,
    queue_position: int | None = None,
    details: bool = False,
    costs: Prices | CostTable | None = None,
) -> discord.Embed:
    """The job's one progress message, for any status; `details` adds ids and timestamps.

    `costs` (the bot's cost table) lets the Cost field explain the price."""
    title, colour = _title(job, locale, queue_position)
    embed = discord.Embed(title=title, description=_prompt_text(job.request), colour=colour)
    _option_fields(embed, job.request, locale)

    status = job.status
    if status in {"queued", "submitting", "running"}:
        percent = job.progress if status == "running" else None
        embed.add_field(name=t("field.progress", locale), value=progress_bar(percent), inline=False)
        if status == "running":
            embed.add_field(name=t("field.phase", locale), value=_phase_label(job.phase, locale))
            embed.add_field(
                name=t("field.elapsed", locale), value=format_duration(elapsed_seconds(job, now))
            )
        typical = (
            typical_render_seconds(job.request, costs.catalogue)
            if isinstance(costs, Prices)
            else None
        )
        remaining = estimate_remaining(job, now, typical)
        embed.add_field(
            name=t("field.eta", locale),
            value=format_duration(remaining)
            if remaining is not None
            else t("value.eta_unknown", locale),
        )
    else:
        if job.started_at is not None:
            embed.add_field(
                name=t("field.elapsed", locale), value=format_duration(elapsed_seconds(job, now))
            )
        if status == "succeeded" and _is_link(job.result_url):
            embed.url = job.result_url
            if job.result_url and len(job.result_url) <= FIELD_VALUE_LIMIT - 40:
                embed.add_field(
                    name=t("button.open", locale),
                    value=f"[{t('button.open', locale)}]({job.result_url})",
                    inline=False,
                )
        if status in {"failed", "timed_out"}:
            lines = [failure_text(job, locale)]
            note = refund_note(job, locale)
            if note:
                lines.append(note)
            embed.add_field(name=t("field.error", locale), value="\n".join(lines), inline=False)
    note = refund_note(job, locale) if status == "cancelled" else None
    if note:
        embed.add_field(name=t("field.cost", locale), value=note, inline=False)
    elif job.cost > 0 or details:
        embed.add_field(name=t("field.cost", locale), value=cost_text(job, locale, costs))

    if details:
        embed.add_field(name=t("field.job", locale), value=f"#{job.id}")
        if job.relay_id:
            embed.add_field(name=t("field.relay", locale), value=f"`{clamp(job.relay_id, 200)}`")
        embed.add_field(name=t("field.created", locale), value=timestamp(job.created_at, "f"))
        if job.finished_at is not None:
            embed.add_field(name=t("field.finished", locale), value=timestamp(job.finished_at, "f"))

    embed.set_footer(text=t("embed.footer", locale, id=job.id, cost=job.cost))
    embed.timestamp = job.finished_at or now
    return fit(embed)


# --- Other embeds -----------------------------------------------------------------------


def error_embed(message: str, locale: str) -> discord.Embed:
    """A red embed for one sentence the member can act on (already translated)."""
    return fit(
        discord.Embed(title=f"⚠️ {t('embed.error_title', locale)}", description=message, colour=RED)
    )


def _quota_line(used: int, limit: int | None, resets_at: datetime, locale: str) -> str:
    if limit is None:
        return t("quota.line_unlimited", locale, used=used)
    return t("quota.line", locale, used=used, limit=limit, resets=timestamp(resets_at))


def quota_embed(
    status: QuotaStatusLike,
    locale: str,
    now: datetime,
    *,
    in_guild: bool = True,
    prices: Prices | CostTable | None = None,
    defaults: str | None = None,
) -> discord.Embed:
    """The member's units and (in a server) the server's, resets as relative timestamps;
    with `prices`, what each video costs, so a member can see why pro spends more; with
    `defaults`, what a /video with no options renders for them here (/settings)."""
    embed = discord.Embed(title=f"🎟️ {t('quota.title', locale)}", colour=BLURPLE, timestamp=now)
    if status.user_exempt:
        mine = t("quota.exempt", locale)
    else:
        mine = _quota_line(status.user_used, status.user_limit, status.user_resets_at, locale)
    embed.add_field(name=t("quota.yours", locale), value=mine, inline=False)
    if in_guild:
        server = _quota_line(status.guild_used, status.guild_limit, status.guild_resets_at, locale)
        embed.add_field(name=t("quota.server", locale), value=server, inline=False)
    if prices is not None:
        embed.add_field(name=t("quota.prices", locale), value=prices_text(prices, locale))
    if defaults is not None:
        embed.add_field(name=t("field.defaults", locale), value=defaults, inline=False)
    return fit(embed)


def _add_lines(lines: Sequence[str], locale: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """Join as many whole lines as fit, then say how many were left out."""
    out: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        more = t("embed.more", locale, count=len(lines) - index)
        if size + len(line) + 1 + len(more) + 1 > limit:
            out.append(more)
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def job_list_embed(jobs: Sequence[JobLike], locale: str) -> discord.Embed:
    """Recent jobs, one line each: number, state, start of the prompt, when."""
    embed = discord.Embed(title=f"🎞️ {t('list.jobs_title', locale)}", colour=BLURPLE)
    if not jobs:
        embed.description = t("list.jobs_empty", locale)
        return fit(embed)
    lines = []
    for job in jobs:
        title, _ = _title(job, locale, None)
        prompt = clamp(escape_member_text(" ".join(job.request.prompt.split())), 60)
        link = ""
        if _is_link(job.result_url, 300):
            link = f" · [{t('button.open', locale)}]({job.result_url})"
        lines.append(f"`#{job.id}` {title} · {prompt} · {timestamp(job.created_at)}{link}")
    embed.description = _add_lines(lines, locale)
    return fit(embed)


def character_list_embed(aliases: Sequence[CharacterAliasLike], locale: str) -> discord.Embed:
    """The server's character aliases: what to type, which cameo it is, who made it."""
    embed = discord.Embed(title=f"🎭 {t('list.characters_title', locale)}", colour=BLURPLE)
    if not aliases:
        embed.description = t("list.characters_empty", locale)
        return fit(embed)
    lines = [
        t(
            "list.character_line",
            locale,
            alias=f"`{clamp(item.alias.replace('`', ''), 64)}`",
            username="@" + clamp(escape_member_text(item.username.lstrip("@")), 64),
            creator=f"<@{int(item.created_by)}>",
        )
        for item in aliases
    ]
    embed.description = _add_lines(lines, locale)
    return fit(embed)


def relay_status_embed(relays: Sequence[RelayHealthLike], locale: str) -> discord.Embed:
    """One field per relay: ok or the error, latency, the catalogue models it offers (by
    its model list, or all its format carries when it has none) and the names it lists
    that the catalogue doesn't know."""
    healthy = all(relay.ok for relay in relays) and bool(relays)
    embed = discord.Embed(title=f"🛰️ {t('relay.title', locale)}", colour=GREEN if healthy else RED)
    if not relays:
        embed.description = t("relay.none", locale)
        return fit(embed)
    # Past 25, keep one field for "…and N more".
    shown = relays if len(relays) <= FIELD_COUNT_LIMIT else relays[: FIELD_COUNT_LIMIT - 1]
    for relay in shown:
        if relay.ok:
            head = "✅ " + t("relay.ok", locale)
        else:
            error = clamp(escape_member_text(relay.error or "?"), 300)
            head = "❌ " + t("relay.error", locale, error=error)
        if relay.latency is not None:
            head += " · " + t("relay.latency", locale, ms=round(relay.latency * 1000))
        lines = [head]
        if relay.breaker != "closed":
            lines.append(t("relay.paused", locale, state=relay.breaker))
        if relay.low_credit_noticed:
            lines.append(
                t("relay.low_credit", locale, quota=f"{relay.low_credit:g}")
                if relay.low_credit is not None
                else t("relay.low_credit_unknown", locale)
            )
        offers = ", ".join(escape_member_text(m) for m in relay.offers) or "—"
        key = "relay.offers" if relay.listed else "relay.offers_unlisted"
        lines.append(t(key, locale, models=clamp(offers, 400)))
        if relay.unknown:
            unknown = ", ".join(escape_member_text(m) for m in relay.unknown)
            lines.append(t("relay.unknown_models", locale, models=clamp(unknown, 300)))
        name = escape_member_text(relay.name) or "?"
        embed.add_field(name=name, value="\n".join(lines), inline=False)
    if len(relays) > len(shown):
        embed.add_field(
            name="\u200b", value=t("embed.more", locale, count=len(relays) - len(shown))
        )
    return fit(embed)
