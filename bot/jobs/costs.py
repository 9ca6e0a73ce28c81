"""What a video costs in quota units.

Relays bill by duration, resolution and model, so a flat "one job = one unit" quota
would let a member burn a server's month on a handful of 25-second HD renders. The
table is a setting (`COST_TABLE`), e.g. `10=1,15=2,25=4,hd=2,sora-2-pro=3`: units per
duration, a multiplier for HD, and a factor per model (`sora-2-pro` costs the relay
several times `sora-2`). A model the table doesn't name costs factor 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bot.relay.models import DEFAULT_MODEL, PRO_MODEL, VideoRequest

DEFAULT_COST_TABLE = "10=1,15=2,25=4,hd=2,sora-2=1,sora-2-pro=3"
DEFAULT_MODEL_FACTORS: Mapping[str, float] = MappingProxyType({DEFAULT_MODEL: 1.0, PRO_MODEL: 3.0})
_MODEL_NAME = re.compile(r"^[a-z][\w.:-]*$")


class CostTableError(ValueError):
    """The `COST_TABLE` setting cannot be read."""


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """How one request's price was reached, so a member can see why it costs what it does."""

    duration: int
    base: int  # units for the duration
    hd_multiplier: float | None  # None: not HD
    model: str
    model_factor: float
    total: int


@dataclass(frozen=True)
class CostTable:
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

    def breakdown(self, request: VideoRequest) -> CostBreakdown:
        base = self.per_duration[request.duration]
        hd = self.hd_multiplier if request.effective_hd else None
        factor = self.factor(request.model)
        total = math.ceil(base * (hd or 1.0) * factor - 1e-9)
        return CostBreakdown(request.duration, base, hd, request.model, factor, max(total, 0))

    def cost(self, request: VideoRequest) -> int:
        return self.breakdown(request).total
