"""The box's local HTTP API is the box's own business: in a network namespace of its own (a veth
pair, nothing leaves the machine), `linebox run --bind 0.0.0.0` answers SIP on the namespace's
LAN address while its HTTP API answers on loopback only; its actions are refused without the
per-boot secret or as anything but JSON; and an API an admin deliberately puts on the LAN with
`--http-bind` still takes no action from it."""
from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from firmware.api.localapi import BoxUnreachable, LocalApi
from tests.e2e.box import LINEBOX, REPO, run_cli
from tests.peers.netns import veth_namespace

BOX_SIDE, HOST_SIDE = "203.0.113.2", "203.0.113.1"  # TEST-NET-3, inside our own veth pair (the network
# page's test uses TEST-NET-2 on another pair: the two may run at once)
SIP, HTTP = 5060, 8080  # the defaults: the namespace is ours, nothing else listens there


@pytest.fixture
def netns() -> Iterator[str]:
    with veth_namespace("lbapi", host=HOST_SIDE, inside=BOX_SIDE) as (ns, _):
        yield ns


class NetnsBox:
    """`linebox run` inside the namespace, on the default ports of every interface there."""

    def __init__(self, ns: str, data: Path, log: Path, *extra: str) -> None:
        self.ns, self.data = ns, data
        argv = ["ip", "netns", "exec", ns, str(LINEBOX), "--data", str(data), "run", "--bind", "0.0.0.0",
                "--rtp-ports", "20000-20099", *extra]
        self.log = log
        start = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=open(log, "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while "linebox: ready" not in log.read_text()[start:]:
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)

    def inside(self, method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None
               ) -> tuple[int, dict]:
        """An HTTP request made by a program inside the namespace (on the box itself)."""
        script = ("import json, sys, urllib.request, urllib.error\n"
                  "a = json.loads(sys.argv[1])\n"
                  "req = urllib.request.Request(a['url'], method=a['method'], headers=a['headers'],\n"
                  "                             data=a['body'].encode() if a['body'] is not None else None)\n"
                  "try:\n"
                  "    r = urllib.request.urlopen(req, timeout=5); print(r.status, r.read().decode())\n"
                  "except urllib.error.HTTPError as e:\n"
                  "    print(e.code, e.read().decode())\n")
        arg = json.dumps({"url": url, "method": method, "headers": headers or {},
                          "body": body.decode() if body is not None else None})
        out = subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-c", script, arg],
                             capture_output=True, text=True, timeout=20)
        assert out.returncode == 0, out.stderr
        status, _, text = out.stdout.partition(" ")
        return int(status), json.loads(text)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def _tcp_connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


def _options(host: str, port: int) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST_SIDE, 0))
        s.settimeout(5)
        me = s.getsockname()
        s.sendto((f"OPTIONS sip:{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK-api1\r\n"
                  f"From: <sip:probe@{me[0]}>;tag=1\r\nTo: <sip:{host}>\r\nCall-ID: api-probe\r\nCSeq: 1 OPTIONS\r\n"
                  "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), (host, port))
        return s.recv(4096)


def test_the_local_api_is_on_loopback_and_takes_no_action_without_the_secret(netns: str, tmp_path: Path):
    data = tmp_path / "data"
    assert run_cli(data, "init").returncode == 0
    box = NetnsBox(netns, data, tmp_path / "box.log")
    try:
        # The box is there on the LAN address: SIP answers...
        assert _options(BOX_SIDE, SIP).startswith(b"SIP/2.0 "), "the box is not reachable at all"
        # ... and its API is not: nobody on the LAN reads registrations or security events.
        assert not _tcp_connects(BOX_SIDE, HTTP)
        assert json.loads((data / "run.json").read_text())["api"] == f"http://127.0.0.1:{HTTP}"
        local = f"http://127.0.0.1:{HTTP}"
        assert box.inside("GET", local + "/health")[0] == 200
        assert box.inside("GET", local + "/api/security-events") == (200, [])

        secret_file = data / "api.secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text().strip()
        assert len(secret) >= 40
        ban = json.dumps({"ip": "203.0.113.77", "user": "x"}).encode()
        json_type = {"Content-Type": "application/json"}
        for headers in ({}, {"X-LineBox-Secret": "not-it"}, {"X-LineBox-Secret": secret[:-1]}):
            status, body = box.inside("POST", local + "/api/auth-failure", body=ban, headers={**json_type, **headers})
            assert status == 403 and "X-LineBox-Secret" in body["error"], (headers, status, body)
        for ctype in ("text/plain", "text/plain; charset=application/json", "application/x-www-form-urlencoded"):
            status, _ = box.inside("POST", local + "/api/auth-failure", body=ban,
                                   headers={"Content-Type": ctype, "X-LineBox-Secret": secret})
            assert status == 415, ctype
        # A page that rebinds its own name to 127.0.0.1 is told apart by the name it sends.
        assert box.inside("GET", local + "/api/registrations", headers={"Host": f"rebind.example:{HTTP}"})[0] == 421
        assert box.inside("GET", local + "/api/security-events") == (200, [])  # nothing was counted

        # With the secret, as JSON, the action is taken: the failure is counted.
        status, _ = box.inside("POST", local + "/api/auth-failure", body=ban,
                               headers={**json_type, "X-LineBox-Secret": secret})
        assert status == 200
        assert [e["source"] for e in box.inside("GET", local + "/api/security-events")[1]] == ["203.0.113.77:0"]
    finally:
        box.stop()
    # A new boot, a new secret: the old one no longer opens anything.
    box = NetnsBox(netns, data, tmp_path / "box.log", "--http-bind", "0.0.0.0")
    try:
        assert (data / "api.secret").read_text().strip() != secret
        # Put on the LAN on purpose, it can be read from there, but no action is taken from there.
        assert _tcp_connects(BOX_SIDE, HTTP)
        req = (f"POST /api/auth-failure HTTP/1.0\r\nHost: {BOX_SIDE}:{HTTP}\r\nContent-Type: application/json\r\n"
               f"X-LineBox-Secret: {(data / 'api.secret').read_text().strip()}\r\nContent-Length: {len(ban)}\r\n\r\n")
        with socket.create_connection((BOX_SIDE, HTTP), timeout=5) as s:
            s.sendall(req.encode() + ban)
            answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.0 403") and b"this machine only" in answer, answer
    finally:
        box.stop()


@pytest.mark.parametrize("api", ["http://127.0.0.1:99999", "http://127.0.0.1:api", "http://[::1:8080"])
def test_a_malformed_api_url_leaves_the_box_unreachable_to_the_web_admin(tmp_path: Path, api: str):
    """The web admin shows an unreachable box (not a 500) when its --api cannot even be parsed."""
    with pytest.raises(BoxUnreachable, match="must be an http:// URL"):
        LocalApi(tmp_path, api).health()
