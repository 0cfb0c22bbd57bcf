"""Process tuning of `leveret serve`: the allocator settings and the idle trimmer."""

from __future__ import annotations

import asyncio
import ctypes
import platform

import pytest

from leveret.server import process


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="allocator tuning is glibc-only")
def test_tune_malloc_returns_a_working_trim():
    trim = process.tune_malloc()
    assert trim is not None
    # Memory freed past the kept amount is still usable and trimming it back does not disturb it.
    blocks = [ctypes.create_string_buffer(65536) for _ in range(64)]
    del blocks
    trim()
    assert bytes(ctypes.create_string_buffer(b"still fine", 16).value) == b"still fine"


class _Cpu:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_idle_trimmer_trims_once_per_idle_stretch():
    loop = asyncio.new_event_loop()
    try:
        trims = []
        cpu = _Cpu()
        trimmer = process.IdleTrimmer(loop, lambda: trims.append(cpu.now), interval=10.0, cpu_time=cpu)
        trimmer.start()

        cpu.now += 5.0  # busy: half a core over the interval
        trimmer._tick()
        assert trims == []

        cpu.now += 0.01  # idle
        trimmer._tick()
        assert len(trims) == 1
        trimmer._tick()  # still idle: nothing new to give back
        trimmer._tick()
        assert len(trims) == 1

        cpu.now += 3.0  # busy again, then idle: one more trim
        trimmer._tick()
        cpu.now += 0.05
        trimmer._tick()
        assert len(trims) == 2
        trimmer.stop()
        assert trimmer._handle is None
    finally:
        loop.close()
