"""Logs proportional to events: one line per client error, no tracebacks, a rate limit on floods.

The rate limiter is driven by a ManualClock; the one-line-per-connection rule is checked on a real
broker with raw sockets that misbehave.
"""

from __future__ import annotations

import logging
import struct

import pytest

from leveret.clock import ManualClock
from leveret.server.errorlog import BURST, ErrorLog, peer_name
from test_bad_input import METHOD, RawAMQP, frame, queue_declare

log_name = "leveret.connection"


def lines(caplog, name: str = log_name) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_lines_beyond_the_burst_are_suppressed_and_counted_in_the_next_line(caplog):
    caplog.set_level(logging.INFO, logger="leveret")
    clock = ManualClock()
    errors = ErrorLog(clock.monotonic, burst=3, rate=1.0)
    for n in range(10):
        errors.warning("bad client %d", n)
    assert [r.getMessage() for r in lines(caplog)] == ["bad client 0", "bad client 1", "bad client 2"]
    assert errors.suppressed == 7
    clock.advance(1.0)
    errors.warning("bad client %d", 10)
    assert lines(caplog)[-1].getMessage() == "bad client 10 (7 similar lines suppressed before this one)"
    assert errors.suppressed == 0


@pytest.mark.internal_error  # without the marker, tests/conftest.py's guard fails this test (tried)
def test_an_internal_error_is_one_line_naming_where_it_happened(caplog):
    errors = ErrorLog(ManualClock().monotonic)
    try:
        {}["missing"]
    except KeyError as exc:
        errors.internal_error(("10.0.0.1", 5555), "app", exc)
    (record,) = lines(caplog, "leveret.internal")
    text = record.getMessage()
    assert record.levelno == logging.ERROR and record.exc_info is None and "\n" not in text
    assert text.startswith("internal error on connection 10.0.0.1:5555 (app), closing it with 541: KeyError")
    assert "test_errorlog.py:" in text
    assert record.internal_error is True


def test_peer_names_are_host_and_port():
    assert peer_name(("127.0.0.1", 4000)) == "127.0.0.1:4000"
    assert peer_name(("::1", 4000, 0, 0)) == "::1:4000"
    assert peer_name(None) == "(local)"


def test_a_protocol_error_is_one_warning_line_with_peer_code_and_text(amqp_url, caplog):
    caplog.set_level(logging.INFO, logger="leveret")
    raw = RawAMQP(amqp_url)
    try:
        raw.handshake()
        port = raw.sock.getsockname()[1]
        raw.send(frame(METHOD, 0, b"\x00\x0a\x00\x33", end=b"\x00"))  # bad frame-end octet
        assert raw.outcome(stop_at_close=True).closes[0][1] == 501
    finally:
        raw.close()
    mine = [r for r in lines(caplog) if f":{port}" in r.getMessage()]
    assert len(mine) == 1, [r.getMessage() for r in mine]
    text = mine[0].getMessage()
    assert mine[0].levelno == logging.WARNING and mine[0].exc_info is None
    assert f"127.0.0.1:{port}" in text and "501 FRAME_ERROR - type 1" in text and "invalid_frame_end_marker" in text


def test_a_flood_of_bad_connections_logs_at_most_the_burst(amqp_url, caplog):
    caplog.set_level(logging.INFO, logger="leveret")
    bad_table = struct.pack(">I", 4) + b"\x01aZ\x00"  # an unknown type tag: 501
    for _ in range(BURST + 30):
        raw = RawAMQP(amqp_url)
        try:
            raw.handshake()
            raw.send(queue_declare(0, arguments=bad_table))
            assert raw.outcome(stop_at_close=True).closes[0][1] == 501
        finally:
            raw.close()
    records = lines(caplog)
    assert BURST <= len(records) <= BURST + 5  # a few tokens come back while the flood runs
    assert not [r for r in caplog.records if r.exc_info]
