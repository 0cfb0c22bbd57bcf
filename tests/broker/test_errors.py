"""Errors carry RabbitMQ's reply codes, names and scope."""

import pytest

from leveret.broker import errors


@pytest.mark.parametrize(
    "cls,code,connection",
    [
        (errors.AccessRefused, 403, False),
        (errors.NotFound, 404, False),
        (errors.ResourceLocked, 405, False),
        (errors.PreconditionFailed, 406, False),
        (errors.CommandInvalid, 503, True),
        (errors.NotAllowed, 530, True),
        (errors.NotImplementedByBroker, 540, True),
        (errors.InternalError, 541, True),
    ],
)
def test_error_classes_map_to_reply_codes_and_scope(cls, code, connection):
    err = cls("some text")
    assert isinstance(err, errors.BrokerError)
    assert (err.reply_code, err.connection_level, err.text) == (code, connection, "some text")
