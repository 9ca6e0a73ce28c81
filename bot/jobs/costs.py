"""What a video costs in quota units.

Relays bill by duration and resolution, so a flat "one job = one unit" quota would let a
member burn a server's month on a handful of 25-second HD renders. The table is a
setting (`COST_TABLE`), e.g. `10=1,15=2,25=4,hd=2`: units per duration, and a multiplier
for HD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bot.relay.models import VideoRequest


class CostTableError(ValueError):
    """The `COST_TABLE` setting cannot be read."""


@dataclass(frozen=True)
class CostTable:
    per_duration: dict[int, int] = field(default_factory=lambda: {10: 1, 15: 2, 25: 4})
    hd_multiplier: float = 2.0

    @classmethod
    def parse(cls, text: str) -> CostTable:
        """Read `10=1,15=2,25=4,hd=2`; every duration the relay offers needs a price."""
        per_duration: dict[int, int] = {}
        hd = 2.0
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep:
                raise CostTableError(f"COST_TABLE entry {part!r} is not key=value")
            key = key.strip().lower().removesuffix("s")
            try:
                if key == "hd":
                    hd = float(value)
                else:
                    per_duration[int(key)] = int(value)
            except ValueError:
                raise CostTableError(f"COST_TABLE entry {part!r} is not a number") from None
        missing = {10, 15, 25} - per_duration.keys()
        if missing:
            raise CostTableError(f"COST_TABLE has no price for {sorted(missing)} seconds")
        if hd < 1 or any(v < 0 for v in per_duration.values()):
            raise CostTableError("COST_TABLE prices must be >= 0 and hd >= 1")
        return cls(per_duration, hd)

    def cost(self, request: VideoRequest) -> int:
        units = self.per_duration[request.duration]
        if request.effective_hd:
            units = math.ceil(units * self.hd_multiplier)
        return units
