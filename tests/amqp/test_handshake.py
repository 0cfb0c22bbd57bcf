"""The server handshake, sans IO: bytes in (through ConnectionReader), events and bytes out, no socket.

Each conversation is fed whole, one byte at a time and split at every offset (and at random offsets with
hypothesis); the events and the frames the server owes must be the same every way.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leveret.amqp import errors as codes
from leveret.amqp import spec
from leveret.amqp.connection import AWAITING_HEADER, ConnectionReader
from leveret.amqp.errors import AMQPConnectionError
from leveret.amqp.events import ContentReceived, MethodReceived
from leveret.amqp.handshake import (
    AWAIT_OPEN, AWAIT_START_OK, AWAIT_TUNE_OK, CLOSED, CLOSING, RUNNING, ClientClosed, CloseFinished,
    LoginRequested, OpenRequested, ServerHandshake, Tuned, sasl_credentials,
)
from leveret.amqp.properties import BasicProperties
from leveret.amqp.serializer import PROTOCOL_HEADER, content_frames, method_frame
from leveret.amqp.table import encode_table

PROPERTIES = {"product": "test", "capabilities": {"publisher_confirms": True}}
OFFER = dict(frame_max=131072, channel_max=2047, heartbeat=60)


def start_ok(response: bytes = b"\0guest\0guest", mechanism: str = "PLAIN", **client) -> bytes:
    props = {"connection_name": "conn-1", "capabilities": {"connection.blocked": True}, **client}
    return method_frame(0, spec.ConnectionStartOk(client_properties=props, mechanism=mechanism, response=response,
                                                 locale="en_US"))


def tune_ok(frame_max: int = 8192, channel_max: int = 16, heartbeat: int = 10) -> bytes:
    return method_frame(0, spec.ConnectionTuneOk(channel_max=channel_max, frame_max=frame_max, heartbeat=heartbeat))


OPEN = method_frame(0, spec.ConnectionOpen(virtual_host="/"))
PUBLISH = spec.BasicPublish(exchange="", routing_key="q")
PROPS = BasicProperties(delivery_mode=2)
# A client that pipelines its whole handshake, a channel and a publish bigger than the handshake's
# frame_max (legal only once tune-ok raised it) into one write.
PIPELINED = b"".join([
    PROTOCOL_HEADER, start_ok(), tune_ok(), OPEN, method_frame(1, spec.ChannelOpen()),
    *content_frames(1, PUBLISH, PROPS.raw, b"x" * 6000, 8192),
])


class Server:
    """The few lines a server adds around ConnectionReader and ServerHandshake (as server/session.py does)."""

    def __init__(self, users=(("guest", "guest"),), vhosts=("/",)) -> None:
        self.reader = ConnectionReader(frame_max=spec.FRAME_MIN_SIZE, channels_open=False)
        self.handshake = ServerHandshake(server_properties={"product": "leveret"}, **OFFER)
        self.users = dict(users)
        self.vhosts = vhosts
        self.events: list = []
        self.out: list[bytes] = []

    def feed(self, data: bytes) -> None:
        while True:
            events = self.reader.receive_data(data)
            if self.handshake.state == 0 and self.reader.state != AWAITING_HEADER:
                self.handshake.start()
            for event in events:
                self.handle(event)
            self.out += self.handshake.data_to_send()
            if not self.reader.pending:
                return
            data = b""

    def handle(self, event) -> None:
        hs = self.handshake
        if type(event) is not MethodReceived or (event.channel and hs.state == RUNNING):
            self.events.append(event)
            return
        got = hs.receive(event.channel, event.method)
        self.events.append(got)
        if type(got) is LoginRequested:
            if got.password is not None and self.users.get(got.username) == got.password:
                hs.accept_login()
            else:
                hs.close(codes.ACCESS_REFUSED, hs.refusal(got.mechanism))
        elif type(got) is Tuned:
            self.reader.frame_max = got.frame_max
        elif type(got) is OpenRequested and got.virtual_host in self.vhosts:
            self.reader.channels_open = True
            hs.open_ok()


def start_frame() -> bytes:
    return method_frame(0, spec.ConnectionStart(version_major=0, version_minor=9,
                                                server_properties={"product": "leveret"},
                                                mechanisms=b"PLAIN AMQPLAIN", locales=b"en_US"))


TUNE = method_frame(0, spec.ConnectionTune(**OFFER))
OPEN_OK = method_frame(0, spec.ConnectionOpenOk())
EXPECTED_EVENTS = [
    LoginRequested("PLAIN", "guest", "guest"),
    Tuned(8192, 16, 10),
    OpenRequested("/"),
    MethodReceived(1, spec.ChannelOpen()),
    ContentReceived(1, PUBLISH, PROPS, b"x" * 6000),
]


def run(chunks) -> Server:
    server = Server()
    for chunk in chunks:
        server.feed(chunk)
    return server


def check(server: Server) -> None:
    assert server.events == EXPECTED_EVENTS
    assert b"".join(server.out) == start_frame() + TUNE + OPEN_OK
    assert server.handshake.state == RUNNING
    assert (server.handshake.frame_max, server.handshake.channel_max, server.handshake.heartbeat) == (8192, 16, 10)
    assert server.handshake.name == "conn-1"
    assert server.handshake.client_capabilities == {"connection.blocked": True}


def test_a_pipelined_handshake_in_one_write():
    check(run([PIPELINED]))


def test_a_pipelined_handshake_one_byte_at_a_time():
    check(run([PIPELINED[i:i + 1] for i in range(len(PIPELINED))]))


def test_a_pipelined_handshake_split_at_every_offset():
    for cut in range(1, len(PIPELINED)):
        check(run([PIPELINED[:cut], PIPELINED[cut:]]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, len(PIPELINED) - 1), max_size=10))
def test_a_pipelined_handshake_split_anywhere(cuts):
    bounds = [0, *sorted(set(cuts)), len(PIPELINED)]
    check(run([PIPELINED[a:b] for a, b in zip(bounds, bounds[1:])]))


def test_the_server_speaks_only_after_the_protocol_header():
    server = Server()
    server.feed(PROTOCOL_HEADER[:7])
    assert server.out == [] and server.handshake.state == 0
    server.feed(PROTOCOL_HEADER[7:])
    assert server.out == [start_frame()] and server.handshake.state == AWAIT_START_OK


def test_amqplain_credentials_are_read_from_their_table():
    raw = encode_table({"LOGIN": "guest", "PASSWORD": "guest"})[4:]  # the response has no length prefix
    server = run([PROTOCOL_HEADER + start_ok(raw, "AMQPLAIN")])
    assert server.events == [LoginRequested("AMQPLAIN", "guest", "guest")]
    assert server.handshake.state == AWAIT_TUNE_OK


@pytest.mark.parametrize("mechanism,response", [
    ("PLAIN", b"guest\0guest"), ("PLAIN", b"\0a\0b\0c"), ("AMQPLAIN", b"\x05LOGIN"),
    ("AMQPLAIN", encode_table({"LOGIN": "guest"})[4:]),
])
def test_malformed_sasl_responses_are_a_login_with_no_password(mechanism, response):
    assert sasl_credentials(mechanism, response) is None
    server = run([PROTOCOL_HEADER + start_ok(response, mechanism)])
    assert server.events == [LoginRequested(mechanism, "", None)]
    assert server.handshake.state == CLOSING


def test_refused_credentials_close_with_rabbitmqs_403_text():
    server = run([PROTOCOL_HEADER + start_ok(b"\0guest\0wrong")])
    text = ("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
            "For details see the broker logfile.")
    assert server.out[-1] == method_frame(0, spec.ConnectionClose(reply_code=403, reply_text=text, class_id=0,
                                                                  method_id=0))
    # While closing only the answer to our close is heard.
    server.feed(OPEN)
    assert server.events[-1] is None
    server.feed(method_frame(0, spec.ConnectionCloseOk()))
    assert type(server.events[-1]) is CloseFinished and server.handshake.state == CLOSED


def test_an_unknown_mechanism_is_503():
    with pytest.raises(AMQPConnectionError) as info:
        run([PROTOCOL_HEADER + start_ok(mechanism="EXTERNAL")])
    assert (info.value.reply_code, info.value.class_id, info.value.method_id) == (503, 10, 11)
    assert info.value.reply_text == "COMMAND_INVALID - unknown authentication mechanism 'EXTERNAL'"


def test_an_offered_external_is_announced_and_its_response_ignored():
    server = Server()
    server.handshake.offer("EXTERNAL")
    server.handshake.offer("EXTERNAL")  # offered once however often it is asked for
    server.feed(PROTOCOL_HEADER + start_ok(b"whatever the client says", "EXTERNAL"))
    start = server.out[0]
    assert b"PLAIN AMQPLAIN EXTERNAL" in start and b"EXTERNAL EXTERNAL" not in start
    # The server takes the user from the certificate: the event carries no credentials of the client's.
    assert server.events == [LoginRequested("EXTERNAL", "", None)]


@pytest.mark.parametrize("frame_max,channel_max,text", [
    (4095, 0, "NOT_ALLOWED - frame_max=4095 < 4096 min size"),
    (131073, 0, "NOT_ALLOWED - frame_max=131073 > 131072 max size"),
    (0, 2048, "NOT_ALLOWED - channel_max=2048 > 2047 max size"),
])
def test_tune_ok_outside_the_offer_is_530(frame_max, channel_max, text):
    with pytest.raises(AMQPConnectionError) as info:
        run([PROTOCOL_HEADER + start_ok() + tune_ok(frame_max, channel_max)])
    assert (info.value.reply_code, info.value.reply_text, info.value.class_id, info.value.method_id) == \
        (530, text, 10, 31)


def test_zero_in_tune_ok_takes_the_servers_offer():
    server = run([PROTOCOL_HEADER + start_ok() + tune_ok(0, 0, 0)])
    assert server.events[-1] == Tuned(131072, 2047, 0)
    assert server.handshake.state == AWAIT_OPEN


@pytest.mark.parametrize("early,state_name", [
    (tune_ok(), "starting"), (OPEN, "starting"),
])
def test_a_method_out_of_order_is_504_naming_the_state(early, state_name):
    with pytest.raises(AMQPConnectionError) as info:
        run([PROTOCOL_HEADER + early])
    assert info.value.reply_code == 504
    assert info.value.reply_text == f"CHANNEL_ERROR - unexpected method in connection state {state_name}"


def test_open_before_tune_ok_names_the_tuning_state():
    with pytest.raises(AMQPConnectionError) as info:
        run([PROTOCOL_HEADER + start_ok() + OPEN])
    assert info.value.reply_text == "CHANNEL_ERROR - unexpected method in connection state tuning"


def test_a_second_open_while_running_names_the_running_state():
    server = run([PROTOCOL_HEADER + start_ok() + tune_ok() + OPEN])
    with pytest.raises(AMQPConnectionError) as info:
        server.feed(OPEN)
    assert info.value.reply_text == "CHANNEL_ERROR - unexpected method in connection state running"


def test_running_connection_answers_update_secret_and_ignores_flow_notices():
    server = run([PROTOCOL_HEADER + start_ok() + tune_ok() + OPEN])
    before = len(server.out)
    server.feed(method_frame(0, spec.ConnectionBlocked(reason="x")) + method_frame(0, spec.ConnectionUnblocked())
                + method_frame(0, spec.ConnectionUpdateSecret(new_secret=b"s", reason="r")))
    assert server.out[before:] == [method_frame(0, spec.ConnectionUpdateSecretOk())]


def test_the_clients_close_is_answered_with_close_ok():
    server = run([PROTOCOL_HEADER + start_ok() + tune_ok() + OPEN
                  + method_frame(0, spec.ConnectionClose(reply_code=200, reply_text="bye", class_id=0, method_id=0))])
    assert type(server.events[-1]) is ClientClosed
    assert server.out[-1] == method_frame(0, spec.ConnectionCloseOk())
    assert server.handshake.state == CLOSED


def test_a_crossing_close_while_closing_is_answered_and_ends_it():
    server = run([PROTOCOL_HEADER + start_ok() + tune_ok() + OPEN])
    assert server.handshake.close(320, "CONNECTION_FORCED - bye")
    assert not server.handshake.close(320, "again")  # once only
    server.feed(method_frame(0, spec.ConnectionClose(reply_code=200, reply_text="", class_id=0, method_id=0)))
    assert type(server.events[-1]) is CloseFinished
    assert server.out[-2:] == [
        method_frame(0, spec.ConnectionClose(reply_code=320, reply_text="CONNECTION_FORCED - bye", class_id=0,
                                             method_id=0)),
        method_frame(0, spec.ConnectionCloseOk()),
    ]
