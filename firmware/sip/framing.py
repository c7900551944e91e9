"""Sans-I/O framing of SIP over a byte stream (RFC 3261 §18.3, RFC 5626 §3.5.1).

On TCP/TLS a message ends where its Content-Length says, so Content-Length is
mandatory there. `StreamFramer.feed(data)` takes whatever bytes arrived and returns
the complete messages cut out so far (each ready for `Message.parse`), keeping the
rest for the next call. Between messages it skips the CRLF keep-alives of RFC 5626:
a double CRLF "ping" is counted in `pings` so that the transport can answer each
with a single CRLF "pong"; a lone CRLF (a pong, or stray padding) is just skipped.

Errors raise `ParseError`: 400 for a missing, invalid or conflicting Content-Length;
513 when the buffered header section or the announced message exceeds the caps. A
response on the stream gets status None (never answered). In every case the framing
of the stream is lost, so the transport answers if it can and closes the connection.
"""

from __future__ import annotations

import re

from .message import MAX_MESSAGE, ParseError, _best_effort_headers

__all__ = ["StreamFramer"]

# A Content-Length (or compact "l") header line inside a header section, with optional
# whitespace before the colon and an optional fold before the value (RFC 3261 §7.3.1).
_CONTENT_LENGTH_RE = re.compile(
    rb"\r\n(?:content-length|l)[ \t]*:[ \t]*(?:\r\n[ \t]+)?([^\r\n]*)", re.IGNORECASE
)
_DIGITS_RE = re.compile(rb"[0-9]+")


class StreamFramer:
    """Cut a SIP byte stream into messages (one per connection, like h11's buffer).

    Args:
        max_buffer: most bytes held while waiting for the end of a message.
        max_message: largest message (headers + body) accepted.
    """

    def __init__(self, max_buffer: int = 65536, max_message: int = 65536) -> None:
        self.max_buffer = max_buffer
        self.max_message = min(max_message, max_buffer) if max_buffer else max_message
        self._buf = bytearray()
        self.pings = 0  #: RFC 5626 double-CRLF keep-alives seen so far (answer each with CRLF)
        self.error: ParseError | None = None  #: framing lost after the messages last returned

    def pop_pings(self) -> int:
        """Return and reset the count of keep-alive pings to answer."""
        n, self.pings = self.pings, 0
        return n

    @property
    def buffered(self) -> int:
        """Bytes held that are not a complete message yet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete messages now available, in order.

        Raises ParseError when the stream cannot be framed any more (see module doc).
        """
        if self.error is not None:
            raise self.error
        buf = self._buf
        buf += data
        out: list[bytes] = []
        try:
            self._split(buf, out)
        except ParseError as err:
            if not out:
                raise
            # Messages framed before the bad bytes are whole and get their answers first
            # (RFC 4475 dblreq over TCP); the error waits in `error` for the transport.
            self.error = err
        return out

    def _split(self, buf: bytearray, out: list[bytes]) -> None:
        while True:
            # keep-alives only ever come between messages (RFC 5626 §3.5.1)
            skip = 0
            while buf.startswith(b"\r\n", skip):
                if buf.startswith(b"\r\n\r\n", skip):
                    self.pings += 1
                    skip += 4
                elif len(buf) - skip < 4 and b"\r\n\r\n".startswith(bytes(buf[skip:])):
                    break  # maybe the first half of a ping: wait for more
                else:
                    skip += 2
            if skip:
                del buf[:skip]
            if not buf or buf.startswith(b"\r"):
                if len(buf) > 4:
                    # a CR not followed by LF at a message boundary: not SIP
                    raise self._error(bytes(buf), "garbage between messages", 400)
                return
            hend = buf.find(b"\r\n\r\n")
            if hend < 0:
                if len(buf) > self.max_message or len(buf) > self.max_buffer:
                    raise self._error(bytes(buf), "header section too large", 513)
                return
            head = bytes(buf[: hend + 2])
            length = self._content_length(head)
            total = hend + 4 + length
            if total > self.max_message:
                raise self._error(head, "message too large", 513)
            if len(buf) < total:
                return
            out.append(bytes(buf[:total]))
            del buf[:total]

    def _content_length(self, head: bytes) -> int:
        values = _CONTENT_LENGTH_RE.findall(head, head.find(b"\r\n"))
        if not values:
            raise self._error(head, "missing Content-Length on a stream", 400)
        first = values[0].strip(b" \t")
        if any(v.strip(b" \t") != first for v in values[1:]):
            raise self._error(head, "conflicting Content-Length headers", 400)
        if _DIGITS_RE.fullmatch(first) is None:
            raise self._error(head, "bad Content-Length", 400)
        return int(first) if len(first) <= 9 else MAX_MESSAGE * 1000

    @staticmethod
    def _error(head: bytes, detail: str, status: int) -> ParseError:
        is_request = not head.startswith(b"SIP/")
        headers = None
        if is_request:
            # best effort, so the transport can answer before closing
            end = head.find(b"\r\n\r\n")
            text = head[: end if end >= 0 else 16384].decode("utf-8", "surrogateescape")
            headers = _best_effort_headers(text.split("\r\n"))
        return ParseError(
            detail, status if is_request else None, headers=headers, is_request=is_request
        )
