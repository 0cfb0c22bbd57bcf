"""Dead-letter decisions: the x-death header as RabbitMQ 3.10 writes it, and cycle detection."""

import datetime

from leveret.broker import deadletter

from .conftest import make_message

T0 = 1_700_000_000.0


def death(message, queue="q", reason="rejected", when=T0):
    return deadletter.dead_lettered(message, queue, reason, "dlx", None, when)


def test_first_death_writes_one_entry_and_first_death_headers():
    m = make_message(b"x", "rk", "ex", headers={"h": 1, "CC": ["c1"]}, expiration="60000")
    out = death(m, reason="maxlen")
    headers = out.properties.headers
    (entry,) = headers["x-death"]
    assert list(entry) == ["count", "reason", "queue", "time", "exchange", "routing-keys", "original-expiration"]
    assert entry == {
        "count": 1,
        "reason": "maxlen",
        "queue": "q",
        "time": datetime.datetime.fromtimestamp(int(T0), datetime.timezone.utc),
        "exchange": "ex",
        "routing-keys": ["rk", "c1"],
        "original-expiration": "60000",
    }
    assert headers["x-first-death-queue"] == "q"
    assert headers["x-first-death-reason"] == "maxlen"
    assert headers["x-first-death-exchange"] == "ex"
    assert not any(k.startswith("x-last-death") for k in headers)  # 3.10 writes none
    assert headers["h"] == 1 and headers["CC"] == ["c1"]


def test_dead_lettered_copy_loses_expiration_and_goes_to_the_dlx_with_its_routing_key():
    m = make_message(b"x", "rk", "ex", expiration="5")
    out = death(m)
    assert out.properties.expiration is None
    assert (out.exchange, out.routing_key, out.body) == ("dlx", "rk", b"x")
    assert "original-expiration" not in death(make_message(b"x", "rk")).properties.headers["x-death"][0]


def test_dead_letter_routing_key_replaces_the_key_and_drops_cc():
    m = make_message(b"x", "rk", "ex", headers={"CC": ["c1"]})
    out = deadletter.dead_lettered(m, "q", "rejected", "dlx", "dead", T0)
    assert out.routing_key == "dead" and "CC" not in out.properties.headers
    assert out.properties.headers["x-death"][0]["routing-keys"] == ["rk", "c1"]


def test_repeated_death_moves_entry_to_front_with_count_incremented_and_time_kept():
    m = make_message(b"x", "rk", "")
    once = death(m, "a", when=T0)
    other = death(once, "b", when=T0 + 5)
    again = death(other, "a", when=T0 + 10)
    deaths = again.properties.headers["x-death"]
    assert [(d["queue"], d["count"]) for d in deaths] == [("a", 2), ("b", 1)]
    assert deaths[0]["time"] == datetime.datetime.fromtimestamp(int(T0), datetime.timezone.utc)
    assert list(deaths[0]) == sorted(deaths[0])  # RabbitMQ re-sorts the table it touches
    assert again.properties.headers["x-first-death-queue"] == "a"


def test_same_queue_with_another_reason_is_a_separate_entry():
    m = death(make_message(b"x", "rk"), "a", "rejected")
    m = death(m, "a", "expired")
    assert [(d["queue"], d["reason"], d["count"]) for d in m.properties.headers["x-death"]] == [
        ("a", "expired", 1),
        ("a", "rejected", 1),
    ]


def test_cycle_without_rejection_is_detected_but_a_rejection_breaks_it():
    expired_loop = [{"queue": "b", "reason": "expired"}, {"queue": "a", "reason": "expired"}]
    assert deadletter.is_cycle("a", expired_loop)
    assert not deadletter.is_cycle("c", expired_loop)
    with_reject = [{"queue": "a", "reason": "expired"}, {"queue": "b", "reason": "rejected"}]
    assert not deadletter.is_cycle("b", with_reject)


def test_rejected_reason_never_drops_targets():
    class Q:
        def __init__(self, name):
            self.name = name

    m = death(make_message(b"x", "rk"), "a", "expired")
    qa, qb = Q("a"), Q("b")
    assert deadletter.without_cycles(m, "expired", [qa, qb]) == [qb]
    assert deadletter.without_cycles(m, "rejected", [qa, qb]) == [qa, qb]
