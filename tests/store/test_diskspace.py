"""The free-space figure behind the disk alarm."""

from __future__ import annotations

import shutil

from leveret.store.diskspace import DiskSpace, free_bytes, measure_disk_space


def test_free_bytes_agrees_with_the_operating_system(tmp_path):
    usage = shutil.disk_usage(tmp_path)
    space = measure_disk_space(str(tmp_path))
    assert 0 < space.free <= space.total == usage.total
    assert abs(free_bytes(str(tmp_path)) - usage.free) < 64 * 1024 * 1024


def test_alarm_condition_is_strictly_below_the_limit():
    assert DiskSpace(free=10, total=100).below(11)
    assert not DiskSpace(free=10, total=100).below(10)
