"""The box's local HTTP API: health and read-only status, for tests, monitoring and the web admin.

A deliberately tiny HTTP/1.0 responder on the event loop (GET only, one request per
connection, capped request size); the web admin will be its own process and talk to this.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

Route = Callable[[], Any]
MAX_REQUEST = 8192


class HttpApi:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
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
        status, body = self._answer(head[:MAX_REQUEST])
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

    def _answer(self, head: bytes) -> tuple[str, Any]:
        try:
            method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
        except (UnicodeDecodeError, ValueError):
            return "400 Bad Request", {"error": "bad request line"}
        if method != "GET":
            return "405 Method Not Allowed", {"error": "GET only"}
        route = self.routes.get(target.split("?", 1)[0])
        if route is None:
            return "404 Not Found", {"error": f"no such path; try {', '.join(sorted(self.routes))}"}
        try:
            return "200 OK", route()
        except Exception:
            log.exception("HTTP %s failed", target)
            return "500 Internal Server Error", {"error": "internal error"}
