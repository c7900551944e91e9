"""The asyncio SIP transport (firmware.sip.transport) with real sockets on 127.0.0.1, UDP and TCP.

A trivial TU answers: 200 to OPTIONS (and to anything but INVITE), 486 to INVITE,
487 on CANCEL. Every wait is scoped with a timeout; "silence" is shown by the
answer to a later OPTIONS arriving first, never by sleeping.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from pathlib import Path

import pytest
import uvloop

from firmware.sip.endpoint import (
    CancelReceived,
    Event,
    RequestReceived,
    RequestTimeout,
    ResponseReceived,
    SipEndpoint,
)
from firmware.sip.message import Message, ParseError, Request, Response, make_response
from firmware.sip.transport import SipTransport

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
TORTURE = sorted((TESTDATA / "rfc4475").glob("*.dat")) + sorted((TESTDATA / "rfc5118").glob("*.dat"))
WAIT = 5.0
_ids = itertools.count()
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=sorted(LOOPS))
def loop_name(request: pytest.FixtureRequest) -> str:
    return request.param


def aio(fn):  # type: ignore[no-untyped-def]
    """Run an async test on each event loop (asyncio and uvloop), scoped by a timeout."""
    sig = inspect.signature(fn)

    def wrapper(*args, loop_name: str, **kwargs):  # type: ignore[no-untyped-def]
        with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
            return runner.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    wrapper.__name__ = fn.__name__
    wrapper.__qualname__ = fn.__qualname__
    wrapper.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), inspect.Parameter("loop_name", inspect.Parameter.KEYWORD_ONLY)]
    )
    return wrapper


class Tu:
    """The trivial transaction user."""

    def __init__(self) -> None:
        self.transport: SipTransport | None = None
        self.events: list[Event] = []
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self.queue.put_nowait(event)
        assert self.transport is not None
        if isinstance(event, RequestReceived):
            req = event.request
            status = 486 if req.method == "INVITE" else 200
            self.transport.send_response(event.tx, make_response(req, status, to_tag="tu"))
        elif isinstance(event, CancelReceived):
            self.transport.send_response(event.invite_tx, make_response(event.invite_tx.request, 487, to_tag="tu"))


async def make_server(**kwargs) -> tuple[SipTransport, Tu]:
    tu = Tu()
    transport = SipTransport(SipEndpoint(), on_event=tu, **kwargs)
    tu.transport = transport
    await transport.start("127.0.0.1", 0)
    return transport, tu


def options(call_id: str | None = None, *, transport: str = "UDP", port: int = 9) -> bytes:
    call_id = call_id or f"opt-{next(_ids)}"
    return (
        f"OPTIONS sip:pbx@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{call_id};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:t@127.0.0.1>;tag=1\r\n"
        "To: <sip:pbx@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queue.put_nowait(data)


async def udp_client(server: SipTransport) -> tuple[asyncio.DatagramTransport, UdpClient]:
    loop = asyncio.get_running_loop()
    t, p = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0), remote_addr=server.local_udp)
    return t, p  # type: ignore[return-value]


async def until_answer(queue: asyncio.Queue[bytes], call_id: str) -> list[Message | bytes]:
    """Every response received up to and including the one for `call_id`. An answer
    to a malformed request echoes its malformed headers (§8.2.6.2 copies them) and
    need not parse: it is kept as bytes."""
    got: list[Message | bytes] = []
    async with asyncio.timeout(WAIT):
        while True:
            data = await queue.get()
            assert data.startswith(b"SIP/2.0 ")
            try:
                msg = Message.parse(data)
            except ParseError:
                got.append(data)
                continue
            got.append(msg)
            if isinstance(msg, Response) and msg.call_id == call_id:
                return got


async def read_stream_messages(reader: asyncio.StreamReader) -> list[Message]:
    """Everything the server writes until it closes the connection."""
    async with asyncio.timeout(WAIT):
        data = await reader.read()
    out = []
    while data.strip(b"\r\n"):
        data = data.lstrip(b"\r\n")
        msg = Message.parse(data)
        raw = bytes(msg)
        out.append(msg)
        data = data[len(raw):]
    return out


async def read_until(reader: asyncio.StreamReader, call_ids: set[str]) -> list[Response]:
    got: list[Response] = []
    async with asyncio.timeout(WAIT):
        while call_ids - {m.call_id for m in got}:
            head = await reader.readuntil(b"\r\n\r\n")
            head = head.lstrip(b"\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            body = await reader.readexactly(length)
            msg = Message.parse(head + body)
            assert isinstance(msg, Response)
            got.append(msg)
    return got


# -- UDP -----------------------------------------------------------------------------------


@aio
async def test_udp_options_answered() -> None:
    server, tu = await make_server()
    t, p = await udp_client(server)
    try:
        t.sendto(options("u1"))
        [resp] = await until_answer(p.queue, "u1")
        assert resp.status == 200
        via = resp.top_via
        assert via.received == "127.0.0.1" and via.rport == str(t.get_extra_info("sockname")[1])
        assert isinstance(tu.events[0], RequestReceived) and tu.events[0].flow.transport == "udp"
    finally:
        t.close()
        await server.close()


@aio
async def test_start_on_a_port_in_use_raises_clear_oserror() -> None:
    server, _ = await make_server()
    other = SipTransport(SipEndpoint(), on_event=lambda e: None)
    try:
        with pytest.raises(OSError, match="cannot bind"):
            await other.start("127.0.0.1", server.local_udp[1])
    finally:
        await server.close()


@aio
async def test_udp_admit_false_drops_silently_and_is_called_before_parsing() -> None:
    seen: list[tuple[bytes, tuple, str]] = []

    def admit(data: bytes, addr: tuple, transport: str) -> bool:
        seen.append((data, addr, transport))
        return b"drop-me" not in data

    server, tu = await make_server(admit=admit)
    t, p = await udp_client(server)
    try:
        t.sendto(options("drop-me"))
        t.sendto(b"not even SIP")
        t.sendto(options("keep"))
        got = await until_answer(p.queue, "keep")
        assert [m.call_id for m in got] == ["keep"]
        assert [s[2] for s in seen] == ["udp", "udp", "udp"]
        assert seen[1][0] == b"not even SIP" and seen[0][1] == t.get_extra_info("sockname")
    finally:
        t.close()
        await server.close()


@aio
async def test_udp_oversized_datagram_dropped() -> None:
    server, _ = await make_server(max_datagram=600)
    t, p = await udp_client(server)
    try:
        big = options("big").replace(b"Content-Length: 0", b"X-Pad: " + b"x" * 700 + b"\r\nContent-Length: 0")
        t.sendto(big)
        t.sendto(options("small"))
        got = await until_answer(p.queue, "small")
        assert [m.call_id for m in got] == ["small"]
    finally:
        t.close()
        await server.close()


@pytest.mark.parametrize("path", TORTURE, ids=lambda p: f"{p.parent.name}/{p.stem}")
@aio
async def test_udp_torture_answer_or_silence_then_options(path: Path) -> None:
    server, _ = await make_server()
    t, p = await udp_client(server)
    try:
        t.sendto(path.read_bytes())
        t.sendto(options("after"))
        got = await until_answer(p.queue, "after")
        assert got[-1].status == 200
        for msg in got[:-1]:
            assert isinstance(msg, (Response, bytes))
    finally:
        t.close()
        await server.close()


# -- TCP -----------------------------------------------------------------------------------


@aio
async def test_tcp_pipelined_and_split_into_single_bytes() -> None:
    server, tu = await make_server()
    reader, writer = await asyncio.open_connection(*server.local_tcp)
    try:
        writer.write(options("p1", transport="TCP") + options("p2", transport="TCP"))
        got = await read_until(reader, {"p1", "p2"})
        assert [(m.call_id, m.status) for m in got] == [("p1", 200), ("p2", 200)]
        for byte in options("p3", transport="TCP"):
            writer.write(bytes([byte]))
            await writer.drain()
        [resp] = await read_until(reader, {"p3"})
        assert resp.status == 200
        flows = [e.flow for e in tu.events if isinstance(e, RequestReceived)]
        assert {f.transport for f in flows} == {"tcp"} and len({f.conn_id for f in flows}) == 1
        assert server.flow_is_open(flows[0])
    finally:
        writer.close()
        await server.close()


@aio
async def test_tcp_crlf_keepalive_answered() -> None:
    server, _ = await make_server()
    reader, writer = await asyncio.open_connection(*server.local_tcp)
    try:
        writer.write(b"\r\n\r\n")
        async with asyncio.timeout(WAIT):
            assert await reader.readexactly(2) == b"\r\n"
        writer.write(options("ka", transport="TCP"))
        [resp] = await read_until(reader, {"ka"})
        assert resp.status == 200
    finally:
        writer.close()
        await server.close()


@aio
async def test_tcp_without_content_length_gets_400_and_is_closed() -> None:
    server, _ = await make_server()
    reader, writer = await asyncio.open_connection(*server.local_tcp)
    try:
        writer.write(options("ncl", transport="TCP").replace(b"Content-Length: 0\r\n", b""))
        msgs = await read_stream_messages(reader)  # returns at EOF: the server closed
        assert [m.status for m in msgs] == [400]
    finally:
        writer.close()
        await server.close()


@aio
async def test_tcp_admit_false_drops_silently() -> None:
    server, _ = await make_server(admit=lambda data, addr, transport: b"drop-me" not in data)
    reader, writer = await asyncio.open_connection(*server.local_tcp)
    try:
        writer.write(options("drop-me", transport="TCP") + options("keep", transport="TCP"))
        got = await read_until(reader, {"keep"})
        assert [m.call_id for m in got] == ["keep"]
    finally:
        writer.close()
        await server.close()


@aio
async def test_tcp_idle_connection_closed() -> None:
    server, _ = await make_server(tcp_idle_timeout=0.2)
    reader, writer = await asyncio.open_connection(*server.local_tcp)
    try:
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""  # EOF: closed by the server
    finally:
        writer.close()
        await server.close()


@pytest.mark.parametrize("path", TORTURE, ids=lambda p: f"{p.parent.name}/{p.stem}")
@aio
async def test_tcp_torture_answer_or_silence_then_options(path: Path) -> None:
    server, _ = await make_server()
    try:
        reader, writer = await asyncio.open_connection(*server.local_tcp)
        writer.write(path.read_bytes())
        writer.write_eof()  # the server answers what it can, then closes
        async with asyncio.timeout(WAIT):
            await reader.read()
        writer.close()
        reader, writer = await asyncio.open_connection(*server.local_tcp)
        writer.write(options("after", transport="TCP"))
        [resp] = await read_until(reader, {"after"})
        assert resp.status == 200
        writer.close()
    finally:
        await server.close()


# -- two transports talking: the client side ------------------------------------------------


def outgoing(method: str, remote: tuple[str, int]) -> Request:
    call_id = f"out-{next(_ids)}"
    return Request(method, f"sip:pbx@{remote[0]}:{remote[1]}", [
        ("Max-Forwards", "70"),
        ("From", "<sip:a@127.0.0.1>;tag=c1"),
        ("To", f"<sip:pbx@{remote[0]}>"),
        ("Call-ID", call_id),
        ("CSeq", f"1 {method}"),
        ("Contact", "<sip:a@127.0.0.1>"),
    ])


async def next_of(queue: asyncio.Queue[Event], kind: type) -> Event:
    async with asyncio.timeout(WAIT):
        while True:
            ev = await queue.get()
            if isinstance(ev, kind):
                return ev


@pytest.mark.parametrize("proto", ["udp", "tcp"])
@aio
async def test_send_request_between_two_transports(proto: str) -> None:
    server, _ = await make_server()
    client, ctu = await make_server()
    try:
        flow = client.udp_flow(server.local_udp) if proto == "udp" else client.tcp_flow(server.local_tcp)
        tx = client.send_request(outgoing("OPTIONS", server.local_udp), flow)
        ev = await next_of(ctu.queue, ResponseReceived)
        assert ev.tx is tx and ev.response.status == 200
        tx = client.send_request(outgoing("INVITE", server.local_udp), flow)
        ev = await next_of(ctu.queue, ResponseReceived)
        assert ev.tx is tx and ev.response.status == 486
        if proto == "tcp":
            # the responses came back over the connection we opened; it is reused
            assert client.flow_is_open(client.tcp_flow(server.local_tcp))
            assert len(client._conns) == 1
    finally:
        await client.close()
        await server.close()


@aio
async def test_tcp_connect_failure_reports_request_timeout() -> None:
    client, ctu = await make_server()
    # a port with nothing listening: bind a socket, note its port, close it
    probe = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    try:
        tx = client.send_request(outgoing("OPTIONS", ("127.0.0.1", port)), client.tcp_flow(("127.0.0.1", port)))
        ev = await next_of(ctu.queue, RequestTimeout)
        assert ev.tx is tx
        assert client.endpoint.transaction_count() == 0
    finally:
        await client.close()


@aio
async def test_on_event_exception_is_logged_and_transport_survives(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def boom(event: Event) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise RuntimeError("TU bug")
        assert isinstance(event, RequestReceived)
        transport.send_response(event.tx, make_response(event.request, 200, to_tag="x"))

    transport = SipTransport(SipEndpoint(), on_event=boom)
    await transport.start("127.0.0.1", 0)
    t, p = await udp_client(transport)
    try:
        t.sendto(options("first"))
        t.sendto(options("second"))
        got = await until_answer(p.queue, "second")
        assert got[-1].status == 200
        assert "TU bug" in caplog.text
    finally:
        t.close()
        await transport.close()


@aio
async def test_invite_gets_100_trying_from_the_timer() -> None:
    # a TU that never answers: the INVITE server transaction says 100 Trying by itself
    transport = SipTransport(SipEndpoint(), on_event=lambda e: None)
    await transport.start("127.0.0.1", 0)
    t, p = await udp_client(transport)
    try:
        invite = options("inv").replace(b"OPTIONS", b"INVITE")
        t.sendto(invite)
        [resp] = await until_answer(p.queue, "inv")
        assert resp.status == 100
    finally:
        t.close()
        await transport.close()
