"""Broker errors become RabbitMQ's reply codes, texts and scopes in one table (server/replies.py)."""

import pytest

from leveret.broker import errors
from leveret.server.replies import REPLIES, reply_for


@pytest.mark.parametrize(
    "cls,code,name,connection",
    [
        (errors.AccessRefused, 403, "ACCESS_REFUSED", False),
        (errors.NotFound, 404, "NOT_FOUND", False),
        (errors.ResourceLocked, 405, "RESOURCE_LOCKED", False),
        (errors.PreconditionFailed, 406, "PRECONDITION_FAILED", False),
        (errors.CommandInvalid, 503, "COMMAND_INVALID", True),
        (errors.NotAllowed, 530, "NOT_ALLOWED", True),
        (errors.NotImplementedByBroker, 540, "NOT_IMPLEMENTED", True),
        (errors.InternalError, 541, "INTERNAL_ERROR", True),
    ],
)
def test_each_broker_error_maps_to_its_reply_code_text_and_scope(cls, code, name, connection):
    reply = reply_for(cls("some text"))
    assert (reply.code, reply.text, reply.closes_connection) == (code, f"{name} - some text", connection)


def test_every_broker_error_class_has_a_reply():
    public = {cls for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.BrokerError) and cls is not errors.BrokerError}
    assert public == set(REPLIES)


def test_broker_errors_carry_no_wire_codes():
    for cls in REPLIES:
        assert not {"reply_code", "reply_name", "connection_level"} & set(vars(cls)), cls


def test_a_subclass_takes_its_base_reply_and_an_unknown_error_is_internal():
    class NoSuchThing(errors.NotFound):
        pass

    assert reply_for(NoSuchThing("x"))[:2] == (404, "NOT_FOUND - x")
    assert reply_for(errors.BrokerError("x")) == (541, "INTERNAL_ERROR - x", True)
