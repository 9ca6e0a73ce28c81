"""What `/video` and `/storyboard` render when a member leaves options out.

An option the member typed wins, then their default in this server, then the server's
default, then the command's own (a storyboard is 15 s), then the model catalogue's. A
stored default that no longer fits (its model left the catalogue or is not allowed here,
or the chosen model lacks that duration, orientation or HD) is skipped and reported, so
a stale setting never fails a command; an option the member typed is never skipped: it
is validated, and refused with one sentence when it breaks a rule.

`resolve` is pure: it reads a `Preferences` snapshot and the catalogue. `DefaultsService`
does the reading, and remembers which servers have any settings at all, so a server
without them needs no database read before a command is acknowledged (options alone are
still checked, and refused, at once there).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.store.preferences import Defaults, ModelNotAllowedError, Preferences

if TYPE_CHECKING:
    from bot.catalogue import Catalogue, ModelEntry
    from bot.store.interface import PreferenceStore

__all__ = ["DefaultsService", "ModelNotAllowedError", "Resolved", "Skipped", "resolve"]

Level = Literal["member", "server"]
#: Why a stored default was passed over: its model is gone from the catalogue, is not
#: allowed in this server, or the model being rendered can't do it.
SkipReason = Literal["unknown", "not_allowed", "unsupported"]


class ModelLike(Protocol):
    """What resolution needs of a catalogue entry (`bot.catalogue.ModelEntry`)."""

    @property
    def name(self) -> str: ...
    @property
    def durations(self) -> Sequence[int]: ...
    @property
    def orientations(self) -> Collection[str]: ...
    @property
    def hd(self) -> bool: ...
    @property
    def storyboard(self) -> bool: ...
    @property
    def first_duration(self) -> int: ...


class CatalogueLike(Protocol):
    """What resolution needs of the model catalogue (`bot.catalogue.Catalogue`)."""

    def get(self, name: str) -> ModelLike | None: ...
    @property
    def default(self) -> ModelLike: ...
    def __iter__(self) -> Iterator[ModelLike]: ...


@dataclass(frozen=True, slots=True)
class Skipped:
    """A stored default that was passed over, and why (shown to the member as a note)."""

    field: str
    value: Any
    level: Level
    reason: SkipReason
    used: Any = None  # what was rendered instead


@dataclass(frozen=True, slots=True)
class Resolved:
    """The options a video is made with, and the defaults that had to be skipped."""

    model: str
    orientation: str
    duration: int
    hd: bool
    private: bool
    skipped: tuple[Skipped, ...] = ()

    def fields(self) -> dict[str, Any]:
        """Keyword arguments for `VideoRequest.build`."""
        return {
            "model": self.model,
            "orientation": self.orientation,
            "duration": self.duration,
            "hd": self.hd,
            "private": self.private,
        }


def allowed_names(catalogue: Iterable[ModelLike], allowed: Collection[str] | None) -> list[str]:
    """The catalogue's models a server allows, in catalogue order (None: all of them)."""
    return [entry.name for entry in catalogue if allowed is None or entry.name in allowed]


def check_allowed(
    model: str, allowed: Collection[str] | None, catalogue: Iterable[ModelLike] | None = None
) -> None:
    """Raise `ModelNotAllowedError` when a server's restriction leaves `model` out."""
    if allowed is None or model in allowed:
        return
    names = allowed_names(catalogue, allowed) if catalogue is not None else sorted(allowed)
    raise ModelNotAllowedError(model, names)


def _fits(field: str, value: Any, entry: ModelLike) -> bool:
    """Whether `entry` can render with `field` set to `value`."""
    if field == "duration":
        return value in entry.durations
    if field == "orientation":
        return value in entry.orientations
    if field == "hd":
        return not value or entry.hd
    return True


def _model_fits(entry: ModelLike, typed: Defaults, storyboard: bool) -> bool:
    """A default model is used only if it can do what the member typed."""
    if storyboard and not entry.storyboard:
        return False
    return all(
        value is None or _fits(field, value, entry)
        for field, value in (
            ("duration", typed.duration),
            ("orientation", typed.orientation),
            ("hd", typed.hd),
        )
    )


def _entry_default(field: str, entry: ModelLike) -> Any:
    if field == "duration":
        return entry.first_duration
    if field == "orientation":
        return next(iter(entry.orientations))
    return False  # hd, private


def resolve(
    typed: Defaults,
    prefs: Preferences | None,
    catalogue: CatalogueLike,
    *,
    base: Defaults | None = None,
    storyboard: bool = False,
) -> Resolved:
    """The options to render with: typed, else member, else server, else `base` (the
    command's own defaults), else the catalogue's. Raises `ModelNotAllowedError` when the
    typed model (or, with nothing typed, every model) is not allowed in this server."""
    base = base or Defaults()
    member = prefs.member if prefs else Defaults()
    server = prefs.server if prefs else Defaults()
    allowed = prefs.allowed_models if prefs else None
    skipped: list[Skipped] = []
    levels: tuple[tuple[Level, Defaults], ...] = (("member", member), ("server", server))

    # The model first: every other default is judged against it.
    entry: ModelLike | None
    if typed.model is not None:
        entry = catalogue.get(typed.model)
        model = entry.name if entry is not None else typed.model
        check_allowed(model, allowed, catalogue)
    else:
        model, entry = "", None
        for level, defaults in levels:
            if defaults.model is None:
                continue
            candidate = catalogue.get(defaults.model)
            reason: SkipReason | None = None
            if candidate is None:
                reason = "unknown"
            elif allowed is not None and candidate.name not in allowed:
                reason = "not_allowed"
            elif not _model_fits(candidate, typed, storyboard):
                reason = "unsupported"
            if reason is None:
                assert candidate is not None
                model, entry = candidate.name, candidate
                break
            skipped.append(Skipped("model", defaults.model, level, reason))
        if entry is None:
            entry = _fallback_model(catalogue, allowed, typed, storyboard)
            model = entry.name
        skipped = [
            Skipped(s.field, s.value, s.level, s.reason, model) if s.field == "model" else s
            for s in skipped
        ]

    chosen: dict[str, Any] = {}
    for field in ("orientation", "duration", "hd", "private"):
        value = getattr(typed, field)
        if value is None:
            value = _from_levels(field, levels, entry, skipped)
        if value is None:
            wanted = getattr(base, field)
            fits = wanted is not None and (entry is None or _fits(field, wanted, entry))
            value = wanted if fits else None
        if value is None:
            value = _entry_default(field, entry or catalogue.default)
        chosen[field] = value
    skipped = [
        Skipped(s.field, s.value, s.level, s.reason, chosen[s.field]) if s.field in chosen else s
        for s in skipped
    ]
    return Resolved(model=model, skipped=tuple(skipped), **chosen)


def _from_levels(
    field: str,
    levels: Iterable[tuple[Level, Defaults]],
    entry: ModelLike | None,
    skipped: list[Skipped],
) -> Any:
    """The first stored default for `field` the model can render, noting the others."""
    for level, defaults in levels:
        value = getattr(defaults, field)
        if value is None:
            continue
        if entry is None or _fits(field, value, entry):
            return value
        skipped.append(Skipped(field, value, level, "unsupported"))
    return None


def _fallback_model(
    catalogue: CatalogueLike, allowed: Collection[str] | None, typed: Defaults, storyboard: bool
) -> ModelLike:
    """The catalogue's default model, or when the server doesn't allow it, the first
    allowed model (one that fits what was typed, if any does)."""
    default = catalogue.default
    if allowed is None or default.name in allowed:
        return default
    permitted = [entry for entry in catalogue if entry.name in allowed]
    if not permitted:
        raise ModelNotAllowedError(default.name, [])
    fitting = [entry for entry in permitted if _model_fits(entry, typed, storyboard)]
    return (fitting or permitted)[0]


class DefaultsService:
    """Reads a member's defaults for a command, and keeps the one fact worth caching:
    which servers have any settings stored (loaded at start-up, grown by every write
    through this service). A server not in that set is answered without a database read.

    With several bot processes, each server's commands arrive at the process that runs
    its shard, and `/settings` for that server does too, so the set stays true.
    """

    def __init__(self, repo: PreferenceStore, catalogue: Catalogue) -> None:
        self.repo = repo
        self.catalogue = catalogue
        self._guilds: set[int] = set()

    async def load(self) -> None:
        self._guilds = set(await self.repo.guilds_with_settings())

    def has_settings(self, guild_id: int) -> bool:
        return guild_id in self._guilds

    async def preferences(self, guild_id: int, user_id: int) -> Preferences | None:
        """The member's and server's settings, or None when the server has none."""
        if guild_id not in self._guilds:
            return None
        return await self.repo.get(guild_id, user_id)

    async def stored(self, guild_id: int, user_id: int) -> Preferences:
        """What is stored for the member and the server, read every time: the settings
        screens show and edit it, so they must not rely on the cached shortcut."""
        return await self.repo.get(guild_id, user_id)

    async def allowed_models(self, guild_id: int) -> list[ModelEntry]:
        """The catalogue models members may use in `guild_id` (for autocomplete)."""
        allowed = await self.repo.allowed_models(guild_id) if guild_id in self._guilds else None
        return [entry for entry in self.catalogue if allowed is None or entry.name in allowed]

    async def resolve(
        self,
        guild_id: int,
        user_id: int,
        typed: Defaults,
        *,
        base: Defaults | None = None,
        storyboard: bool = False,
    ) -> Resolved:
        prefs = await self.preferences(guild_id, user_id)
        return resolve(typed, prefs, self.catalogue, base=base, storyboard=storyboard)

    def resolve_now(
        self,
        guild_id: int,
        typed: Defaults,
        *,
        base: Defaults | None = None,
        storyboard: bool = False,
    ) -> Resolved | None:
        """The options without any database read, or None when this server has settings
        (then `resolve` must read them, after the command is acknowledged)."""
        if guild_id in self._guilds:
            return None
        return resolve(typed, None, self.catalogue, base=base, storyboard=storyboard)

    # -- writes (they mark the server as having settings) ----------------------------

    async def set_member(self, guild_id: int, user_id: int, **changes: Any) -> Defaults:
        self._guilds.add(guild_id)
        return await self.repo.set_member(guild_id, user_id, **changes)

    async def set_server(self, guild_id: int, **changes: Any) -> Defaults:
        self._guilds.add(guild_id)
        return await self.repo.set_server(guild_id, **changes)

    async def set_allowed_models(
        self, guild_id: int, models: Iterable[str] | None
    ) -> frozenset[str] | None:
        self._guilds.add(guild_id)
        return await self.repo.set_allowed_models(guild_id, models)

    async def reset_member(self, guild_id: int, user_id: int) -> None:
        await self.repo.reset_member(guild_id, user_id)

    async def reset_server(self, guild_id: int) -> None:
        await self.repo.reset_server(guild_id)
