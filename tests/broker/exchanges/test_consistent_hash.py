"""Consistent-hash exchange: weights, stability, hash sources and RabbitMQ's errors."""

import subprocess
import sys

import pytest

from leveret.broker.errors import PreconditionFailed
from leveret.amqp.table import Long
from leveret.broker.exchanges.consistent_hash import _ABSENT, ConsistentHashExchange, header_key

from ..conftest import make_message


class Q:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def ring(*bindings, **arguments):
    x = ConsistentHashExchange("h", arguments=arguments)
    for queue, weight in bindings:
        x.bind(queue, str(weight))
    return x


def test_same_key_always_routes_to_the_same_single_queue():
    qs = [Q(f"q{i}") for i in range(4)]
    x = ring(*((q, 1) for q in qs))
    for key in ("a", "b", "order-17"):
        first = list(x.route_message([key], make_message(routing_key=key)))
        assert len(first) == 1
        assert all(list(x.route_message([key], make_message(routing_key=key))) == first for _ in range(5))


def test_distribution_is_proportional_to_weights():
    a, b = Q("a"), Q("b")
    x = ring((a, 1), (b, 3))
    counts = {"a": 0, "b": 0}
    for i in range(4000):
        (dest,) = x.route(f"k{i}", None)
        counts[dest.name] += 1
    assert 0.20 < counts["a"] / 4000 < 0.30


def test_mapping_is_independent_of_bind_order_and_of_the_process():
    qs = [Q(f"q{i}") for i in range(3)]
    forward = ring(*((q, 2) for q in qs))
    backward = ring(*((q, 2) for q in reversed(qs)))
    keys = [f"k{i}" for i in range(200)]
    mapping = [next(iter(forward.route(k, None))).name for k in keys]
    assert mapping == [next(iter(backward.route(k, None))).name for k in keys]
    # a fresh interpreter (different hash() salt) computes the same mapping
    code = (
        "from leveret.broker.exchanges.consistent_hash import ConsistentHashExchange as X\n"
        "class Q:\n  def __init__(s, n): s.name = n\n"
        "x = X('h')\n"
        "[x.bind(Q(f'q{i}'), '2') for i in range(3)]\n"
        "print(','.join(next(iter(x.route(f'k{i}', None))).name for i in range(200)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().split(",") == mapping


def test_removing_a_binding_only_moves_the_keys_it_owned():
    qs = [Q(f"q{i}") for i in range(4)]
    x = ring(*((q, 1) for q in qs))
    keys = [f"k{i}" for i in range(400)]
    before = {k: next(iter(x.route(k, None))) for k in keys}
    x.unbind(qs[0], "1")
    after = {k: next(iter(x.route(k, None))) for k in keys}
    assert all(after[k] is before[k] for k in keys if before[k] is not qs[0])


def test_hash_header_and_hash_property_choose_what_is_hashed():
    qs = [Q(f"q{i}") for i in range(8)]
    by_header = ring(*((q, 1) for q in qs), **{"hash-header": "user"})
    by_prop = ring(*((q, 1) for q in qs), **{"hash-property": "message_id"})

    class Props:
        headers = {"user": "alice"}
        message_id = "m-1"

    class M:
        properties = Props()

    fixed_header = list(by_header.route_message(["any"], M()))
    assert all(list(by_header.route_message([f"rk{i}"], M())) == fixed_header for i in range(20))
    fixed_prop = list(by_prop.route_message(["any"], M()))
    assert all(list(by_prop.route_message([f"rk{i}"], M())) == fixed_prop for i in range(20))


def test_no_bindings_routes_nowhere():
    assert list(ring().route("k", None)) == []


@pytest.mark.parametrize(
    "key, text",
    [("abc", 'The binding key must be an integer: <<"abc">>'), ("0", "The binding key must be greater than 0"),
     ("-1", "The binding key must be greater than 0"), (" 5", 'The binding key must be an integer: <<" 5">>'),
     ("5_0", 'The binding key must be an integer: <<"5_0">>'), ("", "The binding key must be an integer: <<>>"),
     ("\u0665", "The binding key must be an integer: <<217,165>>")],
)
def test_binding_key_must_be_a_positive_integer(key, text):
    """rabbitmq-consistent-hash-exchange d24884b, src/rabbit_exchange_type_consistent_hash.erl validate_binding:
    list_to_integer (a sign and ASCII digits only; Python's int() also takes spaces, underscores and other
    scripts' digits), the key printed with ~p."""
    with pytest.raises(PreconditionFailed) as e:
        ring().bind(Q("q"), key)
    assert e.value.text == text


def test_a_signed_weight_is_a_weight():
    x, q = ring(), Q("q")
    x.bind(q, "+3")
    assert list(x.route("k", None)) == [q]


def test_a_hash_header_is_hashed_with_its_type():
    """src/rabbit_exchange_type_consistent_hash.erl value_to_hash: the plugin hashes what
    rabbit_misc:table_lookup returns, the {Type, Value} pair, so I 5 and l 5 (or a longstr and a byte array
    with the same bytes) are different keys, and an absent header (undefined) is another one."""
    keys = {header_key(5), header_key(Long(5)), header_key("a"), header_key(b"a"), header_key(""),
            header_key(_ABSENT)}
    assert len(keys) == 6
    assert header_key(Long(5)) == header_key(Long(5))


def test_declare_errors_match_rabbitmq(vhost):
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_exchange("h", "x-consistent-hash", arguments={"hash-header": "a", "hash-property": "message_id"})
    assert e.value.text == "hash-header and hash-property are mutually exclusive"
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_exchange("h", "x-consistent-hash", arguments={"hash-property": "foo"})
    assert e.value.text == "Unsupported property: foo"
    assert "h" not in vhost.exchanges


def test_publish_through_the_vhost_lands_in_exactly_one_queue(vhost, session):
    vhost.declare_exchange("h", "x-consistent-hash")
    for i in range(4):
        vhost.declare_queue(f"q{i}")
        vhost.bind_queue(f"q{i}", "h", "10")
    for i in range(100):
        result = session.publish(f"key{i % 10}", str(i), exchange="h")
        assert len(result.queues) == 1
    assert sum(vhost.queues[f"q{i}"].message_count for i in range(4)) == 100


def test_a_message_with_cc_keys_still_lands_in_exactly_one_queue(vhost, session):
    """src/rabbit_exchange_type_consistent_hash.erl value_to_hash(undefined, ...): the plugin hashes the
    message's list of routing keys, CC and BCC ones included, and picks one queue for it."""
    vhost.declare_exchange("h", "x-consistent-hash")
    for i in range(8):
        vhost.declare_queue(f"q{i}")
        vhost.bind_queue(f"q{i}", "h", "1")
    for i in range(20):
        result = session.publish(f"key{i}", str(i), exchange="h", headers={"CC": [f"cc{i}", f"cc{i}.b"], "BCC": ["x"]})
        assert len(result.queues) == 1
