"""Channel states, sans IO: open and channel_max, closing, confirm and tx modes, confirm acks and nacks."""

from __future__ import annotations

import pytest

from leveret.amqp import spec
from leveret.amqp.channels import ChannelState, ChannelTable
from leveret.amqp.errors import AMQPChannelError, AMQPConnectionError
from leveret.amqp.serializer import basic_ack_frame, basic_nack_frame, method_frame


def test_open_makes_the_channel_and_owes_open_ok():
    table = ChannelTable(channel_max=2)
    ch, reply = table.open(5, ChannelState)
    assert table.by_number[5] is ch and ch.number == 5 and not ch.closing
    assert reply == method_frame(5, spec.ChannelOpenOk())


def test_channel_max_counts_open_channels_not_their_numbers():
    table = ChannelTable(channel_max=2)
    table.open(7, ChannelState)
    table.open(900, ChannelState)
    with pytest.raises(AMQPConnectionError) as info:
        table.open(1, ChannelState)
    assert (info.value.reply_code, info.value.class_id, info.value.method_id) == (530, 0, 0)
    assert info.value.reply_text == ("NOT_ALLOWED - number of channels opened (2) has reached the negotiated "
                                     "channel_max (2)")
    table.close_requested(7)
    table.open(1, ChannelState)  # room again


def test_a_method_on_a_channel_never_opened_is_504():
    table = ChannelTable(channel_max=10)
    assert table.receive_unrouted(3, spec.ChannelOpen()) == (True, None)
    with pytest.raises(AMQPConnectionError) as info:
        table.receive_unrouted(3, spec.QueueDeclare(queue="q"))
    assert (info.value.reply_code, info.value.reply_text) == (504, "CHANNEL_ERROR - expected 'channel.open'")
    assert (info.value.class_id, info.value.method_id) == (50, 10)
    error = table.content_on_unopened()
    assert (error.reply_code, error.class_id, error.method_id) == (504, 60, 40)


def test_a_second_open_is_504():
    error = ChannelTable.reopen_error(spec.ChannelOpen())
    assert (error.reply_code, error.reply_text, error.class_id, error.method_id) == \
        (504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)


def test_a_closing_channel_hears_only_close_ok_or_a_crossing_close():
    table = ChannelTable(channel_max=10)
    ch, _ = table.open(1, ChannelState)
    frame = ch.close_frame(406, "PRECONDITION_FAILED - x", 50, 10)
    assert ch.closing
    assert frame == method_frame(1, spec.ChannelClose(reply_code=406, reply_text="PRECONDITION_FAILED - x",
                                                      class_id=50, method_id=10))
    assert table.receive_unrouted(1, spec.BasicAck(delivery_tag=1)) == (False, None)  # dropped
    assert 1 in table.by_number
    assert table.receive_unrouted(1, spec.ChannelCloseOk()) == (False, None)
    assert 1 not in table.by_number
    ch, _ = table.open(1, ChannelState)
    ch.close_frame(406, "x", 0, 0)
    crossing = spec.ChannelClose(reply_code=200, reply_text="", class_id=0, method_id=0)
    assert table.receive_unrouted(1, crossing) == (False, method_frame(1, spec.ChannelCloseOk()))
    assert 1 not in table.by_number


def test_the_clients_close_frees_the_number_and_owes_close_ok():
    table = ChannelTable(channel_max=10)
    table.open(4, ChannelState)
    assert table.close_requested(4) == method_frame(4, spec.ChannelCloseOk())
    assert 4 not in table.by_number


def test_flow_ok_echoes_active():
    assert ChannelState(2).flow_ok(False) == method_frame(2, spec.ChannelFlowOk(active=False))


def test_confirm_select_then_tx_select_is_406_and_back():
    ch = ChannelState(1)
    assert ch.select_confirm(spec.ConfirmSelect(nowait=False)) == method_frame(1, spec.ConfirmSelectOk())
    assert ch.select_confirm(spec.ConfirmSelect(nowait=True)) is None
    with pytest.raises(AMQPChannelError) as info:
        ch.select_tx(spec.TxSelect())
    assert (info.value.channel, info.value.reply_code, info.value.class_id, info.value.method_id) == (1, 406, 90, 10)
    assert info.value.reply_text == "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    tx = ChannelState(2)
    assert tx.select_tx(spec.TxSelect()) == method_frame(2, spec.TxSelectOk())
    with pytest.raises(AMQPChannelError) as info:
        tx.select_confirm(spec.ConfirmSelect())
    assert info.value.reply_text == "PRECONDITION_FAILED - cannot switch from tx to confirm mode"


def test_commit_and_rollback_need_tx_select():
    ch = ChannelState(3)
    for method in (spec.TxCommit(), spec.TxRollback()):
        with pytest.raises(AMQPChannelError) as info:
            ch.require_tx(method)
        assert info.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"
        assert (info.value.class_id, info.value.method_id) == (method.CLASS_ID, method.METHOD_ID)
    ch.select_tx(spec.TxSelect())
    ch.require_tx(spec.TxCommit())
    assert ch.commit_ok() == method_frame(3, spec.TxCommitOk())
    assert ch.rollback_ok() == method_frame(3, spec.TxRollbackOk())


def test_acks_are_multiple_only_when_they_cover_more_than_one_publish():
    ch = ChannelState(1)
    ch.select_confirm(spec.ConfirmSelect())
    assert ch.ack_frame(1) == basic_ack_frame(1, 1, False)
    assert ch.ack_frame(4) == basic_ack_frame(1, 4, True)
    assert ch.ack_frame(5) == basic_ack_frame(1, 5, False)
    assert ch.confirmed_upto == 5


def test_a_nack_counts_as_confirmed_and_is_multiple_only_when_nothing_before_it_is_open():
    """RabbitMQ 3.10 coalesces nacks (multiple whenever every earlier publish is confirmed) and leaves
    requeue at its default, true (found by the differential fuzzer)."""
    ch = ChannelState(1)
    assert ch.nack_frame(1) == basic_nack_frame(1, 1, True, True)
    assert ch.nack_frame(3) == basic_nack_frame(1, 3, False, True)  # 2 is still open: this one alone
    assert ch.confirmed_upto == 3
    assert ch.nack_frame(2) == basic_nack_frame(1, 2, False, True)
    assert ch.confirmed_upto == 3  # never goes back
    assert ch.ack_frame(5) == basic_ack_frame(1, 5, True)
