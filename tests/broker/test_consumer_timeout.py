"""Consumer timeout: an unacked delivery past the limit closes the channel (406) and requeues."""

from leveret.broker import Broker
from leveret.broker.channel import Channel
from leveret.broker.errors import PreconditionFailed

from .conftest import RecordingTarget, make_message


class TimeoutTarget(RecordingTarget):
    number = 3

    def __init__(self):
        super().__init__()
        self.errors = []

    def channel_error(self, error):
        self.errors.append(error)


def test_unacked_delivery_past_broker_timeout_closes_the_channel_and_requeues(clock):
    broker = Broker(clock, consumer_timeout=1000)
    vhost = broker.vhost("/")
    vhost.declare_queue("q")
    target = TimeoutTarget()
    channel = Channel(vhost, target, "conn")
    channel.consume("q", "c")
    channel.start_consumer("c")
    channel.publish("", "q", make_message("m", "q"))
    clock.advance(0.999)
    broker.timers.run_due()
    assert not target.errors
    clock.advance(0.002)
    broker.timers.run_due()
    (error,) = target.errors
    assert type(error) is PreconditionFailed
    assert error.text == (
        "delivery acknowledgement on channel 3 timed out. Timeout value used: 1000 ms. "
        "This timeout value can be configured, see consumers doc guide to learn more"
    )
    assert channel.closed and vhost.queues["q"].message_count == 1


def test_acked_deliveries_never_time_out(clock):
    broker = Broker(clock, consumer_timeout=1000)
    vhost = broker.vhost("/")
    vhost.declare_queue("q")
    target = TimeoutTarget()
    channel = Channel(vhost, target, "conn")
    channel.publish("", "q", make_message("m", "q"))
    tag = channel.get("q")[0]
    channel.ack(tag)
    clock.advance(5)
    broker.timers.run_due()
    assert not target.errors and not channel.closed


def test_queue_argument_overrides_the_broker_setting(vhost, clock, broker):
    vhost.declare_queue("q", arguments={"x-consumer-timeout": 50})
    target = TimeoutTarget()
    channel = Channel(vhost, target, "conn")
    channel.publish("", "q", make_message("m", "q"))
    channel.get("q")
    clock.advance(0.051)
    broker.timers.run_due()
    assert "Timeout value used: 50 ms" in target.errors[0].text


def test_without_a_timeout_nothing_is_scheduled(vhost, session, broker):
    vhost.declare_queue("q")
    session.publish("q", "m")
    session.channel.get("q")
    assert broker.timers.next_deadline() is None


def test_acked_deliveries_leave_no_timeout_bookkeeping_behind(clock):
    broker = Broker(clock, consumer_timeout=1000)
    vhost = broker.vhost("/")
    vhost.declare_queue("q")
    channel = Channel(vhost, TimeoutTarget(), "conn")
    channel.consume("q", "c")
    channel.start_consumer("c")
    for i in range(1000):
        channel.publish("", "q", make_message(str(i), "q"))
        channel.ack(i + 1)
    assert not channel._ack_deadlines


def test_the_shorter_queue_timeout_fires_even_behind_an_older_delivery(clock):
    broker = Broker(clock, consumer_timeout=1000)
    vhost = broker.vhost("/")
    vhost.declare_queue("slow")
    vhost.declare_queue("fast", arguments={"x-consumer-timeout": 50})
    target = TimeoutTarget()
    channel = Channel(vhost, target, "conn")
    channel.publish("", "slow", make_message("a", "slow"))
    channel.publish("", "fast", make_message("b", "fast"))
    channel.get("slow")
    channel.get("fast")
    clock.advance(0.06)
    broker.timers.run_due()
    assert "Timeout value used: 50 ms" in target.errors[0].text


def test_a_run_of_deliveries_times_out_unless_every_one_of_it_is_acked(clock):
    for acked, times_out in ((5, False), (4, True)):
        broker = Broker(clock, consumer_timeout=1000)
        vhost = broker.vhost("/")
        vhost.declare_queue("q")
        target = TimeoutTarget()
        channel = Channel(vhost, target, "conn")
        for n in range(5):
            channel.publish("", "q", make_message(f"m{n}", "q"))
        channel.consume("q", "c")
        channel.start_consumer("c")  # five ready, one consumer: one run of deliveries, one deadline
        assert target.tags == [1, 2, 3, 4, 5]
        channel.ack(acked, multiple=True)
        clock.advance(0.999)
        broker.timers.run_due()
        assert not target.errors
        clock.advance(0.002)
        broker.timers.run_due()
        assert bool(target.errors) is times_out and channel.closed is times_out
