"""What the clients saw: every id published, confirmed, nacked, delivered and settled, per path and queue.

The verdict compares it with what a final drain finds:
- lost: confirmed, never acked or dropped by a consumer, and not found by the drain (a stream with a size
  limit may have truncated its oldest ids: those count as `retention`);
- phantom: delivered but never published (or to a queue its path does not route to);
- nacked_kept: nacked (and never confirmed) yet delivered after a restart: the broker said it did not take
  it, but kept it (its publisher, retrying, makes a duplicate); counted with the phantoms' failures;
- nacked_live: nacked yet delivered in the incarnation it was published in: a consumer got it before the
  write failed (deliveries do not wait for the fsync, as in RabbitMQ): informational;
- duplicates: delivered again after a consumer had acked it (at-least-once allows it when flagged redelivered);
- unflagged: delivered again (after a requeue or a crash) without the redelivered flag, which RabbitMQ always sets;
  a dead-lettered or delayed message is re-published inside the broker, so a second copy of it (after a crash,
  or after a failed commit rolled its first move back) carries no flag by design (counted as `by_design`, not
  as a fault); a stream never flags (its readers are not settling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACK, REQUEUE, DROP, DRAIN = 0, 1, 2, 3


@dataclass
class QueueRecord:
    """One queue a path delivers into (or the logical destination of a path, e.g. DLX source + DLQ)."""

    path: str
    deliveries: list[tuple[int, bool, int, int]] = field(default_factory=list)  # id, redelivered, action, epoch
    present: set[int] = field(default_factory=set)  # what the final drain found
    retention: bool = False  # a stream with a size limit: the oldest ids may be gone by design


class Ledger:
    def __init__(self) -> None:
        self.next_id = 1
        self.path_of: dict[int, str] = {}
        self.published_in: dict[int, int] = {}  # id -> epoch it was published in
        self.confirmed: set[int] = set()
        self.nacked: set[int] = set()
        self.queues: dict[str, QueueRecord] = {}
        self.dests_of_path: dict[str, list[str]] = {}
        self.epoch = 0  # the broker incarnation deliveries are made in (advanced at every start)
        # Set where commits fail (the disk phase): a dead-lettering or delayed release whose commit failed is
        # done again a second later, inside the same incarnation, so its second copy is unflagged by design
        # there too (as after a crash).
        self.failed_commits_expected = False

    def add_path(self, path: str, dests: list[str]) -> None:
        self.dests_of_path[path] = dests
        for dest in dests:
            self.queues.setdefault(dest, QueueRecord(path))

    def next_epoch(self) -> None:
        self.epoch += 1

    def new_id(self, path: str) -> int:
        ident = self.next_id
        self.next_id += 1
        self.path_of[ident] = path
        self.published_in[ident] = self.epoch
        return ident

    def confirm(self, ident: int) -> None:
        self.confirmed.add(ident)

    def nack(self, ident: int) -> None:
        self.nacked.add(ident)

    def delivered(self, dest: str, ident: int, redelivered: bool, action: int) -> None:
        self.queues[dest].deliveries.append((ident, redelivered, action, self.epoch))

    def verdict(self) -> dict:
        """Counts per destination and in total, with a few example ids for each problem."""
        totals = {"confirmed": len(self.confirmed), "published": self.next_id - 1, "nacked": len(self.nacked),
                  "lost": 0, "phantom": 0, "nacked_kept": 0, "nacked_live": 0, "duplicates_flagged": 0,
                  "duplicates_unflagged": 0, "unflagged": 0, "by_design": 0, "deliveries": 0, "retention": 0}
        per_dest: dict[str, dict] = {}
        examples: dict[str, list] = {}
        stream_dests = {d for d, q in self.queues.items() if q.path == "stream"}
        for dest, rec in self.queues.items():
            by_design_path = rec.path in ("dlx", "delayed")
            seen: dict[int, int] = {}  # id -> epoch of its latest delivery
            gone: set[int] = set()
            d = {"lost": 0, "phantom": 0, "nacked_kept": 0, "nacked_live": 0, "duplicates_flagged": 0,
                 "duplicates_unflagged": 0, "unflagged": 0, "by_design": 0, "deliveries": len(rec.deliveries)}
            for ident, redelivered, action, epoch in rec.deliveries:
                if self.path_of.get(ident) != rec.path:
                    d["phantom"] += 1
                    examples.setdefault(f"phantom:{dest}", []).append(ident)
                    continue
                if ident in self.nacked and ident not in self.confirmed and ident not in seen:
                    key = "nacked_live" if self.published_in[ident] == epoch else "nacked_kept"
                    d[key] += 1
                    examples.setdefault(f"{key}:{dest}", []).append(ident)
                if ident in seen:
                    if dest in stream_dests:
                        d["duplicates_unflagged"] += 1
                        examples.setdefault(f"duplicate:{dest}", []).append(ident)
                    elif ident in gone:
                        key = "duplicates_flagged" if redelivered else "duplicates_unflagged"
                        if not redelivered and by_design_path:
                            key = "by_design"
                        d[key] += 1
                        if key == "duplicates_unflagged":
                            examples.setdefault(f"duplicate_unflagged:{dest}", []).append(ident)
                    elif not redelivered:
                        # A requeued message must come back flagged on every path; but when a restart came
                        # between its publish and now, a dead-lettered or delayed message can have been
                        # re-published inside the broker (its move not yet durable): a second, unflagged copy.
                        moved_again = self.failed_commits_expected or self.published_in.get(ident, epoch) != epoch
                        key = "by_design" if by_design_path and moved_again else "unflagged"
                        d[key] += 1
                        if key == "unflagged":
                            examples.setdefault(f"unflagged:{dest}", []).append(ident)
                seen[ident] = epoch
                if action in (ACK, DROP):
                    gone.add(ident)
            mine = {i for i in self.confirmed if self.path_of[i] == rec.path}
            lost = mine - gone - rec.present
            if rec.retention:
                # Ids are issued in publish order: what is older than the oldest id kept was truncated.
                oldest = min(rec.present, default=self.next_id)
                retained = {i for i in lost if i < oldest}
                lost -= retained
                d["retention"] = len(retained)
            d["lost"] = len(lost)
            if lost:
                examples[f"lost:{dest}"] = sorted(lost)
            per_dest[dest] = d
            for key, value in d.items():
                totals[key] += value
        for key in list(examples):
            examples[key] = examples[key][:10]
        return {"totals": totals, "queues": per_dest, "examples": examples,
                "histories": self.histories({i for key, ids in examples.items()
                                             if not key.startswith("nacked_live") for i in ids[:3]})}

    def histories(self, ids: set[int]) -> dict[int, dict]:
        """What happened to a few ids: path, publish epoch, confirm state and every delivery (for a repro)."""
        out: dict[int, dict] = {}
        for ident in sorted(ids)[:40]:
            if ident not in self.path_of:
                continue
            state = "confirmed" if ident in self.confirmed else "nacked" if ident in self.nacked else "in doubt"
            out[ident] = {"path": self.path_of[ident], "published_in_epoch": self.published_in[ident],
                          "state": state, "deliveries": []}
        for dest, rec in self.queues.items():
            for ident, redelivered, action, epoch in rec.deliveries:
                if ident in out:
                    out[ident]["deliveries"].append(
                        {"queue": dest, "epoch": epoch, "redelivered": redelivered,
                         "action": ("ack", "requeue", "drop", "drain")[action]})
        return out
