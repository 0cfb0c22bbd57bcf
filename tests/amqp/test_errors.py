"""Reply codes and the exceptions that carry RabbitMQ's replies."""

from __future__ import annotations

from leveret.amqp import errors, spec


def test_reply_codes_match_the_spec_constants():
    for code, name in errors.REPLY_NAMES.items():
        assert getattr(errors, name) == code
        if hasattr(spec, name):
            assert getattr(spec, name) == code
    assert errors.NO_ROUTE == 312 and errors.REPLY_NAMES[404] == "NOT_FOUND"


def test_reply_text_is_name_dash_detail_like_rabbitmq():
    exc = errors.AMQPChannelError(3, "no queue 'q' in vhost '/'", 50, 10, errors.NOT_FOUND)
    assert exc.reply_text == "NOT_FOUND - no queue 'q' in vhost '/'"
    assert (exc.channel, exc.reply_code, exc.class_id, exc.method_id) == (3, 404, 50, 10)
    assert errors.AMQPConnectionError(reply_code=errors.INTERNAL_ERROR).reply_text == "INTERNAL_ERROR"


def test_reply_text_is_cut_to_a_shortstr():
    exc = errors.AMQPConnectionError("é" * 300, reply_code=errors.FRAME_ERROR)
    assert len(exc.reply_text.encode()) <= 255
    spec.ConnectionClose(reply_text=exc.reply_text).encode()  # still encodable


def test_each_error_class_carries_the_code_rabbitmq_sends():
    assert errors.FrameError().reply_code == 501
    assert errors.MalformedFrame().reply_code == 501
    assert errors.UnexpectedFrame().reply_code == 505
    assert errors.UnknownMethod().reply_code == 540
    assert isinstance(errors.BadProtocolHeader(b"GET / HT"), errors.AMQPConnectionError)
    assert issubclass(errors.MalformedFrame, errors.FrameError)
    assert not issubclass(errors.AMQPChannelError, errors.AMQPConnectionError)


def test_hard_errors_are_the_connection_level_codes():
    assert errors.UNEXPECTED_FRAME in errors.HARD_ERRORS
    assert errors.NOT_FOUND not in errors.HARD_ERRORS and errors.PRECONDITION_FAILED not in errors.HARD_ERRORS
