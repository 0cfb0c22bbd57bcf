"""The differential fuzzer's CI profile: every machine for a bounded number of sequences.

The seed is the day of the year, so a run is reproducible for a day (rerun the same test on the same day,
or pass the seed to `python -m tools.difffuzz --seed N`) and the suite explores new sequences each day.
Failures print the shrunk sequence as a `replay(...)` call, ready to paste into a regression test.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import run_state_machine_as_test

import catalog

SEED = datetime.date.today().timetuple().tm_yday
# Nine machines at six sequences each take about what four took at twelve (about 20 s on a quiet machine).
CI = settings(max_examples=6, stateful_step_count=12, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("machine", catalog.MACHINES, ids=lambda m: m.__name__)
def test_machine_agrees_with_rabbitmq(machine, brokers):
    machine.brokers = brokers
    run_state_machine_as_test(seed(SEED)(machine), settings=CI)
