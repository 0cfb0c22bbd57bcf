"""The fault run works end to end at a tiny size: kill -9 rounds and a disk-full cycle against a real broker
subprocess, every path, and a ledger that finds nothing confirmed lost. (The long run is `python3 -m
bench.faultrun`; its figures are in docs/durability.md.)"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from bench.faultrun.__main__ import parse_args, run
from bench.faultrun.ledger import ACK, DRAIN, REQUEUE, Ledger
from bench.faultrun.report import failures, summary_table


def _run(argv: list[str]) -> dict:
    result = asyncio.run(run(parse_args(["--quiet", *argv])))
    result["failures"] = failures(result)
    print(summary_table(result))
    return result


def test_kill_rounds_lose_nothing_on_every_path() -> None:
    result = _run(["--kill-rounds", "2", "--kill-seconds", "1.0"])
    (phase,) = result["phases"]
    assert phase["rounds"] == 2 and phase["restarts"] == 3
    totals = phase["totals"]
    assert totals["confirmed"] > 1000, "the load hardly got going"
    for dest, figures in phase["queues"].items():
        assert figures["deliveries"] > 0, f"nothing ever reached {dest}"
    assert result["failures"] == [], result["failures"]
    assert totals["lost"] == 0


def _can_mount_tmpfs() -> bool:
    probe = subprocess.run(["sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=1m t $d && umount $d; "
                            "r=$?; rmdir $d; exit $r"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="mounting a tmpfs needs root")
def test_a_disk_full_cycle_loses_nothing_and_the_store_writes_again() -> None:
    result = _run(["--disk-cycles", "1", "--disk-mib", "48", "--paths", "plain,fanout,tx"])
    (phase,) = result["phases"]
    assert phase["enospc_reached"] == 1
    assert phase["stuck_after_free"] == 0
    assert phase["totals"]["confirmed"] > 100
    assert result["failures"] == [], result["failures"]


def test_the_ledger_tells_lost_phantom_duplicate_and_unflagged_apart() -> None:
    ledger = Ledger()
    ledger.add_path("plain", ["q"])
    ledger.add_path("dlx", ["dlq"])
    ids = [ledger.new_id("plain") for _ in range(6)]
    dl = ledger.new_id("dlx")
    for i in ids + [dl]:
        ledger.confirm(i)
    ledger.next_epoch()
    ledger.delivered("q", ids[0], False, ACK)  # acked: legitimately gone
    ledger.delivered("q", ids[1], False, REQUEUE)
    ledger.delivered("q", ids[1], False, ACK)  # requeued, then back without the flag: a fault
    ledger.delivered("dlq", dl, False, ACK)
    ledger.next_epoch()
    ledger.delivered("q", ids[0], True, DRAIN)  # after its ack, flagged: at-least-once
    ledger.delivered("q", 999, False, DRAIN)  # never published
    ledger.delivered("dlq", dl, False, DRAIN)  # dead-lettered again after a restart: by design
    ledger.queues["q"].present.update({ids[0], ids[2], ids[3], ids[4]})
    ledger.queues["dlq"].present.add(dl)
    totals = ledger.verdict()["totals"]
    assert totals["lost"] == 1  # ids[5]
    assert totals["phantom"] == 1
    assert totals["duplicates_flagged"] == 1
    assert totals["unflagged"] == 1
    assert totals["by_design"] == 1
