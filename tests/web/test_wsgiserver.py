"""webui.wsgiserver on a real socket with a small WSGI app: bytes in, bytes out.

What the web admin relies on it for: streamed chunks leave as they are made, a cap on
connections answered with 503 at once, a deadline and a size budget on the request's head
(slowloris), bodies bounded and malformed heads refused before the app sees them, and a stop
that joins the streaming threads.
"""
from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any, Iterator

import pytest

from webui.wsgiserver import HEAD_BUDGET, LOCAL_ADDRESS, WebServer


class App:
    """Answers ``/stream`` with one chunk per ``step`` set (until ``done``), anything else with
    the body it was sent; counts the requests it saw."""

    def __init__(self) -> None:
        self.step, self.done = threading.Event(), threading.Event()
        self.seen = 0

    def __call__(self, environ: dict[str, Any], start: Any) -> Iterator[bytes]:
        self.seen += 1
        if environ["PATH_INFO"] == "/stream":
            start("200 OK", [("Content-Type", "text/event-stream")])
            return self.stream()
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start("200 OK", [("Content-Type", "text/plain")])
        return iter([b"got " + body])

    def stream(self) -> Iterator[bytes]:
        n = 0
        while not self.done.is_set():
            n += 1
            yield b"data: %d\n\n" % n
            self.step.wait(5)
            self.step.clear()


@pytest.fixture
def served() -> Iterator[tuple[WebServer, App]]:
    app = App()
    server = WebServer(("127.0.0.1", 0), app, max_connections=2, max_body=100, header_timeout=0.5,
                       headers=[("X-Frame-Options", "DENY")])
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    loop.start()
    try:
        yield server, app
    finally:
        app.done.set()
        app.step.set()
        server.shutdown()
        server.stop(2)


def connect(server: WebServer, raw: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    s.sendall(raw)
    return s


def answer(server: WebServer, raw: bytes) -> bytes:
    with connect(server, raw) as s:
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def read_until(s: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    return data


def test_an_answer_closes_its_connection_and_names_the_server(served):
    server, app = served
    out = answer(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    head, body = out.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nServer: linebox-web\r\n" in head and b"\r\nConnection: close" in head
    assert body == b"got hello"


def test_a_stream_is_sent_chunk_by_chunk(served):
    server, app = served
    with connect(server, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") as s:
        assert b"data: 1\n\n" in read_until(s, b"data: 1\n\n")  # before the app makes the second
        app.step.set()
        assert read_until(s, b"data: 2\n\n").endswith(b"data: 2\n\n")


def test_past_the_cap_a_connection_gets_503_at_once(served):
    server, app = served
    streams = [connect(server, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(2)]
    try:
        for s in streams:
            read_until(s, b"data: 1")
        started = time.monotonic()
        out = answer(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 ") and b"X-Frame-Options: DENY" in out
        assert time.monotonic() - started < 1
    finally:
        for s in streams:
            s.close()


def test_a_slow_head_is_cut_off_at_the_deadline_however_it_trickles(served):
    server, app = served
    started = time.monotonic()
    with connect(server) as s:
        got = b""
        for byte in b"GET / HTTP/1.1\r\nHost: example\r\n":  # a byte every 50 ms: never idle for long
            try:
                s.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            s.setblocking(False)
            try:
                got += s.recv(1024)
            except BlockingIOError:
                pass
            s.setblocking(True)
            if got:
                break
        s.settimeout(5)
        got += s.recv(1024)
    assert got.split(b"\r\n", 1)[0].endswith(b" 408 Request Timeout"), got
    assert time.monotonic() - started < 1.5  # the 0.5 s deadline, not 0.5 s per byte
    assert app.seen == 0


@pytest.mark.parametrize("head, status", [
    (b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", b"413"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", b"411"),
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\nhello", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", b"413"),  # past int()'s 4300 digits
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"414"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", b"431"),
])
def test_bodies_and_heads_past_the_limits_never_reach_the_app(served, head, status):
    server, app = served
    out = answer(server, head)
    assert out.split(b"\r\n", 1)[0].split(b" ")[1] == status, out[:200]
    assert b"X-Frame-Options: DENY" in out
    assert app.seen == 0
    if status == b"413":  # the browser's only word of an upload refused unread: the limit
        assert b"The largest upload this box takes is" in out, out


@pytest.mark.parametrize("size, status", [(HEAD_BUDGET, b"200"), (HEAD_BUDGET + 1, b"431")])
def test_a_head_is_held_to_its_budget_in_all_though_each_line_is_within_the_limits(served, size, status):
    server, app = served
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    lines = b"".join(b"X-%02d: %s\r\n" % (i, b"a" * 1000) for i in range(size // 1000 - 2))  # ~1 KB each
    last = b"X-Last: " + b"a" * (size - len(head) - len(lines) - len(b"X-Last: \r\n\r\n")) + b"\r\n\r\n"
    assert len(head + lines + last) == size
    out = answer(server, head + lines + last + b"hello")  # the body comes with the head, read with it
    assert out.split(b"\r\n", 1)[0].split(b" ")[1] == status, out[:200]
    if status == b"200":
        assert out.endswith(b"got hello") and app.seen == 1
    else:
        assert b"X-Frame-Options: DENY" in out and app.seen == 0


@pytest.mark.parametrize("head", [
    b"POST / HTTP/1.1\r\nHost: x\r\nNo colon\r\nContent-Length: 101\r\n\r\n",  # the rest: a "payload"
    b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",  # folded: X-A would be "b\r\n c"
    b"GET / HTTP/1.1\r\n X-A: b\r\nHost: x\r\n\r\n",  # folded onto nothing
    b"GET / HTTP/1.1\r\nX-A : b\r\nHost: x\r\n\r\n",  # a space before the colon
    b"GET / HTTP/1.1\r\nFrom x\r\nHost: x\r\n\r\n",  # taken for an mbox "From " line
])
def test_a_malformed_header_line_never_reaches_the_app(served, head):
    server, app = served
    out = answer(server, head)
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert b"X-Frame-Options: DENY" in out
    assert app.seen == 0


@pytest.mark.parametrize("content_type", [b"multipart/form-data; boundary=b", b"message/rfc822"])
def test_a_well_formed_head_reaches_the_app_whatever_its_content_type(served, content_type):
    server, app = served
    # The email parser reads a head's Content-Type as MIME: these leave it defects and payloads.
    out = answer(server, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\nContent-Length: 5\r\n"
                         b"\r\nhello" % content_type)
    assert out.startswith(b"HTTP/1.1 200 ") and out.endswith(b"got hello"), out[:200]


def test_a_connection_whose_thread_cannot_start_gives_its_slot_back(served, monkeypatch):
    server, app = served

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    for _ in range(3):  # more than the cap of 2: each must give its slot back
        out = answer(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503 ") and b"X-Frame-Options: DENY" in out, out[:200]
    monkeypatch.undo()
    assert not server.live
    streams = [connect(server, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(2)]
    try:
        for s in streams:
            assert read_until(s, b"data: 1").startswith(b"HTTP/1.1 200 ")
    finally:
        for s in streams:
            s.close()


def test_stop_joins_the_streams_the_app_has_ended(served):
    server, app = served
    with connect(server, b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") as s:
        read_until(s, b"data: 1")
        streams = list(server.live)  # this server's (another test's may still be lingering)
        assert streams
        server.shutdown()
        app.done.set()
        app.step.set()
        started = time.monotonic()
        server.stop(2)
        assert time.monotonic() - started < 1.9, "joined, not given up on at the timeout"
        assert not any(t.is_alive() for t in streams) and not server.live


def test_a_port_in_use_is_refused_when_built():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError) as exc:
            WebServer(("127.0.0.1", taken.getsockname()[1]), App(), max_connections=1, max_body=0)
        assert exc.value.errno == errno.EADDRINUSE


def test_an_encoded_slash_stays_encoded_in_the_path():
    seen: list[str] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append(environ["PATH_INFO"])
        start("200 OK", [])
        return []

    server = WebServer(("127.0.0.1", 0), app, max_connections=1, max_body=0)
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    loop.start()
    try:
        answer(server, b"GET /a/..%2F..%2fdb/%41%20b?x=%2F HTTP/1.1\r\n\r\n")
    finally:
        server.shutdown()
        server.stop(2)
    assert seen == ["/a/..%2F..%2Fdb/A b"]


def test_the_app_learns_the_address_the_connection_came_in_on_not_the_one_host_names():
    """The network page's confirmation must come over the new address: the Host header a client
    sends could name it while the request came in over the old one."""
    seen: list[tuple[str, str]] = []

    def app(environ: dict[str, Any], start: Any) -> list[bytes]:
        seen.append((environ[LOCAL_ADDRESS], environ.get("HTTP_HOST", "")))
        start("200 OK", [])
        return []

    server = WebServer(("127.0.0.2", 0), app, max_connections=1, max_body=0)
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    loop.start()
    try:
        with socket.create_connection(("127.0.0.2", server.server_address[1]), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 198.51.100.3\r\n\r\n")
            while s.recv(65536):
                pass
    finally:
        server.shutdown()
        server.stop(2)
    assert seen == [("127.0.0.2", "198.51.100.3")]
