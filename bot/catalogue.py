"""The video models the bot knows, as data: each model's rules, prices and render times.

Relays rename and add models faster than code ships, so nothing about a model lives in
code: the shipped defaults are `catalogue_defaults.toml` (package data), and an operator's
`MODELS_FILE` (TOML or JSON, the same shape) changes them without a release.

Merge rule: each `models.<name>` table of the operator file overrides the same-named
default (names compare case-insensitively) field by field — a table field such as `cost`
merges key by key — or, when no default has that name, adds a model after the defaults.
`replace_defaults = true` drops the shipped models first. An operator entry marked
`default = true` takes the default from the shipped one. A bad file stops start-up with one
line naming the entry and the field.

`VideoRequest` checks only what holds for every model (a prompt, its length, image
sources); `ModelEntry.check` adds the chosen model's rules with one sentence saying what
that model supports.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.relay.models import InvalidRequest, VideoRequest

Format = Literal["chat", "task", "official"]
Orientation = Literal["portrait", "landscape"]
Feature = Literal["hd", "storyboard", "remix", "characters", "images"]

DEFAULTS_FILE = "catalogue_defaults.toml"
_NAME = r"^[A-Za-z0-9][\w.:/-]{0,63}$"
_SIZE = r"^\d{2,5}x\d{2,5}$"
#: A render time for a duration the entry doesn't state: this many seconds per video second.
_FALLBACK_SECONDS_PER_SECOND = 12.0


class CatalogueError(ValueError):
    """The catalogue file cannot be used; the message is one line naming entry and field."""


class Shape(BaseModel):
    """How one orientation goes on the wire: a task aspect ratio, an official size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aspect_ratio: str = Field(pattern=r"^\d{1,3}:\d{1,3}$")
    size: str | None = Field(default=None, pattern=_SIZE)  # official format, standard
    hd_size: str | None = Field(default=None, pattern=_SIZE)  # official format, HD


class ChatRules(BaseModel):
    """How the chat format asks for this model: a model family whose name (suffix style)
    or prompt words (prefix style) carry orientation, HD and duration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The chat model name; None: the relay's configured `chat_model` (RELAY_CHAT_MODEL).
    family: str | None = Field(default=None, pattern=_NAME)
    #: The duration the family renders when no duration is named (no `-15s`, no `15s`).
    plain_duration: int | None = None


def _join(items: Sequence[str], word: str = "or") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


class ModelEntry(BaseModel):
    """One model a relay may sell, with everything the bot needs to know about it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=_NAME)  # sent to the relay as is
    label: str = Field(default="", max_length=100)  # English menu label; empty: the name
    labels: dict[str, str] = Field(default_factory=dict)  # locale -> label (zh-CN)
    default: bool = False
    formats: tuple[Format, ...]
    chat: ChatRules = ChatRules()
    durations: tuple[int, ...]
    default_duration: int | None = None  # None: the first of `durations`
    orientations: dict[Orientation, Shape]
    hd: bool = False
    hd_durations: tuple[int, ...] | None = None  # None: HD at every duration
    max_images: int = Field(default=0, ge=0, le=10)
    storyboard: bool = False
    remix: bool = False
    characters: bool = False
    cost: dict[int, float]  # quota units per duration (a fraction rounds up per video)
    hd_multiplier: float = Field(default=2.0, ge=1, le=100)
    render_seconds: dict[int, float] = Field(default_factory=dict)
    hd_extra_seconds: float = Field(default=0.0, ge=0)
    to_confirm: bool = False

    @field_validator("formats", "durations", "orientations")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("durations")
    @classmethod
    def _durations(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= d <= 300 for d in value):
            raise ValueError("each duration must be 1 to 300 seconds")
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a duration")
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not text or len(text) > 100 for text in value.values()):
            raise ValueError("each label must be 1 to 100 characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelEntry:
        if self.default_duration is not None and self.default_duration not in self.durations:
            raise _field_error("default_duration", "must be one of durations")
        missing = [d for d in self.durations if d not in self.cost]
        if missing:
            raise _field_error("cost", f"no price for {_join([f'{d} s' for d in missing])}")
        if any(not math.isfinite(units) or units < 0 for units in self.cost.values()):
            raise _field_error("cost", "prices must be >= 0")
        if any(not math.isfinite(s) or s <= 0 for s in self.render_seconds.values()):
            raise _field_error("render_seconds", "times must be > 0")
        if self.hd_durations is not None and not set(self.hd_durations) <= set(self.durations):
            raise _field_error("hd_durations", "must be among durations")
        if "official" in self.formats:
            for orientation, shape in self.orientations.items():
                if shape.size is None:
                    raise _field_error(
                        f"orientations.{orientation}.size", "the official format needs a size"
                    )
                if self.hd and shape.hd_size is None:
                    raise _field_error(
                        f"orientations.{orientation}.hd_size",
                        "the official format needs an HD size when hd = true",
                    )
        return self

    # -- What the model is -------------------------------------------------------------

    def label_for(self, locale: object = None) -> str:
        """The menu label in `locale` (a discord.Locale or its string), else English."""
        key = str(getattr(locale, "value", locale) or "")
        if key:
            for candidate in (key, key.split("-")[0]):
                for name, text in self.labels.items():
                    if name.lower() == candidate.lower():
                        return text
        return self.label or self.name

    @property
    def first_duration(self) -> int:
        """The duration a request gets when it names none."""
        return self.default_duration if self.default_duration is not None else self.durations[0]

    def supports(self, feature: Feature) -> bool:
        if feature == "images":
            return self.max_images > 0
        return bool(getattr(self, feature))

    def effective_hd(self, request: VideoRequest) -> bool:
        """Whether the render is HD: asked for, and honoured at this duration."""
        if not (request.hd and self.hd):
            return False
        return self.hd_durations is None or request.duration in self.hd_durations

    def aspect_ratio(self, orientation: str) -> str:
        return self.orientations[orientation].aspect_ratio  # type: ignore[index]

    def size(self, request: VideoRequest) -> str | None:
        """The official format's `size`: the HD size when the render is HD."""
        shape = self.orientations.get(request.orientation)
        if shape is None:
            return None
        if self.effective_hd(request) and shape.hd_size:
            return shape.hd_size
        return shape.size

    # -- Rules, prices, times ----------------------------------------------------------

    def check(
        self, request: VideoRequest, *, catalogue: Iterable[ModelEntry] | None = None
    ) -> None:
        """Raise `InvalidRequest` with one sentence naming what this model supports;
        `catalogue`: the models a sentence may name instead (those usable here)."""
        name = self.name
        if request.duration not in self.durations:
            choices = [str(d) for d in self.durations]
            if len(choices) == 1:
                only = choices[0]
                message = f"{name} renders {only} s only; pick {only} s or another model."
            else:
                message = f"{name} renders {_join(choices)} s; pick one of those or another model."
            raise InvalidRequest(
                "model_duration", message, model=name, durations=tuple(self.durations)
            )
        if request.orientation not in self.orientations:
            shapes = list(self.orientations)
            raise InvalidRequest(
                "model_orientation",
                f"{name} renders {_join(shapes)} only; pick it or another model.",
                model=name,
                orientations=tuple(shapes),
            )
        if request.hd and not self.hd:
            others = [e.name for e in catalogue or () if e.hd]
            if others:
                message = f"HD needs a model that offers it: {_join(others)}."
            else:
                message = f"{name} has no HD; turn HD off."
            raise InvalidRequest("model_hd", message, model=name, models=tuple(others))
        if len(request.images) > self.max_images:
            if self.max_images == 0:
                message = f"{name} takes no reference images; remove them or pick another model."
            else:
                n = self.max_images
                message = (
                    f"{name} takes at most {n} reference image{'s' if n > 1 else ''}; "
                    "remove some or pick another model."
                )
            raise InvalidRequest("model_images", message, model=name, max=self.max_images)
        if request.storyboard:
            self.require_feature("storyboard", catalogue=catalogue)
        if request.remix_of is not None:
            self.require_feature("remix", catalogue=catalogue)
        if request.cameo is not None:
            self.require_feature("characters", catalogue=catalogue)

    def require_feature(
        self,
        feature: Literal["storyboard", "remix", "characters"],
        *,
        catalogue: Iterable[ModelEntry] | None = None,
    ) -> None:
        """Raise `InvalidRequest` naming the models that have `feature`, if this one has
        not (also asked before a remix prompt is, so a member isn't asked for nothing)."""
        if getattr(self, feature):
            return
        others = [e.name for e in catalogue or () if getattr(e, feature)]
        message = f"{self.name} has no {feature}" + (f"; pick {_join(others)}." if others else ".")
        raise InvalidRequest(f"model_{feature}", message, model=self.name, models=tuple(others))

    def cost_of(self, request: VideoRequest) -> int:
        """Quota units: the duration's price, times the HD multiplier, rounded up."""
        base = self.cost[request.duration]
        factor = self.hd_multiplier if self.effective_hd(request) else 1.0
        return max(0, math.ceil(base * factor - 1e-9))

    def typical_seconds(self, request: VideoRequest) -> float:
        """How long a render like this usually takes, before any history says otherwise."""
        seconds = self.render_seconds.get(request.duration)
        if seconds is None:
            seconds = max(60.0, request.duration * _FALLBACK_SECONDS_PER_SECOND)
        if self.effective_hd(request):
            seconds += self.hd_extra_seconds
        return float(seconds)


def _field_error(field: str, message: str) -> ValueError:
    """A model-level error that still names its field (read back by `_describe`)."""
    return ValueError(f"{field}: {message}")


class Catalogue:
    """The models, in menu order. Immutable; lookups ignore case."""

    __slots__ = ("_by_key", "default", "entries", "operator_priced")

    def __init__(
        self,
        entries: tuple[ModelEntry, ...] | list[ModelEntry],
        *,
        operator_priced: frozenset[str] = frozenset(),
    ) -> None:
        if not entries:
            raise CatalogueError("the model catalogue is empty")
        self.entries: tuple[ModelEntry, ...] = tuple(entries)
        self._by_key = {entry.name.lower(): entry for entry in self.entries}
        if len(self._by_key) != len(self.entries):
            raise CatalogueError("the model catalogue names a model twice")
        self.default: ModelEntry = next((e for e in self.entries if e.default), self.entries[0])
        #: Models (lower-case) whose price the operator's file set: COST_TABLE leaves them be.
        self.operator_priced = operator_priced

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_key

    def __repr__(self) -> str:
        return f"Catalogue({', '.join(self.names())})"

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def get(self, name: str | None) -> ModelEntry | None:
        return self._by_key.get(name.lower()) if name else None

    def require(self, name: str | None) -> ModelEntry:
        """The entry, or `InvalidRequest("unknown_model")` naming the models there are."""
        entry = self.get(name)
        if entry is None:
            known = self.names()
            raise InvalidRequest(
                "unknown_model",
                f"There is no model {name!r} here; pick {_join(known)}.",
                model=name or "",
                models=tuple(known),
            )
        return entry

    def supporting(self, feature: Feature | Format) -> list[ModelEntry]:
        """The entries with a feature (`hd`, `storyboard`, …) or that a format can carry."""
        if feature in ("chat", "task", "official"):
            return [e for e in self.entries if feature in e.formats]
        return [e for e in self.entries if e.supports(feature)]  # type: ignore[arg-type]

    def durations(self) -> list[int]:
        """Every duration some model renders, shortest first."""
        return sorted({d for entry in self.entries for d in entry.durations})

    def check(self, request: VideoRequest) -> ModelEntry:
        """The request's model entry, after its rules held (else `InvalidRequest`)."""
        entry = self.require(request.model)
        entry.check(request, catalogue=self)
        return entry

    def usable(self, among: Collection[str] | None) -> list[ModelEntry]:
        """The entries named in `among` (lower-case names; None: every one)."""
        return (
            list(self.entries)
            if among is None
            else [e for e in self.entries if e.name.lower() in among]
        )

    def resolve(
        self, request: VideoRequest, *, among: Collection[str] | None = None
    ) -> VideoRequest:
        """The request as it will be rendered, after its model's rules held: the model's
        own spelling and default duration when none was chosen (the operator's default
        model when none was named), and HD dropped where the model ignores it. What is
        stored, priced and sent is this. `among`: the models (lower-case names) usable
        here, the only ones a refusal names as alternatives."""
        chosen = request.model_fields_set
        entry = self.require(request.model) if "model" in chosen else self.default
        changes: dict[str, object] = {}
        if entry.name != request.model:
            changes["model"] = entry.name
        if "duration" not in chosen and request.duration != entry.first_duration:
            changes["duration"] = entry.first_duration
        if changes:
            request = VideoRequest.build(**{**request.model_dump(), **changes})
        entry.check(request, catalogue=self.usable(among))
        if request.hd and not entry.effective_hd(request):
            request = request.model_copy(update={"hd": False})
        return request

    def cost_of(self, request: VideoRequest) -> int:
        return self.require(request.model).cost_of(request)

    def typical_seconds(self, request: VideoRequest) -> float:
        return self.require(request.model).typical_seconds(request)


# --- Loading ------------------------------------------------------------------------


def _read_defaults() -> dict[str, Any]:
    text = resources.files("bot").joinpath(DEFAULTS_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


def _read_file(path: Path, where: str) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise CatalogueError(f"{where}: must be a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CatalogueError(f"{where}: is not UTF-8 text") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{where}: is not valid TOML: {_one_line(str(exc))}") from None
    except json.JSONDecodeError as exc:
        raise CatalogueError(f"{where}: is not valid JSON: {_one_line(str(exc))}") from None
    if not isinstance(data, dict):
        raise CatalogueError(f"{where}: must hold a table (an object) at the top")
    return data


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _models_of(data: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    unknown = sorted(set(data) - {"models", "replace_defaults"})
    if unknown:
        raise CatalogueError(
            f"{where}: unknown key {unknown[0]!r} (expected models and replace_defaults)"
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise CatalogueError(f"{where}: models: must be a table of models by name")
    out: dict[str, dict[str, Any]] = {}
    for name, fields in models.items():
        if not isinstance(fields, dict):
            raise CatalogueError(f'{where}: model "{name}": must be a table of fields')
        if "name" in fields and str(fields["name"]) != name:
            raise CatalogueError(f'{where}: model "{name}": name: must match the table\'s name')
        out[str(name)] = {**fields, "name": str(name)}
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` field by field onto `base`; tables (cost, labels, orientations…) key by key."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(exc: ValidationError) -> str:
    """pydantic's first error as `field: what is wrong`."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if not field and ": " in message:  # a model-level check names its own field
        return message
    return f"{field or 'entry'}: {message}"


def build_catalogue(
    models: Mapping[str, Mapping[str, Any]],
    where: str = "the model catalogue",
    *,
    operator_priced: frozenset[str] = frozenset(),
) -> Catalogue:
    """Validate raw entries (name -> fields) into a `Catalogue`; one line per the first fault."""
    entries = []
    for name, fields in models.items():
        try:
            entries.append(ModelEntry.model_validate(dict(fields)))
        except ValidationError as exc:
            raise CatalogueError(f'{where}: model "{name}": {_describe(exc)}') from None
    if not entries:
        raise CatalogueError(f"{where}: names no model")
    defaults = [entry.name for entry in entries if entry.default]
    if len(defaults) > 1:
        raise CatalogueError(f'{where}: model "{defaults[1]}": default: only one model may be')
    return Catalogue(entries, operator_priced=operator_priced)


def load_catalogue(path: Path | str | None = None) -> Catalogue:
    """The shipped defaults, changed by the operator file at `path` (see the module doc)."""
    shipped = _models_of(_read_defaults(), DEFAULTS_FILE)
    if path is None or str(path) == "":
        return build_catalogue(shipped, DEFAULTS_FILE)
    path = Path(path)
    where = f"MODELS_FILE {path.name}"
    data = _read_file(path, where)
    replace = data.get("replace_defaults", False)
    if not isinstance(replace, bool):
        raise CatalogueError(f"{where}: replace_defaults: must be true or false")
    operator = _models_of(data, where)
    merged: dict[str, dict[str, Any]] = {}
    if not replace:
        merged = {name.lower(): fields for name, fields in shipped.items()}
    if any(fields.get("default") is True for fields in operator.values()):
        for fields in merged.values():  # the operator's default replaces the shipped one
            fields["default"] = False
    priced = set()
    for name, fields in operator.items():
        key = name.lower()
        if key in merged:
            merged[key] = _merge(merged[key], fields)
            if {"cost", "hd_multiplier"} & fields.keys():
                priced.add(key)
        else:
            merged[key] = fields
            priced.add(key)
    by_name = {fields["name"]: fields for fields in merged.values()}
    return build_catalogue(by_name, where, operator_priced=frozenset(priced))


_SHIPPED: Catalogue | None = None


def shipped_catalogue() -> Catalogue:
    """The shipped defaults, read once (for code paths that have no operator catalogue)."""
    global _SHIPPED
    if _SHIPPED is None:
        _SHIPPED = load_catalogue(None)
    return _SHIPPED
