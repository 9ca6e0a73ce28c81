"""What a video costs in quota units.

Relays bill by duration, resolution and model, so a flat "one job = one unit" quota
would let a member burn a server's month on a handful of 25-second HD renders. Prices
live in the model catalogue (`bot.catalogue`): each model's units per duration and its HD
multiplier, rounded up per video; `Prices` is what the engine charges and the UI explains.

`COST_TABLE` is the older setting (`10=1,15=2,25=4,hd=2,sora-2-pro=3`: units per
duration, an HD multiplier and a factor per model). It is still honoured when set: it
prices the durations it names, for every model whose price the operator's `MODELS_FILE`
doesn't set (that file is newer and more specific, so it wins); the catalogue prices the
rest (e.g. Veo's 8 s). A model the table doesn't name keeps its factor from the shipped
catalogue (`sora-2-pro` ×3 against the default model), so an old table never makes the
expensive model cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bot.catalogue import Catalogue, ModelEntry, shipped_catalogue
from bot.relay.models import VideoRequest

_MODEL_NAME = re.compile(r"^[a-z][\w.:-]*$")


class CostTableError(ValueError):
    """The `COST_TABLE` setting cannot be read."""


def _shipped_factors() -> Mapping[str, float]:
    """Each shipped model's price against the default model's at the first duration both
    render (sora-2-pro: 3 units where sora-2 costs 1); models sharing none are ×1."""
    catalogue = shipped_catalogue()
    reference = catalogue.default
    factors: dict[str, float] = {}
    for entry in catalogue:
        common = [d for d in entry.durations if d in reference.durations and reference.cost[d]]
        if common:
            factors[entry.name.lower()] = entry.cost[common[0]] / reference.cost[common[0]]
    return MappingProxyType(factors)


DEFAULT_MODEL_FACTORS: Mapping[str, float] = _shipped_factors()


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """How one request's price was reached, so a member can see why it costs what it does."""

    duration: int
    base: float  # units for the duration: COST_TABLE's, or the default model's, or its own
    hd_multiplier: float | None  # None: not HD
    model: str
    model_factor: float  # the model's price against `base` (1: `base` is its own price)
    total: int


@dataclass(frozen=True)
class CostTable:
    """The `COST_TABLE` setting: units per duration × HD × a factor per model."""

    per_duration: dict[int, int] = field(default_factory=lambda: {10: 1, 15: 2, 25: 4})
    hd_multiplier: float = 2.0
    model_factors: Mapping[str, float] = field(default_factory=lambda: DEFAULT_MODEL_FACTORS)

    @classmethod
    def parse(cls, text: str) -> CostTable:
        """Read `10=1,15=2,25=4,hd=2,sora-2-pro=3`; every duration the relay offers needs a
        price. Models keep their default factor (`sora-2-pro=3`) unless the table names them,
        so an older table without model entries still prices the pro model honestly."""
        per_duration: dict[int, int] = {}
        hd = 2.0
        factors = dict(DEFAULT_MODEL_FACTORS)
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise CostTableError(f"COST_TABLE entry {part!r} is not key=value")
            key = key.strip().lower()
            try:
                if key == "hd":
                    hd = float(value)
                elif key.removesuffix("s").isdigit():
                    per_duration[int(key.removesuffix("s"))] = int(value)
                elif _MODEL_NAME.match(key):
                    factors[key] = float(value)
                else:
                    raise CostTableError(
                        f"COST_TABLE entry {part!r} names neither a duration, hd nor a model"
                    )
            except ValueError as exc:
                if isinstance(exc, CostTableError):
                    raise
                raise CostTableError(f"COST_TABLE entry {part!r} is not a number") from None
        missing = {10, 15, 25} - per_duration.keys()
        if missing:
            raise CostTableError(f"COST_TABLE has no price for {sorted(missing)} seconds")
        if hd < 1 or any(v < 0 for v in per_duration.values()):
            raise CostTableError("COST_TABLE prices must be >= 0 and hd >= 1")
        bad = [name for name, factor in factors.items() if not 0 < factor <= 100]
        if bad or not all(map(math.isfinite, (hd, *factors.values()))):
            raise CostTableError(f"COST_TABLE model factors must be > 0 and <= 100 ({bad})")
        return cls(per_duration, hd, MappingProxyType(factors))

    def factor(self, model: str) -> float:
        return self.model_factors.get(model.lower(), 1.0)

    def prices(self, request: VideoRequest) -> bool:
        return request.duration in self.per_duration

    def breakdown(self, request: VideoRequest) -> CostBreakdown:
        base = self.per_duration[request.duration]
        hd = self.hd_multiplier if request.effective_hd else None
        factor = self.factor(request.model)
        total = math.ceil(base * (hd or 1.0) * factor - 1e-9)
        return CostBreakdown(request.duration, base, hd, request.model, factor, max(total, 0))

    def cost(self, request: VideoRequest) -> int:
        return self.breakdown(request).total


class Prices:
    """What the bot charges: the catalogue's prices, and `COST_TABLE` where it applies."""

    def __init__(self, catalogue: Catalogue | None = None, table: CostTable | None = None) -> None:
        self.catalogue = catalogue or shipped_catalogue()
        self.table = table

    @classmethod
    def from_settings(cls, catalogue: Catalogue, cost_table: str) -> Prices:
        return cls(catalogue, CostTable.parse(cost_table) if cost_table.strip() else None)

    def _uses_table(self, entry: ModelEntry, request: VideoRequest) -> bool:
        return (
            self.table is not None
            and entry.name.lower() not in self.catalogue.operator_priced
            and self.table.prices(request)
        )

    def prices(self, request: VideoRequest) -> bool:
        """Whether this request can be priced (its model and duration are known)."""
        entry = self.catalogue.get(request.model)
        return entry is not None and request.duration in entry.cost

    def breakdown(self, request: VideoRequest) -> CostBreakdown:
        """The price of a resolved request (`Catalogue.resolve`); `InvalidRequest` for a
        model the catalogue doesn't know, `KeyError` for a duration it doesn't price."""
        entry = self.catalogue.require(request.model)
        if self._uses_table(entry, request):
            assert self.table is not None
            return self.table.breakdown(request)
        price = entry.cost[request.duration]
        hd = entry.hd_multiplier if entry.effective_hd(request) else None
        total = max(0, math.ceil(price * (hd or 1.0) - 1e-9))
        base, factor = price, 1.0
        # Shown against the default model when the price is a plain multiple of its price
        # ("15 s = 2 units × 3 (sora-2-pro)"): members see why one model costs more.
        reference = self.catalogue.default.cost.get(request.duration)
        if entry is not self.catalogue.default and reference:
            ratio = price / reference
            if ratio != 1 and round(ratio, 2) == ratio:
                base, factor = reference, ratio
        return CostBreakdown(request.duration, base, hd, entry.name, factor, total)

    def cost(self, request: VideoRequest) -> int:
        return self.breakdown(request).total

    def table_note(self) -> str | None:
        """The start-up line saying what `COST_TABLE` still prices, when it is set."""
        if self.table is None:
            return None
        seconds = ", ".join(str(d) for d in sorted(self.table.per_duration))
        return (
            f"COST_TABLE is set: it prices {seconds} s videos for every model MODELS_FILE does "
            "not price; the model catalogue prices the rest (COST_TABLE may go away: move "
            "prices to MODELS_FILE)"
        )
