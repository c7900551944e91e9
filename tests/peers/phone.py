"""The test-side API of a pjsua2 SIP phone (the peer itself runs in phone_agent.py).

    with Phone("alice", log_dir=tmp_path) as a, Phone("bob", log_dir=tmp_path) as b:
        a.call(f"sip:bob@127.0.0.1:{b.sip_port}")
        b.wait_incoming(); b.answer()
        a.wait_state("CONFIRMED")

Every wait has a timeout; a timeout error carries the tail of the phone's pjsua log
so a failure can be read without re-running. Events from the agent are kept in
order; `wait_state` looks at the history of the current call, so a state that
was passed before the wait started still counts.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tests.peers.audio import write_tone_wav

AGENT = Path(__file__).with_name("phone_agent.py")
LOG_TAIL_LINES = 40


class PhoneError(AssertionError):
    """A phone command failed or a wait timed out; the message includes the log tail."""


class Phone:
    """A pjsua2 phone in a subprocess; a context manager that kills the agent on exit."""

    def __init__(self, name: str, *, codecs: list[str] | tuple[str, ...] = ("PCMU", "PCMA"),
                 transport: str = "udp", log_dir: Path | None = None, log_level: int = 5,
                 start_timeout: float = 15.0):
        self.name = name
        self.codecs = list(codecs)
        self.transport = transport
        self.log_dir = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="phone-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{name}.pjsua.log"
        self.stderr_path = self.log_dir / f"{name}.agent.stderr"
        self.server: str | None = None
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._call_seq: int | None = None  # the call that wait_state/call_info are about
        self._eof = False
        self._stderr = open(self.stderr_path, "ab")
        self._proc = subprocess.Popen(
            [sys.executable, str(AGENT), "--name", name, "--codecs", ",".join(self.codecs),
             "--transport", transport, "--log-file", str(self.log_path),
             "--log-level", str(log_level)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
            cwd=str(self.log_dir))
        self._reader = threading.Thread(target=self._read, name=f"phone-{name}", daemon=True)
        self._reader.start()
        try:
            ready = self._wait_event(lambda e: e.get("event") == "ready", start_timeout, "agent ready")
        except BaseException:
            self.kill()
            self._stderr.close()
            raise
        self.sip_port: int = int(ready["sip_port"])

    # -- plumbing -------------------------------------------------------------------
    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            try:
                msg = json.loads(raw)
            except json.JSONDecodeError:
                msg = {"event": "garbage", "line": raw.decode(errors="replace")}
            with self._cond:
                if "id" in msg and "event" not in msg:
                    self._replies[msg["id"]] = msg
                else:
                    self._events.append(msg)
                    if msg.get("event") == "incoming":
                        self._call_seq = msg["call"]
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of pjsua's log and of the agent's stderr."""
        out = []
        for path in (self.log_path, self.stderr_path):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"--- {path} (last {len(text)} lines) ---")
            out.extend(text)
        return "\n".join(out)

    def _fail(self, what: str) -> PhoneError:
        rc = self._proc.poll()
        alive = "agent alive" if rc is None else f"agent exited rc={rc}"
        return PhoneError(f"phone {self.name}: {what} ({alive})\n{self.log_tail()}")

    def _cmd(self, cmd: str, timeout: float = 10.0, **args: Any) -> Any:
        mid = next(self._ids)
        line = json.dumps({"id": mid, "cmd": cmd, **args}) + "\n"
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as e:
            raise self._fail(f"{cmd}: cannot reach the agent: {e}") from None
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    raise self._fail(f"no reply to {cmd} within {timeout:g}s")
                self._cond.wait(left)
            reply = self._replies.pop(mid)
        if not reply.get("ok"):
            raise self._fail(f"{cmd} {args}: {reply.get('error')}")
        return reply.get("result")

    def _wait_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str,
                    start: int = 0) -> dict[str, Any]:
        """The first event from index `start` on that satisfies `pred`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self._events[start:]:
                    if pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    seen = [e for e in self._events if e.get("event") != "garbage"][-10:]
                    raise self._fail(f"timed out after {timeout:g}s waiting for {what}; "
                                     f"last events: {seen}")
                self._cond.wait(left)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """A copy of the events received so far (optionally of one kind)."""
        with self._cond:
            return [e for e in self._events if kind is None or e.get("event") == kind]

    # -- registration -------------------------------------------------------------------
    def register(self, *, server: str, user: str, password: str, timeout: float = 10,
                 expires: int = 300, mwi_subscribe: int = 0) -> int:
        """REGISTER at `server` ("host:port"); returns the final status code (200, 401, 403...).

        Credentials use realm "*", so the phone answers any digest challenge. `mwi_subscribe`
        (seconds): the phone also SUBSCRIBEs to its mailbox for that long.
        """
        self.server = server
        start = len(self.events())
        self._cmd("register", server=server, user=user, password=password, expires=expires,
                  mwi_subscribe=mwi_subscribe)
        ev = self._wait_event(lambda e: e.get("event") == "reg_state" and e.get("account") == "reg",
                              timeout, f"REGISTER to {server}", start)
        return int(ev["code"])

    def unregister(self, timeout: float = 10) -> int:
        """REGISTER with expires 0; returns the final status code."""
        start = len(self.events())
        self._cmd("unregister")
        ev = self._wait_event(lambda e: e.get("event") == "reg_state" and e.get("account") == "reg",
                              timeout, "un-REGISTER", start)
        return int(ev["code"])

    # -- calls ---------------------------------------------------------------------------
    def call(self, uri: str) -> None:
        """Make a call. A bare extension ("201") is sent to the registrar's domain."""
        if not uri.startswith(("sip:", "sips:", "tel:")):
            if self.server is None:
                raise PhoneError(f"phone {self.name}: bare number {uri!r} without a registrar")
            uri = f"sip:{uri}@{self.server}" + (";transport=tcp" if self.transport == "tcp" else "")
        seq = self._cmd("call", uri=uri)
        with self._cond:
            self._call_seq = seq

    def wait_incoming(self, timeout: float = 10) -> dict[str, Any]:
        """Wait for an incoming call not yet taken; returns {"from", "to", "call_id", "call"}."""
        taken = getattr(self, "_taken_incoming", set())
        ev = self._wait_event(lambda e: e.get("event") == "incoming" and e["call"] not in taken,
                              timeout, "an incoming call")
        taken.add(ev["call"])
        self._taken_incoming = taken
        with self._cond:
            self._call_seq = ev["call"]
        return ev

    def answer(self, code: int = 200) -> None:
        self._cmd("answer", code=code)

    def reject(self, code: int = 486) -> None:
        self._cmd("reject", code=code)

    def hangup(self) -> None:
        self._cmd("hangup")

    def wait_state(self, state: str, timeout: float = 10) -> dict[str, Any]:
        """Wait until the current call has reached `state` ("EARLY", "CONFIRMED",
        "DISCONNECTED", ...); returns that call_state event (code, reason, remote_uri)."""
        state = state.upper()
        with self._cond:
            seq = self._call_seq
        if seq is None:
            raise PhoneError(f"phone {self.name}: no call to wait on")
        return self._wait_event(
            lambda e: e.get("event") == "call_state" and e.get("call") == seq and e.get("state") == state,
            timeout, f"call {seq} state {state}")

    def call_info(self) -> dict[str, Any] | None:
        """State, remote URI, negotiated codec (e.g. "PCMU"), remote RTP "ip:port", media
        status/direction and payload types of the current call; None without a call."""
        return self._cmd("call_info")

    def stream_stat(self) -> dict[str, int] | None:
        """RTP counters of the current call: rx_pkt, rx_bytes, rx_loss, tx_pkt, tx_bytes."""
        return self._cmd("stream_stat")

    def wait_rx_packets(self, count: int, timeout: float = 10) -> dict[str, int]:
        """Wait until the current call has received `count` RTP packets (50 per second
        at 20 ms): the way to let audio flow for a while without a fixed sleep."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stream_stat()
            if st is not None and st["rx_pkt"] >= count:
                return st
            if time.monotonic() >= deadline:
                raise self._fail(f"timed out after {timeout:g}s waiting for {count} RTP packets; "
                                 f"stats {st}")
            time.sleep(0.05)

    def hold(self) -> None:
        """re-INVITE with a=sendonly."""
        self._cmd("hold")

    def unhold(self) -> None:
        """re-INVITE with a=sendrecv."""
        self._cmd("unhold")

    def transfer(self, uri: str) -> None:
        """Blind-transfer the other party of the current call to ``uri`` (SIP REFER)."""
        self._cmd("transfer", uri=uri)

    def consult(self, uri: str) -> None:
        """Hold the current call and call ``uri``; the new call becomes the current one."""
        if not uri.startswith(("sip:", "sips:", "tel:")):
            uri = f"sip:{uri}@{self.server}" + (";transport=tcp" if self.transport == "tcp" else "")
        seq = self._cmd("consult", uri=uri)
        with self._cond:
            self._consulted_from = self._call_seq
            self._call_seq = seq

    def transfer_attended(self) -> None:
        """Join the held call's party with the current (consultation) call's (REFER/Replaces)."""
        self._cmd("transfer_attended")

    def wait_held_state(self, state: str, timeout: float = 10) -> dict[str, Any]:
        """Like wait_state, for the call put on hold by consult()."""
        seq = self._consulted_from
        return self._wait_event(
            lambda e: e.get("event") == "call_state" and e.get("call") == seq and e.get("state") == state.upper(),
            timeout, f"held call {seq} state {state}")

    def set_auto_ringing(self, on: bool) -> None:
        """Whether an incoming INVITE is answered with 180 Ringing at once (default on)."""
        self._cmd("auto_ringing", on=on)

    # -- media ---------------------------------------------------------------------------
    def play_tone(self, freq: float | tuple[float, ...], seconds: float = 2.0,
                  amplitude: float = 0.3) -> Path:
        """Loop a generated tone into the call's audio (now, or when media starts)."""
        fs = (freq,) if isinstance(freq, (int, float)) else tuple(freq)
        wav = self.log_dir / f"{self.name}-tone-{'-'.join(f'{f:g}' for f in fs)}.wav"
        write_tone_wav(wav, fs, seconds, amplitude=amplitude)
        self._cmd("play", path=str(wav))
        return wav

    def play_wav(self, path: Path) -> None:
        """Loop a WAV file (16-bit mono PCM) into the call's audio."""
        self._cmd("play", path=str(path))

    def stop_play(self) -> None:
        self._cmd("stop_play")

    def record(self, path: Path) -> None:
        """Record what the phone hears from the call to a WAV file (until stop_record)."""
        self._cmd("record", path=str(path))

    def stop_record(self) -> None:
        """Stop recording and close the WAV file."""
        self._cmd("stop_record")

    def send_dtmf(self, digits: str, method: str = "rfc2833") -> None:
        """Send digits as RFC 4733 events ("rfc2833"/"rfc4733"), SIP INFO ("info") or
        in-band tones ("inband")."""
        self._cmd("dtmf", digits=digits, method=method)

    def dtmf_received(self) -> str:
        """The digits received so far (RFC 4733 or SIP INFO), across calls."""
        return self._cmd("dtmf_received")

    def clear_dtmf(self) -> None:
        self._cmd("clear_dtmf")

    def wait_dtmf(self, digits: str, timeout: float = 10) -> str:
        """Wait until the received digits end with `digits`; returns all received."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.dtmf_received()
            if got.endswith(digits):
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._fail(f"timed out after {timeout:g}s waiting for DTMF {digits!r}, got {got!r}")
            start = len(self.events())
            try:
                self._wait_event(lambda e: e.get("event") == "dtmf", min(left, 1.0), "dtmf", start)
            except PhoneError:
                if self._eof:
                    raise

    # -- life ----------------------------------------------------------------------------
    def close(self, timeout: float = 5.0) -> None:
        """Hang up, let the agent leave, kill it if it does not."""
        if self._proc.poll() is None:
            try:
                self._cmd("close", timeout=timeout)
            except PhoneError:
                self.kill()  # a wedged or dead agent: nothing to say goodbye to
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        for f in (self._proc.stdin, self._proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        self._stderr.close()

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> "Phone":
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.close()
        finally:
            self.kill()

    def __repr__(self) -> str:
        return f"Phone({self.name!r}, sip_port={getattr(self, 'sip_port', None)}, pid={self._proc.pid})"
