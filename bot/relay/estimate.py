"""When to read a job's status next: from an estimate of its finish, not a fixed timer.

Relays ration requests per key, and members wait for the finish to show. A timer spends
its reads evenly, so it either reads often (and burns the ration) or sees the finish late.
Here the finish is estimated — from the relay's own percent over time when it reports
one, seeded by how long past jobs of the same kind took on the same relay, and from a
conservative default when there is no history — and the reads go where they pay: one
early (a prompt can be refused at once), few mid-render, dense around the estimated end.
An estimate that proves too early costs reads whose gaps grow, but stay bounded, until
the job's deadline. With relay callbacks the reads are only a safety net, far apart.

Pure functions and one small class; `bot.relay.polling` owns the clock and the reads.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

#: The first read: a prompt refused at once is told at once.
EARLY_READ = 3.0
#: No two scheduled reads closer than this (the relay's rationing, and our own CPU).
MIN_GAP = 1.5
#: Mid-render, wait this share of the time the estimate says is left …
MID_SHARE = 0.6
#: … but never longer than this, so a wrong prior is corrected by the next percent.
MAX_GAP = 30.0
#: Past the estimated end the job is late: gaps grow by this share of the overrun …
OVERRUN_SHARE = 0.25
#: … up to this (issue 9's cadence cap), until the deadline.
MAX_OVERRUN_GAP = 15.0
#: With callbacks: the first safety read this long (at least) after the estimated end …
SAFETY_MARGIN = 20.0
#: … and later ones between these gaps.
SAFETY_MIN_GAP = 20.0
SAFETY_MAX_GAP = 60.0
#: A late job is planned anew when the relay's percent puts its end this far off (or a
#: tenth of the time so far, if more).
LATE_RESET = 10.0
#: A relay's percent is trusted over the prior in proportion, fully from this percent on.
TRUST_PERCENT = 25.0
#: Points of progress a fit looks at (the most recent ones).
FIT_POINTS = 4
#: Past render times a history estimate looks at (the most recent ones).
HISTORY_SIZE = 20


#: Reference images fetched from slow hosts slow a render down by about this much.
IMAGES_EXTRA = 30.0


def prior_seconds(typical: float, *, images: bool = False) -> float:
    """With no history: the model's typical render time from its catalogue entry
    (`ModelEntry.typical_seconds`), plus the time reference images usually add."""
    return typical + (IMAGES_EXTRA if images else 0.0)


def default_seconds(duration: int, *, hd: bool = False, images: bool = False) -> float:
    """With no history and no catalogue entry: the vendor's figures for sora (a 10 s video
    1–3 min, 15 s about 2 min more, 25 s about 5 min more, HD about 8 min more; slow image
    hosts slow it further)."""
    expected = 120.0
    if duration == 15:
        expected += 120.0
    elif duration == 25:
        expected += 300.0
    if hd:
        expected += 480.0
    if images:
        expected += IMAGES_EXTRA
    return expected


def from_history(seconds: Sequence[float]) -> float | None:
    """The typical accepted→finished time of past jobs (their median), or None."""
    usable = [s for s in seconds[:HISTORY_SIZE] if s > 0]
    if not usable:
        return None
    return float(statistics.median(usable))


def fit_finish(points: Sequence[tuple[float, float]], prior: float) -> float:
    """Seconds after acceptance when the job should end, from `(elapsed, percent)` reads.

    The recent moving points (0 < percent < 100) give a rate by least squares (a single
    point: linear from acceptance); the time left at that rate is blended with `prior`,
    trusting the relay more the further it has got. Never earlier than the last point.
    """
    moving = [(t, p) for t, p in points if 0.0 < p < 100.0 and t > 0]
    if not moving:
        return prior
    t_last, p_last = moving[-1]
    rate = _slope(moving[-FIT_POINTS:])
    if rate is None or rate <= 0:
        rate = p_last / t_last
    fitted = t_last + (100.0 - p_last) / rate
    weight = min(1.0, p_last / TRUST_PERCENT)
    return max(t_last, weight * fitted + (1.0 - weight) * prior)


def _slope(points: Sequence[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    mean_t = sum(t for t, _ in points) / len(points)
    mean_p = sum(p for _, p in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread <= 0:
        return None
    return sum((t - mean_t) * (p - mean_p) for t, p in points) / spread


def next_read(elapsed: float, finish: float, *, reads: int, callbacks: bool = False) -> float:
    """Seconds from now until the next status read of a job `elapsed` seconds after its
    acceptance, whose finish is estimated at `finish` seconds; `reads` made so far.

    Without callbacks: a share of the time left (few reads mid-render, dense ones as the
    end nears), then the estimate itself, then growing but bounded gaps while it is late.
    With callbacks the relay says when it is done, so reads are a slow safety net.
    """
    if reads == 0 and elapsed < EARLY_READ:
        return max(EARLY_READ - elapsed, 0.0)
    remaining = finish - elapsed
    if callbacks:
        if remaining > 0:
            gap = remaining + max(SAFETY_MARGIN, 0.25 * finish)
        else:
            gap = min(SAFETY_MAX_GAP, max(SAFETY_MIN_GAP, -remaining * 0.5))
    elif remaining > MIN_GAP:
        gap = min(MAX_GAP, remaining * MID_SHARE)
        if remaining - gap < MIN_GAP:  # close: land on the estimate itself
            gap = remaining
    else:
        overrun = max(0.0, -remaining)
        gap = min(MAX_OVERRUN_GAP, MIN_GAP + overrun * OVERRUN_SHARE)
    return max(MIN_GAP, gap)


class FinishEstimate:
    """One job's estimate: a prior (history or default) refined by the relay's percent.

    Once the estimated end is reached the job is late, and stays late (gaps growing from
    that moment) while the relay's percent stalls near the end — a stall would otherwise
    keep pulling the fit onto "now" and the reads back to the densest pace — until the
    percent says the end is clearly further off again.
    """

    def __init__(self, prior: float) -> None:
        self.prior = prior
        self.points: list[tuple[float, float]] = []
        self.due: float | None = None  # the estimated end that was reached, while late

    def observe(self, elapsed: float, percent: float | None) -> None:
        if percent is None:
            return
        if self.points and elapsed <= self.points[-1][0]:
            return
        self.points.append((elapsed, percent))
        del self.points[: -FIT_POINTS * 2]

    @property
    def finish(self) -> float:
        return fit_finish(self.points, self.prior)

    def next_read(self, elapsed: float, *, reads: int, callbacks: bool = False) -> float:
        """Seconds until the next read (see `next_read`), keeping a late job late."""
        finish = self.finish
        if self.due is not None and finish - elapsed > max(LATE_RESET, 0.1 * elapsed):
            self.due = None  # the relay says it is far from done: plan anew
        if self.due is None and reads and finish - elapsed <= MIN_GAP:
            self.due = finish
        return next_read(
            elapsed, finish if self.due is None else self.due, reads=reads, callbacks=callbacks
        )
