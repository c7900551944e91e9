"""The web process's memory: RSS when idle and with 10 live dashboards (SSE clients) open.

Run on demand (`scripts/test -m slow tests/web/test_memory.py -s`); prints the figures that
docs/web.md quotes and fails if they grow far past them.
"""
from __future__ import annotations

import http.client
import re
import socket
import time
from pathlib import Path

import pytest

from tests.web.conftest import PASSWORD

CLIENTS = 10


def _admin_session(web) -> str:
    """The wizard's first step over plain HTTP; returns the session cookie."""
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    conn.request("GET", "/setup/admin")
    r = conn.getresponse()
    page = r.read().decode()
    anon = re.search(r"lb_csrf=([^;]+)", r.getheader("Set-Cookie")).group(1)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = f"csrf={token}&username=admin&password={PASSWORD}&confirm={PASSWORD}"
    conn.request("POST", "/setup/admin", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Cookie": f"lb_csrf={anon}"})
    r = conn.getresponse()
    r.read()
    assert r.status == 303, r.status
    return re.search(r"lb_session=([^;]+)", r.getheader("Set-Cookie")).group(1)


def _get(web, path: str, session: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    conn.request("GET", path, headers={"Cookie": f"lb_session={session}"})
    r = conn.getresponse()
    r.read()
    return r.status


def _sse_client(web, session: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    s.sendall(f"GET /events/dashboard HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
              f"Cookie: lb_session={session}\r\n\r\n".encode())
    return s


def _read_events(s: socket.socket, count: int, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"event: live_health") < count:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        chunk = s.recv(65536)
        assert chunk, "the stream closed"
        data += chunk
        assert time.monotonic() < deadline, "no events"
    return data


def test_serving_pages_and_asking_the_box_never_loads_tls(box, web_factory):
    """ssl is 1.4 MB of an idle web admin held under 30 MB (webui/__main__.py,
    without_https_client): neither pages nor the box's API, plain HTTP both, may load it."""
    web = web_factory(box)
    session = _admin_session(web)
    for path in ("/setup/region", "/extensions", "/"):
        assert _get(web, path, session) in (200, 303)
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    conn.request("GET", "/ports", headers={"Cookie": f"lb_session={session}"})
    r = conn.getresponse()
    ports = r.read().decode()
    assert r.status == 200 and "did not say which ports" not in ports, ports  # the box answered
    maps = Path(f"/proc/{web.proc.pid}/maps").read_text()
    assert "_ssl." not in maps and "libssl" not in maps, [m for m in maps.splitlines() if "ssl" in m]


@pytest.mark.slow
def test_rss_idle_and_with_ten_sse_clients(box, web_factory):
    web = web_factory(box, "--sse-interval", "0.5")
    started = web.rss_kib()
    session = _admin_session(web)
    for path in ("/setup/region", "/extensions", "/audit", "/"):
        assert _get(web, path, session) in (200, 303)
    idle = web.rss_kib()

    clients = [_sse_client(web, session) for _ in range(CLIENTS)]
    try:
        for c in clients:
            head = _read_events(c, 2)
            assert b"text/event-stream" in head
        for c in clients:  # a few more rounds each, so every thread has rendered and settled
            _read_events(c, 3)
        streaming = web.rss_kib()
    finally:
        for c in clients:
            c.close()
    print(f"\nweb RSS: {started / 1024:.1f} MiB at start, {idle / 1024:.1f} MiB idle after pages, "
          f"{streaming / 1024:.1f} MiB with {CLIENTS} SSE clients")
    assert idle < 48 * 1024 and streaming < 56 * 1024, "see firmware.system.heap.tame_malloc"
