"""python3 -m bench.faultrun [--kill-rounds N --kill-seconds S] [--disk-cycles N] [--flood [--flood-seconds T]]

Runs leveret as a subprocess under confirming load over several paths, kills it, fills its disk, floods its
memory, and checks a ledger of every confirmed message. Exit status 1 if anything confirmed was lost, a
phantom appeared, a redelivery went unflagged, the store stayed stuck after a full disk, or the broker died.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from .paths import ALL_PATHS
from .phases import LoadOptions, disk_cycles, flood, kill_rounds
from .report import failures, summary_table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python3 -m bench.faultrun", description=__doc__.split("\n\n")[1])
    ap.add_argument("--kill-rounds", type=int, default=0, help="rounds of load ended by kill -9")
    ap.add_argument("--kill-seconds", type=float, default=1.5, help="load seconds per kill round")
    ap.add_argument("--stop-every", type=int, default=0, metavar="K",
                    help="every K-th kill round ends with SIGTERM, then SIGKILL within 0-300 ms (default off)")
    ap.add_argument("--disk-cycles", type=int, default=0, help="fill/free cycles of a small tmpfs (root only)")
    ap.add_argument("--disk-mib", type=int, default=96, help="size of that tmpfs")
    ap.add_argument("--flood", action="store_true", help="memory flood with never-reading clients")
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--flood-clients", default="", help="comma list of sink, sink2 (16 KiB transient publishers, "
                    "never reading), feed and consumer (a never-reading consumer and its publisher), unroutable "
                    "(mandatory returns owed), confirming (confirms owed), reader (a publisher that reads); "
                    "default all")
    ap.add_argument("--paths", default=",".join(ALL_PATHS), help=f"comma list of {', '.join(ALL_PATHS)}")
    ap.add_argument("--publishers", type=int, default=1, help="confirming publishers per path")
    ap.add_argument("--window", type=int, default=200, help="unconfirmed publishes per publisher")
    ap.add_argument("--body-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="broker setting (LEVERET_KEY=VALUE), repeatable")
    ap.add_argument("--json", metavar="FILE", help="write all figures as JSON")
    ap.add_argument("--logs", metavar="DIR", help="keep every broker incarnation's log here")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    if not (args.kill_rounds or args.disk_cycles or args.flood):
        ap.error("nothing to do: give --kill-rounds, --disk-cycles and/or --flood")
    return args


def settings_from(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set wants KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


async def run(args: argparse.Namespace) -> dict:
    opts = LoadOptions(paths=[p.strip() for p in args.paths.split(",") if p.strip()], body_size=args.body_size,
                       window=args.window, publishers_per_path=args.publishers, seed=args.seed,
                       settings=settings_from(args.set), logs_dir=args.logs)
    last = [0.0]

    def progress(line: str) -> None:
        now = time.monotonic()
        if not args.quiet and now - last[0] > 2.0:
            last[0] = now
            print(line, file=sys.stderr, flush=True)

    phases = []
    t0 = time.monotonic()
    if args.kill_rounds:
        phases.append(await kill_rounds(opts, args.kill_rounds, args.kill_seconds, progress, args.stop_every))
    if args.disk_cycles:
        phases.append(await disk_cycles(opts, args.disk_cycles, args.disk_mib, progress))
    if args.flood:
        clients = [c.strip() for c in args.flood_clients.split(",") if c.strip()] or None
        phases.append(await flood(opts, args.flood_seconds, progress, clients))
    return {"argv": sys.argv[1:], "paths": opts.paths, "settings": opts.settings,
            "wall_seconds": round(time.monotonic() - t0, 1), "phases": phases}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    result["failures"] = failures(result)
    print(summary_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2, default=str)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
