"""The DAHDI driver: analog ports of Linux DAHDI cards (Digium/Sangoma TDM, OpenVox, ...).

Each configured channel is opened as ``/dev/dahdi/channel`` and bound with ``DAHDI_SPECIFY``;
``DAHDI_SET_BLOCKSIZE`` 160 makes every read and write one 20 ms G.711 frame;
``DAHDI_GET_PARAMS`` says what the channel is; ``DAHDI_SETLAW`` picks the region's law and
``DAHDI_SETLINEAR`` 0 keeps the frames G.711. Naming is from the card's side: a channel with
*FXO signalling* (``fxoks``/``fxols`` in system.conf) drives a phone -- our FXS port -- and
one with *FXS signalling* sits on a CO line -- our FXO port.

Threads (STYLE.md §8). One reader thread polls every channel (``POLLIN`` audio, ``POLLPRI``
event; a read failing with ``ELAST`` also means "event pending") and only enqueues what it
got onto the loop with ``loop.call_soon_threadsafe``. On the loop: events are mapped to
``board.port`` events, each frame read goes to ``on_audio(port, frame)`` and is answered by
writing the port's next outgoing frame (so the card's own clock paces our audio). Commands
are ioctls from the loop (they return at once).

The OS is one small injectable object (``LinuxOs``: open/ioctl/read/write/close/poll); tests
put a fake kernel there that checks the ioctl numbers and struct bytes and produces events
and audio, and everything above it is the real driver.

ioctl numbers and structs follow dahdi-linux ``include/dahdi/user.h`` (DAHDI_CODE 0xDA, e.g.
``#define DAHDI_SPECIFY _IOW(DAHDI_CODE, 38, int)``), encoded as Linux
``include/uapi/asm-generic/ioctl.h`` does (nr 8 bits, type 8, size 14, dir 2: write 1, read 2),
which arm64 and x86 share.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import struct
import threading
from collections.abc import Iterable, Mapping
from typing import Protocol

from board import port
from board.callerid import REGIONS as CID_REGIONS, CallerIdSender
from board.driver import FRAME, Driver, DriverError, DriverPort
from board.regions import CID_CAR, RegionProfile, region as region_profile

__all__ = ["DahdiDriver", "LinuxOs", "OsBoundary", "ioc", "IOW", "IOR", "IOWR",
           "DAHDI_CODE", "PARAMS", "RING_CADENCE", "VMWI_INFO"]


# --- include/uapi/asm-generic/ioctl.h -------------------------------------------------------

_IOC_NRSHIFT, _IOC_TYPESHIFT, _IOC_SIZESHIFT, _IOC_DIRSHIFT = 0, 8, 16, 30
_IOC_NONE, _IOC_WRITE, _IOC_READ = 0, 1, 2


def ioc(direction: int, kind: int, nr: int, size: int) -> int:
    if not 0 <= size < 1 << 14:
        raise ValueError("ioctl argument too large")
    return (direction << _IOC_DIRSHIFT) | (size << _IOC_SIZESHIFT) | (kind << _IOC_TYPESHIFT) \
        | (nr << _IOC_NRSHIFT)


def IOW(kind: int, nr: int, size: int) -> int:
    return ioc(_IOC_WRITE, kind, nr, size)


def IOR(kind: int, nr: int, size: int) -> int:
    return ioc(_IOC_READ, kind, nr, size)


def IOWR(kind: int, nr: int, size: int) -> int:
    return ioc(_IOC_READ | _IOC_WRITE, kind, nr, size)


# --- dahdi-linux include/dahdi/user.h ---------------------------------------------------------

DAHDI_CODE = 0xDA
INT = struct.Struct("=i")
# struct dahdi_params: channo, spanno, chanpos, sigtype, sigcap, rxisoffhook, rxbits, txbits,
# txhooksig, rxhooksig, curlaw, idlebits (12 ints), char name[40], prewinktime, preflashtime,
# winktime, flashtime, starttime, rxwinktime, rxflashtime, debouncetime, pulsebreaktime,
# pulsemaketime, pulseaftertime (11 ints), __u32 chan_alarms -- 136 bytes, no padding
PARAMS = struct.Struct("=12i40s11iI")
DAHDI_MAX_CADENCE = 16
RING_CADENCE = struct.Struct(f"={DAHDI_MAX_CADENCE}i")   # struct dahdi_ring_cadence
VMWI_INFO = struct.Struct("=I")                           # struct dahdi_vmwi_info

DAHDI_SET_BLOCKSIZE = IOW(DAHDI_CODE, 1, INT.size)
DAHDI_FLUSH = IOW(DAHDI_CODE, 3, INT.size)
DAHDI_GET_PARAMS = IOWR(DAHDI_CODE, 5, PARAMS.size)
DAHDI_HOOK = IOW(DAHDI_CODE, 7, INT.size)
DAHDI_GETEVENT = IOR(DAHDI_CODE, 8, INT.size)
DAHDI_IOMUX = IOWR(DAHDI_CODE, 9, INT.size)
DAHDI_SPECIFY = IOW(DAHDI_CODE, 38, INT.size)
DAHDI_SETLAW = IOW(DAHDI_CODE, 39, INT.size)
DAHDI_SETLINEAR = IOW(DAHDI_CODE, 40, INT.size)
DAHDI_SETCADENCE = IOW(DAHDI_CODE, 42, RING_CADENCE.size)
DAHDI_ONHOOKTRANSFER = IOW(DAHDI_CODE, 51, INT.size)   # ms of audio while on hook
DAHDI_SETPOLARITY = IOW(DAHDI_CODE, 92, INT.size)
DAHDI_VMWI = IOWR(DAHDI_CODE, 94, INT.size)      # value: messages waiting (0 = off)
DAHDI_VMWI_CONFIG = IOW(DAHDI_CODE, 95, VMWI_INFO.size)

ELAST = 500           # read() fails with this errno while an event is pending

DAHDI_LAW_MULAW, DAHDI_LAW_ALAW = 1, 2
DAHDI_ONHOOK, DAHDI_OFFHOOK, DAHDI_WINK, DAHDI_FLASH, DAHDI_START, DAHDI_RING, DAHDI_RINGOFF \
    = 0, 1, 2, 3, 4, 5, 6
DAHDI_FLUSH_BOTH = 3

DAHDI_SIG_BROKEN = 1 << 31
SIG_FXO_BIT = 1 << 12      # __DAHDI_SIG_FXO: the channel signals as an FXO -> our FXS port
SIG_FXS_BIT = 1 << 13      # __DAHDI_SIG_FXS: the channel signals as an FXS -> our FXO port

DAHDI_VMWI_LREV, DAHDI_VMWI_HVDC, DAHDI_VMWI_HVAC = 1, 2, 4

EV_NONE, EV_ONHOOK, EV_RINGOFFHOOK, EV_WINKFLASH, EV_ALARM, EV_NOALARM = 0, 1, 2, 3, 4, 5
EV_DIALCOMPLETE, EV_RINGERON, EV_RINGEROFF, EV_HOOKCOMPLETE = 9, 10, 11, 12
EV_PULSE_START, EV_POLARITY, EV_RINGBEGIN, EV_REMOVED = 14, 17, 18, 20
EV_PULSEDIGIT = 1 << 16    # OR'd with the digit's character code
EV_DTMFDOWN, EV_DTMFUP = 1 << 17, 1 << 18


# --- the OS boundary ------------------------------------------------------------------------

class OsBoundary(Protocol):
    """Everything the driver asks of the kernel. ``ioctl`` takes the argument's bytes and
    returns them as the kernel left them (for ``_IOR``/``_IOWR``)."""

    def open(self, path: str) -> int: ...

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes: ...

    def read(self, fd: int, n: int) -> bytes: ...

    def write(self, fd: int, data: bytes) -> int: ...

    def close(self, fd: int) -> None: ...

    def poll(self, fds: list[int], timeout: float) -> list[tuple[int, int]]: ...


class LinuxOs:
    """The real kernel."""

    def open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        import fcntl
        buf = bytearray(arg)
        fcntl.ioctl(fd, request, buf, True)
        return bytes(buf)

    def read(self, fd: int, n: int) -> bytes:
        return os.read(fd, n)

    def write(self, fd: int, data: bytes) -> int:
        return os.write(fd, data)

    def close(self, fd: int) -> None:
        os.close(fd)

    def poll(self, fds: list[int], timeout: float) -> list[tuple[int, int]]:
        p = select.poll()
        for fd in fds:
            p.register(fd, select.POLLIN | select.POLLPRI)
        return p.poll(int(timeout * 1000))


# --- the driver ---------------------------------------------------------------------------------

class DahdiPort(DriverPort):
    def __init__(self, driver: "DahdiDriver", channo: int, fd: int, kind: port.PortKind,
                 region: RegionProfile, params: tuple) -> None:
        caps = port.Capabilities(kind, mwi=kind is port.PortKind.FXS, hook_flash_event=True)
        super().__init__(driver, f"dahdi/{channo}", kind, region, caps)
        self.channo = channo
        self.fd = fd
        self.params = params
        self._ring_on = False


class DahdiDriver(Driver):
    """Ports for DAHDI channels. ``channels`` is ``{channo: region}`` or channel numbers (all in
    ``region``). ``open()`` configures them (raising ``DriverError`` with nothing left open if
    one fails); ``start(loop)`` runs the reader thread; ``close()`` stops and closes.

    ``battery_drop_ms``: DAHDI reports a loop-current loss on an FXO line as ``ONHOOK`` after
    its own debounce, without a duration; it is passed on as a ``LoopCurrentDrop`` of this
    length (default: long enough for every region's threshold).
    """

    path = "/dev/dahdi/channel"

    def __init__(self, channels: Mapping[int, str] | Iterable[int], region: str = "us", *,
                 osb: OsBoundary | None = None, vmwi_type: int = 0,
                 battery_drop_ms: int = 500) -> None:
        super().__init__()
        if isinstance(channels, Mapping):
            self._want = {int(c): region_profile(r) for c, r in channels.items()}
        else:
            self._want = {int(c): region_profile(region) for c in channels}
        if not self._want or any(c <= 0 for c in self._want):
            raise ValueError("DAHDI channels are numbered from 1")
        self.os = osb or LinuxOs()
        self.vmwi_type = vmwi_type
        self.battery_drop_ms = battery_drop_ms
        self._by_fd: dict[int, DahdiPort] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------

    def open(self) -> list[DahdiPort]:
        opened: list[int] = []
        try:
            for channo, reg in sorted(self._want.items()):
                fd = self.os.open(self.path)
                opened.append(fd)
                self.ports.append(self._configure(channo, fd, reg))
        except BaseException:
            for fd in opened:
                self.os.close(fd)
            self.ports.clear()
            raise
        self._by_fd = {p.fd: p for p in self.ports}     # type: ignore[attr-defined]
        return list(self.ports)                          # type: ignore[arg-type]

    def _ioctl(self, fd: int, request: int, arg: bytes, what: str) -> bytes:
        try:
            return self.os.ioctl(fd, request, arg)
        except OSError as e:
            raise DriverError(f"{what}: {os.strerror(e.errno) if e.errno else e}") from e

    def _configure(self, channo: int, fd: int, reg: RegionProfile) -> DahdiPort:
        self._ioctl(fd, DAHDI_SPECIFY, INT.pack(channo), f"channel {channo}: DAHDI_SPECIFY")
        self._ioctl(fd, DAHDI_SET_BLOCKSIZE, INT.pack(FRAME), f"channel {channo}: DAHDI_SET_BLOCKSIZE")
        raw = self._ioctl(fd, DAHDI_GET_PARAMS, bytes(PARAMS.size), f"channel {channo}: DAHDI_GET_PARAMS")
        params = PARAMS.unpack(raw)
        sigtype = params[3] & 0xFFFFFFFF
        if sigtype & DAHDI_SIG_BROKEN:
            raise DriverError(f"channel {channo} is broken (failed to initialise)")
        if sigtype & SIG_FXO_BIT:
            kind = port.PortKind.FXS
        elif sigtype & SIG_FXS_BIT:
            kind = port.PortKind.FXO
        else:
            raise DriverError(f"channel {channo} is not an analog FXS/FXO channel "
                              f"(sigtype 0x{sigtype:x}); check system.conf")
        law = DAHDI_LAW_MULAW if reg.law == "ulaw" else DAHDI_LAW_ALAW
        self._ioctl(fd, DAHDI_SETLAW, INT.pack(law), f"channel {channo}: DAHDI_SETLAW")
        self._ioctl(fd, DAHDI_SETLINEAR, INT.pack(0), f"channel {channo}: DAHDI_SETLINEAR")
        if kind is port.PortKind.FXS and self.vmwi_type:
            self._ioctl(fd, DAHDI_VMWI_CONFIG, VMWI_INFO.pack(self.vmwi_type),
                        f"channel {channo}: DAHDI_VMWI_CONFIG")
        return DahdiPort(self, channo, fd, kind, reg, params)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self._thread is not None:
            return
        if not self.ports:
            self.open()
        self._loop = loop or asyncio.get_running_loop()
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, name="dahdi-reader", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for p in self.ports:
            self.os.close(p.fd)                          # type: ignore[attr-defined]
        self.ports.clear()
        self._by_fd = {}

    # --- the reader thread: it only enqueues -----------------------------------------------------

    def _reader(self) -> None:
        loop, fds = self._loop, list(self._by_fd)
        assert loop is not None
        while not self._stop.is_set():
            try:
                ready = self.os.poll(fds, 0.1)
            except OSError:
                continue
            for fd, mask in ready:
                if mask & select.POLLPRI:
                    self._drain_events(fd)
                if mask & select.POLLIN:
                    try:
                        data = self.os.read(fd, FRAME)
                    except OSError as e:
                        if e.errno == ELAST:
                            self._drain_events(fd)
                        elif e.errno not in (errno.EAGAIN, errno.EINTR):
                            loop.call_soon_threadsafe(self._on_error, fd, e.errno)
                        continue
                    if data:
                        loop.call_soon_threadsafe(self._on_frame, fd, data)

    def _drain_events(self, fd: int) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            try:
                code = INT.unpack(self.os.ioctl(fd, DAHDI_GETEVENT, INT.pack(0)))[0]
            except OSError as e:
                loop.call_soon_threadsafe(self._on_error, fd, e.errno)
                return
            if code == EV_NONE:
                return
            loop.call_soon_threadsafe(self._on_dahdi_event, fd, code)

    # --- on the loop ---------------------------------------------------------------------------

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _on_frame(self, fd: int, data: bytes) -> None:
        p = self._by_fd.get(fd)
        if p is None:
            return
        if self.on_audio is not None:
            self.on_audio(p, data)
        try:
            self.os.write(fd, p.audio.next_frame())
        except OSError as e:
            if e.errno != errno.EAGAIN:     # the card's buffer is full: this frame is late anyway
                self._on_error(fd, e.errno)

    def _on_error(self, fd: int, err: int | None) -> None:
        p = self._by_fd.get(fd)
        if p is not None:
            p.emit(port.Alarm(f"i/o error: {os.strerror(err) if err else 'unknown'}"), self._now())

    def _on_dahdi_event(self, fd: int, code: int) -> None:
        p = self._by_fd.get(fd)
        if p is None:
            return
        for e in self.map_event(p, code):
            p.emit(e, self._now())

    def map_event(self, p: DahdiPort, code: int) -> list[port.PortEvent]:
        """DAHDI event code -> port events (an unknown or informational code: none)."""
        if code & EV_PULSEDIGIT:
            return [port.PulseDigit(chr(code & 0xFF))] if p.kind is port.PortKind.FXS else []
        if code & (EV_DTMFDOWN | EV_DTMFUP):
            return []           # the box detects DTMF in the audio itself
        if code == EV_ALARM:
            return [port.Alarm("alarm")]
        if code == EV_NOALARM:
            return [port.Alarm("alarm", active=False)]
        if code == EV_REMOVED:
            return [port.Alarm("removed")]
        if p.kind is port.PortKind.FXS:
            return {EV_ONHOOK: [port.OnHook()], EV_RINGOFFHOOK: [port.OffHook()],
                    EV_WINKFLASH: [port.HookFlash()]}.get(code, [])
        # FXO: ring voltage starts (RINGBEGIN is the early edge, RINGOFFHOOK the debounced one:
        # one RingStart per burst), stops, reverses, or the battery goes away
        if code in (EV_RINGBEGIN, EV_RINGOFFHOOK):
            if p._ring_on:
                return []
            p._ring_on = True
            return [port.RingStart()]
        if code == EV_RINGEROFF:
            if not p._ring_on:
                return []
            p._ring_on = False
            return [port.RingStop()]
        if code == EV_POLARITY:
            return [port.PolarityReversal()]
        if code == EV_ONHOOK:
            return [port.LoopCurrentDrop(self.battery_drop_ms)]
        return []

    # --- commands ------------------------------------------------------------------------------

    def _audio_command(self, p: DriverPort, command: port.PortCommand) -> None:
        # An FXS SLIC only passes audio to an on-hook phone in on-hook transmission mode, for
        # as long as asked (chan_dahdi does the same before caller ID). NTT's caller ID goes to
        # a phone that closed its loop to answer CAR: ordinary audio, no mode to set.
        if isinstance(command, port.SendCallerId) and p.kind is port.PortKind.FXS:
            assert isinstance(p, DahdiPort)
            code = p.region.code
            if p.region.cid_standard is None or code not in CID_REGIONS \
                    or p.region.cid_start == CID_CAR:
                return
            ms = round(CallerIdSender(region=code).duration(command.cid) * 1000) + 500
            self._ioctl(p.fd, DAHDI_ONHOOKTRANSFER, INT.pack(ms), f"{p.name}: DAHDI_ONHOOKTRANSFER")

    def _hook(self, p: DahdiPort, value: int, what: str) -> None:
        self._ioctl(p.fd, DAHDI_HOOK, INT.pack(value), f"{p.name}: DAHDI_HOOK {what}")

    def _line_command(self, p: DriverPort, command: port.PortCommand) -> None:
        assert isinstance(p, DahdiPort)
        if isinstance(command, port.Ring):
            ms = [round(s * 1000) for s in command.cadence]
            if len(ms) > DAHDI_MAX_CADENCE or any(m <= 0 for m in ms):
                raise DriverError(f"{p.name}: DAHDI takes up to {DAHDI_MAX_CADENCE} positive "
                                  f"cadence steps, not {command.cadence!r}")
            cad = RING_CADENCE.pack(*(ms + [0] * (DAHDI_MAX_CADENCE - len(ms))))
            self._ioctl(p.fd, DAHDI_SETCADENCE, cad, f"{p.name}: DAHDI_SETCADENCE")
            self._hook(p, DAHDI_RING, "RING")
        elif isinstance(command, port.StopRing):
            self._hook(p, DAHDI_RINGOFF, "RINGOFF")
        elif isinstance(command, port.Seize):
            self._hook(p, DAHDI_OFFHOOK, "OFFHOOK")
        elif isinstance(command, port.Release):
            self._hook(p, DAHDI_ONHOOK, "ONHOOK")
            p.audio.clear()
        elif isinstance(command, port.SetPolarity):
            self._ioctl(p.fd, DAHDI_SETPOLARITY, INT.pack(1 if command.reversed else 0),
                        f"{p.name}: DAHDI_SETPOLARITY")
        elif isinstance(command, port.SetMwi):
            self._ioctl(p.fd, DAHDI_VMWI, INT.pack(1 if command.on else 0), f"{p.name}: DAHDI_VMWI")
        else:
            raise DriverError(f"{p.name}: cannot {command!r}")
