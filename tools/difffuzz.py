"""The differential fuzzer's long profile: every machine against RabbitMQ for a given time.

    python -m tools.difffuzz --minutes 60 [--out difffuzz-found] [--seed N] [--machine HeadersTyping]

Starts an embedded leveret, then runs the machines of tests/difffuzz/machines.py in turn against it and the
local RabbitMQ (127.0.0.1:5672, management API on 15672), each run with a new seed. It prints how many
sequences ran, and writes every difference it finds (shrunk by hypothesis) to OUT as a ready-to-paste
pytest test; a difference already written (same operation and same two answers) is counted, not written
again. When hypothesis cannot replay a failing run (its machines draw operations from the brokers' answers,
so a replay may draw another sequence), the run's first difference is replayed as recorded, and written if it
happens again. Exit status 1 when any difference was found. Meant to run in the background: use `nice -n 10`.

It leaves no vhost behind on either broker: each sequence deletes its own, SIGINT and SIGTERM stop the run
through the same clean-up (then print the count so far and exit 130), and vhosts an earlier run killed
outright left on RabbitMQ (its pid in the name no longer running) are deleted at the start.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "tests", "difffuzz"), os.path.join(ROOT, "tests", "diff")]

from hypothesis import HealthCheck, seed, settings  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

import lockstep  # noqa: E402
import catalog  # noqa: E402
from leveret.embedded import EmbeddedBroker  # noqa: E402

TEST_TEMPLATE = '''

def test_{name}(brokers):
    """Found by tools/difffuzz.py ({machine}, seed {seed}): {summary}"""
    replay(brokers, {sequence})
'''


class InternalErrors(logging.Handler):
    """Counts the broker's internal errors and tracebacks: each is a bug even when both brokers agree."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "internal_error", False) or (record.exc_info and record.name.startswith("leveret")):
            self.found.append(logging.Formatter().format(record))


class Counting:
    """Wraps a machine class so that each sequence it starts is counted: as a new sequence until the run has seen
    a difference, as a replay after (hypothesis then re-runs shortened versions of the failing sequence to shrink
    it, which generate nothing new)."""

    def __init__(self) -> None:
        self.sequences = 0
        self.replays = 0

    def wrap(self, machine: type) -> type:
        counter = self

        class Counted(machine):  # type: ignore[misc, valid-type]
            def __init__(self) -> None:
                if lockstep.DIFFERENCES_SEEN:
                    counter.replays += 1
                else:
                    counter.sequences += 1
                super().__init__()

        Counted.__name__ = machine.__name__
        return Counted


def flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in flatten(inner)]
    return [exc]


def signature(difference: lockstep.Difference) -> str:
    """The operation and RabbitMQ's answer, with the sequence's own vhost name taken out (each sequence has
    its own, so the same difference found twice would otherwise count as two)."""
    answer = re.sub(re.escape(lockstep.VHOST_PREFIX) + r"[0-9]+-[0-9a-f]+", "VHOST", str(difference).split("\n", 3)[1])
    return repr(difference.sequence[-1][0]) + "|" + answer[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", default="difffuzz-found")
    parser.add_argument("--seed", type=int, default=None, help="first seed (then +1 per run); default random")
    parser.add_argument("--machine", action="append", help="run only this machine (repeatable)")
    parser.add_argument("--examples", type=int, default=50, help="sequences per run")
    parser.add_argument("--steps", type=int, default=25, help="operations per sequence (at most)")
    args = parser.parse_args(argv)

    chosen = [m for m in catalog.MACHINES if not args.machine or m.__name__ in args.machine]
    errors = InternalErrors()
    logging.getLogger().addHandler(errors)
    os.makedirs(args.out, exist_ok=True)
    found: dict[str, int] = {}
    counter = Counting()
    next_seed = args.seed if args.seed is not None else random.randrange(2**32)
    profile = settings(max_examples=args.examples, stateful_step_count=args.steps, deadline=None, database=None,
                       suppress_health_check=list(HealthCheck))
    deadline = time.monotonic() + args.minutes * 60
    interrupted = False
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background, where SIGINT is ignored
    orphans = lockstep.delete_orphaned_vhosts(lockstep.rabbitmq())
    if orphans:
        print(f"deleted {len(orphans)} vhost(s) earlier runs left on RabbitMQ: {', '.join(orphans)}", flush=True)
    try:
        with EmbeddedBroker() as embedded:
            brokers = (lockstep.rabbitmq(), lockstep.leveret(embedded))
            fuzz(chosen, brokers, profile, deadline, next_seed, counter, found, errors, args.out)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted", flush=True)
    finally:
        left = lockstep.delete_live_vhosts()
        if left:
            print(f"deleted {len(left)} vhost(s) the interrupted sequence left: {', '.join(left)}", flush=True)
    for text in errors.found[:5]:
        print(text[-2000:])
    for crash, count in sorted(lockstep.REFERENCE_CRASHES.items()):
        print(f"RabbitMQ internal error (sequence stopped there) x{count}: {crash}")
    print(f"sequences run: {counter.sequences} (and {counter.replays} shrinking replays); distinct differences: {len(found)}; "
          f"internal errors: {len(errors.found)}" + (" (interrupted)" if interrupted else ""))
    if interrupted:
        return 130
    return 1 if found or errors.found else 0


def _interrupt(signum, frame) -> None:
    """SIGTERM ends the run as Ctrl-C does: every finally (the sequence's teardown, the vhost sweep) runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def fuzz(chosen, brokers, profile, deadline, next_seed, counter, found, errors, out) -> int:
    """Run the machines in turn, each run with the next seed, until the deadline; the number of runs."""
    runs = 0
    while time.monotonic() < deadline:
        machine = chosen[runs % len(chosen)]
        runs += 1
        run_seed, next_seed = next_seed, next_seed + 1
        machine.brokers = brokers
        lockstep.DIFFERENCES_SEEN.clear()
        try:
            run_state_machine_as_test(seed(run_seed)(counter.wrap(machine)), settings=profile)
        except Exception as exc:  # a Difference, several in a group, or hypothesis' Flaky...: the run goes on
            for failure in flatten(exc):
                if not isinstance(failure, lockstep.Difference):
                    print(f"run failed with {type(failure).__name__}: {failure}"[:600], flush=True)
                    failure = replayed(brokers, failure)
                if isinstance(failure, lockstep.Difference):
                    key = signature(failure)
                else:
                    key = f"{type(failure).__name__}: {failure}"[:300]
                found[key] = found.get(key, 0) + 1
                if found[key] == 1 and isinstance(failure, lockstep.Difference):
                    write_counterexample(out, machine.__name__, run_seed, len(found), failure)
        print(f"{time.strftime('%H:%M:%S')} run {runs} {machine.__name__} seed {run_seed}: "
              f"{counter.sequences} sequences (+{counter.replays} replays), {len(found)} distinct differences, "
              f"{len(errors.found)} internal errors", flush=True)
    return runs


def replayed(brokers, failure: BaseException, attempts: int = 3) -> BaseException:
    """A run hypothesis could not shrink (its machines draw operations from what the brokers answered, so a
    replay may draw another sequence: Flaky...): the run's first difference, replayed as recorded, when it
    happens again; else the failure, with that difference printed as not reproduced (timing)."""
    for seen in lockstep.DIFFERENCES_SEEN[:1]:
        for _ in range(attempts):
            try:
                lockstep.replay(brokers, list(seen.sequence))
            except lockstep.Difference as again:
                print("its first difference happens again when replayed as recorded", flush=True)
                return again
        print(f"its first difference, not reproduced in {attempts} replays as recorded:\n{seen}", flush=True)
    return failure


def write_counterexample(out: str, machine: str, run_seed: int, number: int, difference: lockstep.Difference) -> None:
    path = os.path.join(out, f"test_found_{number:03d}.py")
    summary = str(difference).split("\n", 1)[0]
    sequence = "[\n" + "".join(f"        {op!r},\n" for op in difference.sequence) + "    ]"
    with open(path, "w") as file:
        file.write('"""Counterexample written by tools/difffuzz.py; move it to tests/difffuzz/."""\n\n'
                   "from lockstep import replay\n")
        file.write(TEST_TEMPLATE.format(name=f"{machine.lower()}_{number:03d}", machine=machine, seed=run_seed,
                                        summary=summary, sequence=sequence))
        file.write("\n# " + str(difference).replace("\n", "\n# ") + "\n")
    print(f"difference written to {path}:\n{difference}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
