"""Honesty bookkeeping: which sequence numbers arrived, and what a run proves.

Every generated body starts with a sequence number carrying its publisher id
(see ``wire.BODY_STAMP``).  A ``Ledger`` keeps one bit-per-byte array per
publisher so a consumer can tell duplicates, gaps and strangers apart at the
cost of one index per message.  ``Verdict`` collects the checks of a whole
scenario; a figure from a run whose verdict is not ``ok`` is not a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Ledger:
    """Sequence numbers seen, per publisher."""

    def __init__(self, per_publisher: list[int]) -> None:
        self.expected = list(per_publisher)
        self.seen = [bytearray(n) for n in per_publisher]
        self.duplicates = 0
        self.unknown = 0

    def summary(self) -> dict:
        unique = sum(len(s) - s.count(0) for s in self.seen)
        gaps = sum(s.count(0) for s in self.seen)
        return {"expected": sum(self.expected), "unique": unique, "gaps": gaps,
                "duplicates": self.duplicates, "unknown": self.unknown}


@dataclass
class Verdict:
    """The honesty checks of one scenario run."""

    checks: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def expect(self, name: str, actual, wanted) -> None:
        """Record a check; a mismatch is a problem."""
        self.checks[name] = actual
        if actual != wanted:
            self.problems.append(f"{name}: got {actual}, expected {wanted}")

    def fail(self, problem: str) -> None:
        self.problems.append(problem)

    def note(self, remark: str) -> None:
        """A limit the broker hit that is a result, not dishonesty (e.g. max connections)."""
        self.notes.append(remark)

    def ledger(self, label: str, summary: dict) -> None:
        """Check a consumer's ledger: everything once, nothing else."""
        self.expect(f"{label}.unique", summary["unique"], summary["expected"])
        self.expect(f"{label}.duplicates", summary["duplicates"], 0)
        self.expect(f"{label}.gaps", summary["gaps"], 0)
        self.expect(f"{label}.unknown", summary["unknown"], 0)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": self.checks, "problems": self.problems, "notes": self.notes}
