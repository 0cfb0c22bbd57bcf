"""bench/handover.py moves real connections between processes, and the client notices if one is lost."""

import pytest

from bench.handover import run_mode


@pytest.mark.parametrize("mode", ["direct", "handover"])
def test_every_connection_is_answered_in_both_modes(mode):
    # The client raises if a connection closes before its reply: in handover mode the second request
    # can only be answered by the owner process reading the passed socket.
    out = run_mode(mode, 30, state_bytes=64, loop_kind="asyncio")
    assert out["connections"] == 30
    assert out["client_us"] > 0 and out["acceptor_cpu_us"] > 0
    if mode == "handover":
        assert out["owner_cpu_us"] > 0 and out["owner_handover_code_us"] > 0
