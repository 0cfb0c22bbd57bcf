"""Process tuning of `leveret serve`: the allocator settings and the memory trimmer."""

from __future__ import annotations

import asyncio
import platform

import pytest

from leveret.server import process


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="allocator tuning is glibc-only")
def test_kept_memory_is_counted_and_trimmed_back():
    allocator = process.tune_malloc()
    assert allocator is not None
    before = allocator.free_bytes()
    assert before is not None
    blocks = [bytearray(100_000) for _ in range(400)]  # 40 MB from the heap (under MMAP_THRESHOLD each)
    del blocks
    kept = allocator.free_bytes()
    assert kept - before > 30_000_000  # freed, and kept for reuse instead of given back at once
    allocator.trim()
    assert allocator.free_bytes() < kept - 30_000_000


class _Cpu:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Allocator:
    def __init__(self, cpu: _Cpu) -> None:
        self.cpu = cpu
        self.free = 0
        self.trims: list[float] = []

    def trim(self) -> None:
        self.trims.append(self.cpu.now)
        self.free = 0

    def free_bytes(self) -> int:
        return self.free


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_an_idle_broker_trims_once_per_idle_stretch(loop):
    cpu = _Cpu()
    allocator = _Allocator(cpu)
    trimmer = process.MemoryTrimmer(loop, allocator, interval=10.0, cpu_time=cpu)
    trimmer.start()

    cpu.now += 5.0  # busy: half a core over the interval, little free heap
    trimmer._tick()
    assert allocator.trims == []

    cpu.now += 0.01  # idle
    trimmer._tick()
    assert len(allocator.trims) == 1
    trimmer._tick()  # still idle: nothing new to give back
    trimmer._tick()
    assert len(allocator.trims) == 1

    cpu.now += 3.0  # busy again, then idle: one more trim
    trimmer._tick()
    cpu.now += 0.05
    trimmer._tick()
    assert len(allocator.trims) == 2
    trimmer.stop()
    assert trimmer._handle is None


def test_a_busy_broker_trims_a_lasting_surplus_of_free_heap(loop):
    cpu = _Cpu()
    allocator = _Allocator(cpu)
    trimmer = process.MemoryTrimmer(loop, allocator, interval=10.0, cpu_time=cpu)

    def busy_tick(free: int) -> None:
        allocator.free = free
        cpu.now += 2.0
        trimmer._tick()

    busy_tick(process.SURPLUS_BYTES * 2)  # a burst just ended: one check is not enough
    busy_tick(process.SURPLUS_BYTES // 2)  # reused: the count starts over
    busy_tick(process.SURPLUS_BYTES * 2)
    assert allocator.trims == []
    busy_tick(process.SURPLUS_BYTES * 2)  # second check in a row
    assert len(allocator.trims) == 1
    busy_tick(0)
    busy_tick(0)
    assert len(allocator.trims) == 1
