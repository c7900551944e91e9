"""The box's local HTTP API: health and read-only status, for tests, monitoring and the web admin.

A deliberately tiny HTTP/1.0 responder on the event loop (one request per connection, capped
request size). GET routes take no arguments; POST actions take a small JSON object and are the
few things the web admin (its own process, see firmware.api.localapi) asks the running box to do.

It listens on loopback unless told otherwise (``linebox run --http-bind``) and authenticates
nobody: what the LAN may see goes through the web admin's ``/api/v1`` with its tokens. So that a
web page open in a browser on the box itself cannot use it either, every request must name this
machine by address (a DNS-rebinding page names a host of its own), and an action must be
``application/json`` exactly (a cross-site page can send ``text/plain`` without asking) and carry
the per-boot secret that only the box's user can read (firmware.api.running.API_SECRET_NAME).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
from typing import Any, Callable

from firmware.api.running import API_SECRET_HEADER

log = logging.getLogger(__name__)

Route = Callable[[], Any]
Action = Callable[[dict[str, Any]], Any]
MAX_REQUEST = 8192
MAX_BODY = 4096


class ActionError(Exception):
    """A POST action refused its input; carries the HTTP status to answer with."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class HttpApi:
    def __init__(self, routes: dict[str, Route], actions: dict[str, Action] | None = None, *,
                 secret: str = "") -> None:
        self.routes = routes
        self.actions: dict[str, Action] = dict(actions or {})
        self.secret = secret.encode()  # empty: no action is accepted at all
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._serve, host, port, reuse_address=True)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        body_bytes = b""
        length = _content_length(head)
        if length:
            try:
                async with asyncio.timeout(5):
                    body_bytes = await reader.readexactly(min(length, MAX_BODY + 1))
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
        peer = writer.get_extra_info("peername")
        status, body = self._answer(head[:MAX_REQUEST], body_bytes, local=_is_loopback(peer))
        data = json.dumps(body, indent=None, default=str).encode()
        writer.write(
            f"HTTP/1.0 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        try:
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    def _answer(self, head: bytes, body: bytes = b"", *, local: bool = True) -> tuple[str, Any]:
        try:
            method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
        except (UnicodeDecodeError, ValueError):
            return "400 Bad Request", {"error": "bad request line"}
        if not _host_is_an_address(_header(head, b"host")):
            return "421 Misdirected Request", {"error": "name this machine by its address (e.g. 127.0.0.1)"}
        if method == "POST":
            # Actions ban addresses and hang up calls: only for programs on this machine that can
            # read the box's secret (the web admin, the CLI), and only as JSON.
            if not local:
                return "403 Forbidden", {"error": "actions are accepted from this machine only"}
            if _media_type(_header(head, b"content-type")) != b"application/json":
                return "415 Unsupported Media Type", {"error": "send Content-Type: application/json"}
            given = _header(head, API_SECRET_HEADER.lower().encode())
            if not self.secret or not hmac.compare_digest(given, self.secret):
                return "403 Forbidden", {"error": f"send the box's per-boot secret (the data directory's "
                                                  f"api.secret) in {API_SECRET_HEADER}"}
            return self._act(target.split("?", 1)[0], body)
        if method != "GET":
            return "405 Method Not Allowed", {"error": "GET or POST only"}
        route = self.routes.get(target.split("?", 1)[0])
        if route is None:
            return "404 Not Found", {"error": f"no such path; try {', '.join(sorted(self.routes))}"}
        try:
            return "200 OK", route()
        except Exception:
            log.exception("HTTP %s failed", target)
            return "500 Internal Server Error", {"error": "internal error"}

    def _act(self, path: str, body: bytes) -> tuple[str, Any]:
        action = self.actions.get(path)
        if action is None:
            return "404 Not Found", {"error": f"no such action; try {', '.join(sorted(self.actions)) or 'none'}"}
        if len(body) > MAX_BODY:
            return "413 Payload Too Large", {"error": f"at most {MAX_BODY} bytes"}
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return "400 Bad Request", {"error": "the body is a JSON object"}
        if not isinstance(args, dict):
            return "400 Bad Request", {"error": "the body is a JSON object"}
        try:
            return "200 OK", action(args)
        except ActionError as exc:
            return exc.status, {"error": str(exc)}
        except Exception:
            log.exception("HTTP POST %s failed", path)
            return "500 Internal Server Error", {"error": "internal error"}


def _header(head: bytes, wanted: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == wanted:
            return value.strip()
    return b""


def _media_type(value: bytes) -> bytes:
    """The media type of a Content-Type value, without parameters (RFC 9110 §8.3.1)."""
    return value.split(b";", 1)[0].strip().lower()


def _host_is_an_address(host: bytes) -> bool:
    """Whether a Host header names a machine by address (or is absent, as HTTP/1.0 allows).

    A page that rebinds its own DNS name to 127.0.0.1 still sends that name; a program on this
    machine or the LAN that means the box uses its address (or "localhost").
    """
    if not host:
        return True
    text = host.decode("ascii", "replace").strip().lower()
    if text.startswith("["):  # [v6]:port
        text = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    if text == "localhost":
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _content_length(head: bytes) -> int:
    try:
        return max(0, int(_header(head, b"content-length") or 0))
    except ValueError:
        return 0


def _is_loopback(peer: Any) -> bool:
    host = peer[0] if isinstance(peer, tuple) and peer else ""
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")
