"""VHost: declarations, bindings, deletion and publish routing, with RabbitMQ 3.10's error texts."""

import re

import pytest

from leveret.broker.errors import AccessRefused, CommandInvalid, NotFound, PreconditionFailed, ResourceLocked

from leveret.broker.message import Message

from .conftest import make_message

LOCKED = (
    "cannot obtain exclusive access to locked queue '{}' in vhost '/'. It could be originally declared on another "
    "connection or the exclusive property value does not match that of the original declaration."
)


def ready_bodies(vhost, name):
    return [e.message.body for e in vhost.queues[name].ready]


# -- exchanges ---------------------------------------------------------------------------------

def test_predeclared_exchanges_exist_and_are_durable(vhost):
    for name, type_name in [("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
                            ("amq.headers", "headers"), ("amq.match", "headers"), ("", "direct")]:
        assert vhost.exchanges[name].type_name == type_name
        assert vhost.exchanges[name].durable


def test_redeclaring_exchange_with_other_flags_fails_with_inequivalent_arg(vhost):
    vhost.declare_exchange("x", "direct")
    cases = [
        (dict(type="fanout"), "inequivalent arg 'type' for exchange 'x' in vhost '/': received 'fanout' but current is 'direct'"),
        (dict(durable=True), "inequivalent arg 'durable' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        (dict(auto_delete=True), "inequivalent arg 'auto_delete' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        (dict(internal=True), "inequivalent arg 'internal' for exchange 'x' in vhost '/': received 'true' but current is 'false'"),
        (dict(arguments={"alternate-exchange": "foo"}),
         "inequivalent arg 'alternate-exchange' for exchange 'x' in vhost '/': received the value 'foo' of type 'longstr' but current is none"),
    ]
    for kwargs, text in cases:
        type_name = kwargs.pop("type", "direct")
        with pytest.raises(PreconditionFailed) as e:
            vhost.declare_exchange("x", type_name, **kwargs)
        assert e.value.text == text


def test_redeclaring_exchange_ignores_unknown_arguments(vhost):
    x = vhost.declare_exchange("x", "direct", arguments={"foo": "bar"})
    assert vhost.declare_exchange("x", "direct", arguments={"foo": "baz"}) is x


def test_unknown_exchange_type_is_a_connection_error(vhost):
    with pytest.raises(CommandInvalid) as e:
        vhost.declare_exchange("x", "foo")
    assert e.value.text == "unknown exchange type 'foo'"
    assert type(e.value) is CommandInvalid  # a connection error in AMQP (server/replies.py)


def test_reserved_and_default_exchange_names_are_refused(vhost):
    with pytest.raises(AccessRefused) as e:
        vhost.declare_exchange("amq.foo", "direct")
    assert e.value.text == "exchange name 'amq.foo' contains reserved prefix 'amq.*'"
    for call in (lambda: vhost.declare_exchange("", "direct"), lambda: vhost.declare_exchange("", "direct", passive=True),
                 lambda: vhost.delete_exchange(""), lambda: vhost.bind_queue("q", "", "k"),
                 lambda: vhost.unbind_queue("q", "", "k"), lambda: vhost.bind_exchange("amq.direct", "", "k")):
        with pytest.raises(AccessRefused) as e:
            call()
        assert e.value.text == "operation not permitted on the default exchange"
    with pytest.raises(AccessRefused) as e:
        vhost.delete_exchange("amq.direct")
    assert e.value.text == "deletion of system exchange 'amq.direct' in vhost '/' not allowed"


def test_redeclaring_a_system_exchange_with_same_flags_is_fine(vhost):
    assert vhost.declare_exchange("amq.direct", "direct", durable=True) is vhost.exchanges["amq.direct"]


def test_passive_declare_of_missing_exchange_is_not_found(vhost):
    with pytest.raises(NotFound) as e:
        vhost.declare_exchange("nox", "direct", passive=True)
    assert e.value.text == "no exchange 'nox' in vhost '/'"


def test_deleting_missing_exchange_is_ok_and_if_unused_refuses_bound_exchange(vhost):
    vhost.delete_exchange("nox")
    vhost.declare_exchange("x", "direct")
    vhost.declare_queue("q")
    vhost.bind_queue("q", "x", "k")
    with pytest.raises(PreconditionFailed) as e:
        vhost.delete_exchange("x", if_unused=True)
    assert e.value.text == "exchange 'x' in vhost '/' in use"
    vhost.delete_exchange("x")
    assert "x" not in vhost.exchanges
    assert vhost.queues["q"].sources == set()


# -- queues ------------------------------------------------------------------------------------

def test_server_named_queue_has_rabbitmq_format(vhost):
    q, messages, consumers = vhost.declare_queue("")
    assert re.fullmatch(r"amq\.gen-[A-Za-z0-9_-]{22}", q.name)
    assert (messages, consumers) == (0, 0)


def test_redeclaring_queue_with_other_flags_fails(vhost):
    vhost.declare_queue("q")
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", durable=True)
    assert e.value.text == "inequivalent arg 'durable' for queue 'q' in vhost '/': received 'true' but current is 'false'"
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", auto_delete=True)
    assert e.value.text == "inequivalent arg 'auto_delete' for queue 'q' in vhost '/': received 'true' but current is 'false'"
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", arguments={"x-message-ttl": 1000})
    assert e.value.text == ("inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received the value '1000' "
                            "of type 'signedint' but current is none")
    assert vhost.declare_queue("q", arguments={"foo": 1})[0] is vhost.queues["q"]


def test_reserved_queue_names_are_refused_and_missing_queues_not_found(vhost):
    with pytest.raises(AccessRefused) as e:
        vhost.declare_queue("amq.foo")
    assert e.value.text == "queue name 'amq.foo' contains reserved prefix 'amq.*'"
    with pytest.raises(NotFound) as e:
        vhost.declare_queue("amq.foo", passive=True)
    assert e.value.text == "no queue 'amq.foo' in vhost '/'"
    with pytest.raises(NotFound):
        vhost.purge_queue("nope")
    assert vhost.delete_queue("nope") == 0


def test_exclusive_queue_is_locked_for_other_connections(vhost):
    vhost.declare_queue("ex", exclusive=True, owner="c1")
    for call in (
        lambda: vhost.declare_queue("ex", exclusive=True, owner="c2"),
        lambda: vhost.declare_queue("ex", passive=True, owner="c2"),
        lambda: vhost.purge_queue("ex", owner="c2"),
        lambda: vhost.delete_queue("ex", owner="c2"),
        lambda: vhost.bind_queue("ex", "amq.direct", "k", owner="c2"),
        lambda: vhost.declare_queue("ex", exclusive=False, owner="c1"),
    ):
        with pytest.raises(ResourceLocked) as e:
            call()
        assert e.value.text == LOCKED.format("ex")
    vhost.unbind_queue("ex", "amq.direct", "k", owner="c2")  # RabbitMQ does not check unbind
    assert vhost.declare_queue("ex", passive=True, owner="c1")[0].name == "ex"


def test_declaring_existing_shared_queue_as_exclusive_is_locked(vhost):
    vhost.declare_queue("q")
    with pytest.raises(ResourceLocked) as e:
        vhost.declare_queue("q", exclusive=True, owner="c1")
    assert e.value.text == LOCKED.format("q")


def test_connection_closed_deletes_only_its_exclusive_queues(vhost):
    vhost.declare_queue("mine", exclusive=True, owner="c1")
    vhost.declare_queue("theirs", exclusive=True, owner="c2")
    vhost.declare_queue("shared")
    vhost.connection_closed("c1")
    assert set(vhost.queues) == {"theirs", "shared"}


def test_delete_queue_if_unused_and_if_empty(vhost, session):
    vhost.declare_queue("q")
    session.publish("q", "m")
    with pytest.raises(PreconditionFailed) as e:
        vhost.delete_queue("q", if_empty=True)
    assert e.value.text == "queue 'q' in vhost '/' not empty"
    session.channel.consume("q", "c")
    with pytest.raises(PreconditionFailed) as e:
        vhost.delete_queue("q", if_unused=True)
    assert e.value.text == "queue 'q' in vhost '/' in use"
    assert vhost.delete_queue("q") == 1


def test_bind_to_missing_exchange_or_queue_is_not_found(vhost):
    vhost.declare_queue("q")
    with pytest.raises(NotFound) as e:
        vhost.bind_queue("noq", "nox", "k")
    assert e.value.text == "no exchange 'nox' in vhost '/'"
    with pytest.raises(NotFound) as e:
        vhost.bind_queue("noq", "amq.direct", "k")
    assert e.value.text == "no queue 'noq' in vhost '/'"
    with pytest.raises(NotFound) as e:
        vhost.bind_exchange("amq.direct", "nox", "k")
    assert e.value.text == "no exchange 'nox' in vhost '/'"
    vhost.unbind_queue("noq", "amq.direct", "k")
    vhost.unbind_queue("q", "amq.direct", "never-bound")


def test_purge_removes_ready_messages_and_reports_count(vhost, session):
    vhost.declare_queue("q")
    for i in range(3):
        session.publish("q", str(i))
    assert vhost.purge_queue("q") == 3
    assert vhost.queues["q"].message_count == 0


# -- auto-delete -------------------------------------------------------------------------------

def test_auto_delete_exchange_goes_with_its_last_binding(vhost):
    vhost.declare_exchange("ax", "direct", auto_delete=True)
    vhost.declare_queue("q1")
    vhost.declare_queue("q2")
    vhost.bind_queue("q1", "ax", "k")
    vhost.bind_queue("q2", "ax", "k")
    vhost.unbind_queue("q1", "ax", "k")
    assert "ax" in vhost.exchanges
    vhost.delete_queue("q2")
    assert "ax" not in vhost.exchanges


def test_auto_delete_exchange_without_bindings_stays_until_one_goes(vhost):
    vhost.declare_exchange("ax", "fanout", auto_delete=True)
    assert "ax" in vhost.exchanges


# -- publish -----------------------------------------------------------------------------------

def test_publish_to_missing_or_internal_exchange_fails(vhost):
    with pytest.raises(NotFound) as e:
        vhost.publish("nox", "k", make_message())
    assert e.value.text == "no exchange 'nox' in vhost '/'"
    vhost.declare_exchange("int", "direct", internal=True)
    with pytest.raises(AccessRefused) as e:
        vhost.publish("int", "k", make_message())
    assert e.value.text == "cannot publish to internal exchange 'int' in vhost '/'"


def test_publish_routes_through_default_exchange_and_reports_unrouted(vhost):
    vhost.declare_queue("q")
    result = vhost.publish("", "q", make_message("m"))
    assert result.routed and [q.name for q in result.queues] == ["q"]
    assert not vhost.publish("", "nope", make_message("m")).routed
    assert ready_bodies(vhost, "q") == [b"m"]


def test_exchange_to_exchange_cycle_delivers_each_queue_once(vhost):
    vhost.declare_exchange("c1", "fanout")
    vhost.declare_exchange("c2", "fanout")
    vhost.bind_exchange("c2", "c1")
    vhost.bind_exchange("c1", "c2")
    vhost.declare_queue("cq")
    vhost.bind_queue("cq", "c1")
    vhost.bind_queue("cq", "c2")
    result = vhost.publish("c1", "", make_message("x"))
    assert [q.name for q in result.queues] == ["cq"]
    assert ready_bodies(vhost, "cq") == [b"x"]


def test_exchange_to_exchange_binding_forwards_with_its_own_routing(vhost):
    vhost.declare_exchange("src", "topic")
    vhost.declare_exchange("dst", "direct")
    vhost.bind_exchange("dst", "src", "a.*")
    vhost.declare_queue("q")
    vhost.bind_queue("q", "dst", "a.b")
    assert vhost.publish("src", "a.b", make_message()).routed
    assert not vhost.publish("src", "a.c", make_message()).routed


def test_deleting_destination_exchange_removes_e2e_binding_and_auto_deletes_source(vhost):
    vhost.declare_exchange("src", "fanout", auto_delete=True)
    vhost.declare_exchange("dst", "fanout")
    vhost.bind_exchange("dst", "src")
    vhost.delete_exchange("dst")
    assert "src" not in vhost.exchanges


def test_cc_and_bcc_add_routing_keys_and_bcc_is_stripped(vhost):
    for name in ("aq", "ccq1", "ccq2"):
        vhost.declare_queue(name)
    result = vhost.publish("", "aq", make_message("m", "aq", headers={"CC": ["ccq1"], "BCC": [b"ccq2"]}))
    assert sorted(q.name for q in result.queues) == ["aq", "ccq1", "ccq2"]
    for name in ("aq", "ccq1", "ccq2"):
        (entry,) = vhost.queues[name].ready
        assert entry.message.headers == {"CC": ["ccq1"]}
        assert entry.message.routing_key == "aq"


def test_cc_that_is_not_an_array_is_refused(vhost):
    with pytest.raises(PreconditionFailed) as e:
        vhost.publish("", "aq", make_message("m", headers={"CC": "ccq1"}))
    assert e.value.text == 'invalid message: {unacceptable_type_in_header,"CC",longstr}'


def test_alternate_exchange_receives_unroutable_messages(vhost):
    vhost.declare_exchange("ae", "fanout")
    vhost.declare_queue("unrouted")
    vhost.bind_queue("unrouted", "ae")
    vhost.declare_exchange("main", "direct", arguments={"alternate-exchange": "ae"})
    vhost.declare_queue("q")
    vhost.bind_queue("q", "main", "k")
    assert [q.name for q in vhost.publish("main", "k", make_message("a")).queues] == ["q"]
    assert [q.name for q in vhost.publish("main", "other", make_message("b")).queues] == ["unrouted"]
    assert ready_bodies(vhost, "unrouted") == [b"b"]


def test_alternate_exchange_cycle_terminates(vhost):
    vhost.declare_exchange("a", "direct", arguments={"alternate-exchange": "b"})
    vhost.declare_exchange("b", "direct", arguments={"alternate-exchange": "a"})
    assert not vhost.publish("a", "k", make_message()).routed


def test_missing_alternate_exchange_leaves_message_unrouted(vhost):
    vhost.declare_exchange("main", "direct", arguments={"alternate-exchange": "gone"})
    assert not vhost.publish("main", "k", make_message()).routed


def test_headers_exchange_routes_on_message_headers(vhost):
    vhost.declare_queue("q")
    vhost.bind_queue("q", "amq.match", "", {"x-match": "any", "a": 1})
    assert vhost.publish("amq.match", "", make_message(headers={"a": 1})).routed
    assert not vhost.publish("amq.match", "", make_message(headers={"a": 2})).routed


def test_bcc_stripping_works_with_the_codec_properties(vhost):
    properties = pytest.importorskip("leveret.amqp.properties")
    raw = properties.BasicProperties(headers={"CC": ["ccq"], "BCC": ["bccq"], "n": 1}).raw
    message = Message("", "aq", properties.BasicProperties.from_raw(raw), b"m")
    for name in ("aq", "ccq", "bccq"):
        vhost.declare_queue(name)
    assert len(vhost.publish("", "aq", message).queues) == 3
    delivered = vhost.queues["bccq"].ready[0].message.properties
    assert delivered.headers == {"CC": ["ccq"], "n": 1}
    assert properties.BasicProperties.from_raw(delivered.raw).headers == {"CC": ["ccq"], "n": 1}


def test_inequivalent_queue_argument_texts_follow_rabbitmq(vhost):
    vhost.declare_queue("q", arguments={"x-max-length": 10})
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q", arguments={"x-max-length": 11})
    assert e.value.text == "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '11' but current is '10'"
    with pytest.raises(PreconditionFailed) as e:
        vhost.declare_queue("q")
    assert e.value.text == ("inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received none but current is "
                            "the value '10' of type 'signedint'")


def test_explicit_classic_queue_type_is_equivalent_to_none(vhost):
    vhost.declare_queue("q")
    assert vhost.declare_queue("q", arguments={"x-queue-type": "classic"})[0] is vhost.queues["q"]
