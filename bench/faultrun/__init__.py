"""The long fault run: kill -9 rounds, disk-full cycles and a memory flood against a leveret subprocess, with a
ledger of every confirmed message (issue 17). Entry point: `python3 -m bench.faultrun --help`."""
