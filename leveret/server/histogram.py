"""A cumulative histogram of observed values, in Prometheus's shape: counts per upper bound, a sum and a
count. Observing is a short scan of a few bounds: for things that happen per group commit, not per message.
"""

from __future__ import annotations


class Histogram:
    """Counts of values at most each of `bounds` (ascending), plus those above the last (+Inf)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, values at most it) for each bound and +Inf, as the exposition format writes them."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            running += n
            out.append((bound, running))
        return out
