"""bench/profile_breakdown.py charges each py-spy sample to the innermost leveret frame's stage."""

from bench.profile_breakdown import EVENT_LOOP, charge


def test_a_sample_goes_to_its_innermost_leveret_frame_and_outside_code_to_its_caller():
    raw = "\n".join([
        "run (/x/leveret/server/app.py:10);data_received (/x/leveret/server/protocol.py:5);"
        "_scan (/x/leveret/amqp/parser.py:7) 3",
        "run (/x/leveret/server/app.py:10);publish (/x/leveret/broker/routing.py:9);"
        "append (<frozen list>:0) 2",
        "select (/usr/lib/python3.11/selectors.py:1) 4",
        "run (/x/leveret/server/app.py:10) 5",
        "garbage line",
    ])
    stages, functions = charge(raw)
    assert stages == {"parse": 3, "route": 2, EVENT_LOOP: 9}
    assert functions["publish (broker/routing.py)"] == 2
    assert functions["_scan (amqp/parser.py)"] == 3
