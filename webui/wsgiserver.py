"""A small threaded WSGI server on the standard library (wsgiref), fit to face a LAN.

- A thread per connection, started when it comes: none wait idle (cheroot started 40 ahead).
- At most ``max_connections`` at once; past that a connection is answered 503 and closed at
  once by the accepting thread, never queued.
- One request per connection (``Connection: close``): an idle keep-alive connection would hold
  a thread, and a body with no length (a Server-Sent Events stream) ends with the connection.
- The request line and headers must all arrive within ``header_timeout`` however slowly they
  trickle (slowloris); after that each read of the body and each write of the answer may wait
  ``idle_timeout``. An answer itself may last as long as the app streams it.
- A body must say its length (no ``Transfer-Encoding``: bottle would read a chunked body
  unbounded) and stay within ``max_body``; the head as a whole within ``HEAD_BUDGET`` (else 431,
  or 414 when the request line alone passes it), besides http.server's limits (64 KiB a line,
  100 headers). A header line without a colon or folded onto the next is refused (400).
- Each chunk the app yields is flushed to the socket, with Nagle off: an SSE event leaves when
  it is made.
- Nothing is logged per request (a path may carry a secret, such as a network change's id).

    server = WebServer(("0.0.0.0", 8000), app, max_connections=40, max_body=1 << 20)  # binds
    server.serve_forever()  # until KeyboardInterrupt
    server.stop(timeout=2)  # after the app has ended its streams
"""

from __future__ import annotations

import io
import logging
import re
import socket
import socketserver
import sys
import threading
import time
from http import HTTPStatus
from typing import Any, Callable, Sequence
from urllib.parse import unquote
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

log = logging.getLogger("linebox.web")

LOCAL_ADDRESS = "linebox.local_address"  # environ key: the address the connection came in on
HEADER_TIMEOUT = 10.0  # seconds for the request line and all the headers together
IDLE_TIMEOUT = 30.0  # seconds any one read of a body or write of an answer may wait
MAX_LINE = 65536  # the request line, as http.server's handle_one_request (headers: http.client's)
# The whole head, request line included. http.server's own limits (100 lines of 64 KiB) let each
# connection buffer 6.4 MB before anyone logs in: 40 of them took the process from 21 to 181 MB.
# A browser's head is a few KiB (our session is one cookie); 32 KiB is what nginx's default
# large_client_header_buffers (4 of 8 KiB) hold. Not firmware.api.httpapi.MAX_REQUEST: that one
# cuts a loopback JSON API's head short to parse it, and its 8 KiB could refuse a browser sending
# the cookies of other admin pages on the same address (cookies ignore the port).
HEAD_BUDGET = 32 * 1024
WRITE_BUFFER = 64 * 1024  # status line, headers and the first chunk leave in one send
LINGER = 1.0  # seconds to read what a client still sends after its answer (see _linger)
LINGER_BYTES = 256 * 1024
_QUOTED_SLASH = re.compile("%2F", re.IGNORECASE)
_FIELD_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n")  # RFC 9112 §5: a token, then a colon


class _HeadTooLarge(Exception):
    """The request's head would pass ``HEAD_BUDGET`` bytes."""


class _Deadline(io.RawIOBase):
    """The socket as a readable file whose reads all end by ``deadline`` (a monotonic time) and
    together take at most ``budget`` bytes, or wait the socket's own timeout each, unbounded, once
    ``deadline`` is None."""

    def __init__(self, sock: socket.socket, deadline: float | None, budget: int) -> None:
        self.sock, self.deadline, self.budget = sock, deadline, budget

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request's head took too long")
            if self.budget <= 0:
                raise _HeadTooLarge()
            self.sock.settimeout(left)
            # A read stops at the budget rather than fill the buffer: a head within the budget is
            # then read whole (with perhaps the start of its body) before the budget runs out, so
            # only a larger head asks for more.
            got = self.sock.recv_into(buf, min(len(buf), self.budget))
            self.budget -= got
            return got
        return self.sock.recv_into(buf)


class _HeadReader(io.BufferedReader):
    """The buffered socket, adding to ``head`` each line read while the request's head is (under
    the deadline, so at most ``HEAD_BUDGET`` bytes of them)."""

    def __init__(self, raw: _Deadline, head: list[bytes]) -> None:
        super().__init__(raw)
        self.source, self.head = raw, head

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        if self.source.deadline is not None:
            self.head.append(line)
        return line


class _Answer(ServerHandler):
    """wsgiref's handler for one answer: our Server header, no process environment, the
    connection closed after it, and a client gone quiet or away dropped without a traceback."""

    server_software = "linebox-web"
    os_environ: dict[str, str] = {}  # wsgiref copies the whole process environment into each request

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        self.headers["Connection"] = "close"

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], OSError):  # timed out or reset mid-answer: nobody to answer
            return
        super().handle_error()

    def log_exception(self, exc_info: Any) -> None:
        log.error("answering a request failed", exc_info=exc_info)


class _Connection(WSGIRequestHandler):
    """One connection: reads the request's head under the deadline, refuses what the app must
    not see, and runs the app once."""

    server: WebServer
    server_version = "linebox-web"

    def setup(self) -> None:
        # StreamRequestHandler.setup, with the head read under one deadline and a write buffer.
        self.connection = self.request
        self.connection.settimeout(self.server.idle_timeout)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = _Deadline(self.connection, time.monotonic() + self.server.header_timeout, HEAD_BUDGET)
        self.head: list[bytes] = []  # the request line, the header lines and the empty line, as read
        self.rfile = _HeadReader(self.reader, self.head)
        self.wfile = self.connection.makefile("wb", WRITE_BUFFER)

    def handle(self) -> None:
        self.request_version = "HTTP/1.0"  # what a refusal before the request line is read answers in
        self.raw_requestline = b""
        try:
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
            if not self.raw_requestline:
                return  # connected and said nothing (a browser's preconnect)
            if len(self.raw_requestline) > MAX_LINE:
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.parse_request():
                return  # parse_request answered (400, 431, 505)
        except TimeoutError:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT)
            return
        except _HeadTooLarge:
            # Still in the request line (no line end yet), the URI is what is too long.
            whole = self.raw_requestline.endswith(b"\n")
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE if whole else HTTPStatus.REQUEST_URI_TOO_LONG)
            return
        self.reader.deadline = None
        self.connection.settimeout(self.server.idle_timeout)
        refused = self.refusal()
        if refused:
            self.send_error(refused)
            return
        answer = _Answer(self.rfile, self.wfile, sys.stderr, self.get_environ(), multithread=True)
        answer.http_version = "1.1" if self.request_version == "HTTP/1.1" else "1.0"
        answer.request_handler = self
        answer.error_headers = [("Content-Type", "text/plain"), *self.server.own_headers]
        answer.run(self.server.get_app())

    def get_environ(self) -> dict[str, Any]:
        env = super().get_environ()
        # An encoded slash stays encoded (as cheroot left it): to the routes it is part of a
        # name, never a separator, so "/voicemail/10%2F02" is no mailbox "10/02" and "..%2F"
        # climbs nothing.
        path = self.path.split("?", 1)[0]
        env["PATH_INFO"] = "%2F".join(unquote(part, "iso-8859-1") for part in _QUOTED_SLASH.split(path))
        # The box's own address the request came in on (the Host header is the client's word)
        env[LOCAL_ADDRESS] = self.connection.getsockname()[0]
        return env

    def refusal(self) -> HTTPStatus | None:
        """Why the app must not see this request, if it must not."""
        if self.request_version == "HTTP/0.9":
            return HTTPStatus.BAD_REQUEST  # an HTTP/0.9 answer has no headers, so no security headers
        # Each header line checked as it came, between the request line and the empty line: the
        # email parser under http.client takes a line without a colon for the end of the headers
        # (a Content-Length after it is never seen) or for an mbox "From " line, and keeps a folded
        # line's CR LF in the value. Its defects cannot tell: a multipart form's are about a body
        # it was not given, and a message/* type turns the leftover lines into a message.
        if not all(_FIELD_LINE.fullmatch(line) for line in self.head[1:-1]):
            return HTTPStatus.BAD_REQUEST
        if "Transfer-Encoding" in self.headers:
            return HTTPStatus.LENGTH_REQUIRED  # browsers never send one; bottle would read it unbounded
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or not all(v.isascii() and v.isdigit() for v in lengths):
            return HTTPStatus.BAD_REQUEST
        # Measured in digits first: int() refuses a number of more than 4300 digits (ValueError).
        if lengths and (len(lengths[0]) > len(str(self.server.max_body)) or int(lengths[0]) > self.server.max_body):
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE
        return None

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answers a request refused before the app saw it: a line of plain text with the app's
        headers (http.server's page is HTML and would lack them)."""
        status = HTTPStatus(code)
        if status is HTTPStatus.REQUEST_ENTITY_TOO_LARGE and explain is None:
            # the only word a browser gets of an upload refused before any page sees it
            explain = f"The largest upload this box takes is {self.server.max_body // (1 << 20)} MB."
        body = f"{status.value} {status.phrase}\n{explain + chr(10) if explain else ''}".encode()
        version = "HTTP/1.1" if self.request_version == "HTTP/1.1" else "HTTP/1.0"
        self.close_connection = True
        try:
            plain = [("Content-Type", "text/plain; charset=utf-8")]
            self.wfile.write(self.server.raw_answer(version, status, body, plain))
            self.wfile.flush()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no request log: the path may carry a secret, and a LAN could fill the journal


class WebServer(WSGIServer):
    """Binds at once (a port in use raises OSError here); ``serve_forever`` accepts and starts a
    thread per connection; ``stop`` closes the port and joins those threads."""

    request_queue_size = 32  # a page and its assets come as a burst of connections

    def __init__(self, address: tuple[str, int], app: Callable[..., Any], *, max_connections: int,
                 max_body: int, header_timeout: float = HEADER_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.max_body, self.header_timeout, self.idle_timeout = max_body, header_timeout, idle_timeout
        self.own_headers = tuple(headers)  # added to the answers the server makes itself (refusals, errors)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.live: dict[threading.Thread, socket.socket] = {}
        self.lock = threading.Lock()
        self.stopping = False
        super().__init__(address, _Connection)
        self.set_app(app)

    def server_bind(self) -> None:
        # TCPServer's bind, not HTTPServer's: that one asks the resolver for the host's name
        # (getfqdn), which on a box without DNS waits out a timeout before "ready".
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])
        self.setup_environ()

    @property
    def port(self) -> int:
        return self.server_port

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            self._turn_away(request)
            return
        thread = threading.Thread(target=self._serve, args=(request, client_address), name="web-conn", daemon=True)
        with self.lock:
            self.live[thread] = request
        try:
            thread.start()
        except BaseException:
            # No thread (RuntimeError "can't start new thread": out of memory or tasks), so no
            # _serve to give back the slot and the entry in live: given back here, or the cap
            # would shrink by one at each failure until every connection got 503.
            with self.lock:
                self.live.pop(thread, None)
            self.slots.release()
            self._turn_away(request)
            raise

    def _serve(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
            self._linger(request)
        except OSError:
            pass  # the client went away or stopped reading: nothing to tell anyone
        except Exception:
            log.exception("a connection failed")
        finally:
            self.shutdown_request(request)
            with self.lock:
                self.live.pop(threading.current_thread(), None)
            self.slots.release()

    def _linger(self, request: socket.socket) -> None:
        """Reads (and drops) what the client still sends before closing: closing a socket with
        unread data sends a reset, which can destroy the answer before the client reads it
        (a refused upload, an API call answered without its body)."""
        request.shutdown(socket.SHUT_WR)
        if self.stopping:
            return
        deadline, left = time.monotonic() + LINGER, LINGER_BYTES
        while left > 0 and (wait := deadline - time.monotonic()) > 0:
            request.settimeout(wait)
            data = request.recv(min(left, 65536))
            if not data:
                return
            left -= len(data)

    def raw_answer(self, version: str, status: HTTPStatus, body: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
        """An answer the server makes itself (a refusal before the app), with the app's headers."""
        fields = [("Server", _Connection.server_version), *headers, ("Content-Length", str(len(body))),
                  ("Connection", "close"), *self.own_headers]
        head = [f"{version} {status.value} {status.phrase}", *(f"{name}: {value}" for name, value in fields)]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body

    def _turn_away(self, request: socket.socket) -> None:
        """Past the cap: a 503 sent without waiting (it fits an empty send buffer), then closed."""
        answer = self.raw_answer("HTTP/1.1", HTTPStatus.SERVICE_UNAVAILABLE, b"", [("Retry-After", "2")])
        try:
            request.setblocking(False)
            request.recv(65536)  # what came of the request already: left unread, the close would reset
        except OSError:
            pass
        try:
            request.send(answer)
        except OSError:
            pass
        self.shutdown_request(request)

    def stop(self, timeout: float = 2.0) -> None:
        """Closes the port, then joins the connections' threads for up to ``timeout`` seconds
        (the app ends its streams first); one still there, say writing to a client that stopped
        reading, has its socket shut down under it and gets a moment more."""
        self.stopping = True
        self.server_close()
        deadline = time.monotonic() + timeout
        with self.lock:
            live = list(self.live.items())
        for thread, _ in live:
            thread.join(max(0.0, deadline - time.monotonic()))
        for thread, request in live:
            if thread.is_alive():
                try:
                    request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                thread.join(0.5)
