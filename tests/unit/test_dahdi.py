"""The real DAHDI driver above a fake kernel at the OS boundary: exact ioctl numbers and struct
bytes (hand-computed from include/dahdi/user.h), events and audio from an "interrupt" thread,
handled on the loop."""

from __future__ import annotations

import asyncio
import errno
import select
import struct
import threading
from collections import deque

import pytest

from board import port
from board.cadence import CallProgressDetector
from board.dahdi import DahdiDriver
from board.driver import DriverError, decode
from board.fxs import FxsLine, prefix_plan

# include/dahdi/user.h, encoded by hand: dir<<30 | size<<16 | 0xDA<<8 | nr (write 1, read 2)
SPECIFY = 0x4004DA26          # _IOW(DAHDI_CODE, 38, int)
SET_BLOCKSIZE = 0x4004DA01    # _IOW(DAHDI_CODE, 1, int)
GET_PARAMS = 0xC088DA05       # _IOWR(DAHDI_CODE, 5, struct dahdi_params): 136 bytes
HOOK = 0x4004DA07             # _IOW(DAHDI_CODE, 7, int)
GETEVENT = 0x8004DA08         # _IOR(DAHDI_CODE, 8, int)
SETLAW = 0x4004DA27           # _IOW(DAHDI_CODE, 39, int)
SETLINEAR = 0x4004DA28        # _IOW(DAHDI_CODE, 40, int)
SETCADENCE = 0x4040DA2A       # _IOW(DAHDI_CODE, 42, struct dahdi_ring_cadence): 16 ints
SETPOLARITY = 0x4004DA5C      # _IOW(DAHDI_CODE, 92, int)
VMWI = 0xC004DA5E             # _IOWR(DAHDI_CODE, 94, int)
VMWI_CONFIG = 0x4004DA5F      # _IOW(DAHDI_CODE, 95, struct dahdi_vmwi_info)
ONHOOKTRANSFER = 0x4004DA33   # _IOW(DAHDI_CODE, 51, int)

SIG_FXOKS = (1 << 5) | (1 << 12)   # a channel on an FXS module (drives a phone)
SIG_FXSKS = (1 << 2) | (1 << 13)   # a channel on an FXO module (on a CO line)
I = struct.Struct("=i")


class FakeKernel:
    """dahdi.ko as seen through the driver's OS boundary. Checks every ioctl's number and
    argument size; the test plays the card's interrupt with ``event()`` and ``audio()``."""

    def __init__(self, sigtypes: dict[int, int], *, elast: bool = False) -> None:
        self.sigtypes = sigtypes
        self.elast = elast          # report events the old way: POLLIN + read() -> ELAST
        self.cond = threading.Condition()
        self.fds: dict[int, dict] = {}
        self.calls: list[tuple[int, int, bytes]] = []   # (channel, request, arg)
        self.events: dict[int, deque[int]] = {c: deque() for c in sigtypes}
        self.rx: dict[int, deque[bytes]] = {c: deque() for c in sigtypes}
        self.tx: dict[int, list[bytes]] = {c: [] for c in sigtypes}
        self.state: dict[int, dict] = {c: {} for c in sigtypes}
        self.fail: dict[int, int] = {}                  # request -> errno to fail with
        self._next = 10

    # the boundary

    def open(self, path: str) -> int:
        assert path == "/dev/dahdi/channel"
        fd, self._next = self._next, self._next + 1
        self.fds[fd] = {"chan": None, "blocksize": 1024}
        return fd

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        assert (request >> 8) & 0xFF == 0xDA, hex(request)
        assert len(arg) == (request >> 16) & 0x3FFF, f"{hex(request)}: {len(arg)} bytes"
        f = self.fds[fd]
        if request in self.fail:
            raise OSError(self.fail[request], "injected")
        if request == SPECIFY:
            chan = I.unpack(arg)[0]
            if chan not in self.sigtypes:
                raise OSError(errno.ENXIO, "No such device or address")
            f["chan"] = chan
        chan = f["chan"]
        if chan is None:
            raise OSError(errno.EINVAL, "channel not specified")
        self.calls.append((chan, request, arg))
        st = self.state[chan]
        if request == SET_BLOCKSIZE:
            f["blocksize"] = I.unpack(arg)[0]
        elif request == GET_PARAMS:
            assert arg == bytes(136)
            sig = self.sigtypes[chan]
            sig = sig - (1 << 32) if sig >= 1 << 31 else sig     # an int in the C struct
            vals = [chan, 1, chan, sig, sig] + [0] * 7
            return struct.pack("=12i40s11iI", *vals, f"WCTDM/0/{chan - 1}".encode(), *([0] * 11), 0)
        elif request == GETEVENT:
            with self.cond:
                q = self.events[chan]
                return I.pack(q.popleft() if q else 0)
        elif request in (HOOK, SETLAW, SETLINEAR, SETPOLARITY, VMWI, VMWI_CONFIG, SETCADENCE,
                         ONHOOKTRANSFER):
            st[request] = arg
        elif request != SPECIFY:
            raise OSError(errno.ENOTTY, "Inappropriate ioctl for device")
        return arg

    def read(self, fd: int, n: int) -> bytes:
        f = self.fds[fd]
        assert n == f["blocksize"] == 160
        with self.cond:
            if self.events[f["chan"]]:
                raise OSError(500, "ELAST")   # an event is pending: read fails until GETEVENT
            q = self.rx[f["chan"]]
            if not q:
                raise OSError(errno.EAGAIN, "again")
            return q.popleft()

    def write(self, fd: int, data: bytes) -> int:
        assert len(data) == 160
        self.tx[self.fds[fd]["chan"]].append(data)
        return len(data)

    def close(self, fd: int) -> None:
        del self.fds[fd]

    def poll(self, fds: list[int], timeout: float) -> list[tuple[int, int]]:
        def ready():
            out = []
            for fd in fds:
                c = self.fds[fd]["chan"]
                mask = 0
                if self.events[c]:
                    mask |= select.POLLIN if self.elast else select.POLLPRI
                if self.rx[c]:
                    mask |= select.POLLIN
                if mask:
                    out.append((fd, mask))
            return out
        with self.cond:
            self.cond.wait_for(lambda: bool(ready()), timeout)
            return ready()

    # the card

    def event(self, chan: int, code: int) -> None:
        with self.cond:
            self.events[chan].append(code)
            self.cond.notify_all()

    def audio(self, chan: int, frame: bytes) -> None:
        with self.cond:
            self.rx[chan].append(frame)
            self.cond.notify_all()


def drv(sigtypes=None, region="us", **kw) -> tuple[FakeKernel, DahdiDriver]:
    k = FakeKernel(sigtypes or {1: SIG_FXOKS, 2: SIG_FXSKS}, elast=kw.pop("elast", False))
    return k, DahdiDriver(sorted(k.sigtypes), region, osb=k, **kw)


def test_open_configures_each_channel_with_exact_ioctls():
    k, d = drv(region="uk", vmwi_type=4)
    ports = d.open()
    assert [(p.name, p.kind) for p in ports] == [("dahdi/1", port.PortKind.FXS),
                                                 ("dahdi/2", port.PortKind.FXO)]
    assert all(p.law == "alaw" for p in ports)
    assert k.calls == [
        (1, SPECIFY, I.pack(1)), (1, SET_BLOCKSIZE, I.pack(160)), (1, GET_PARAMS, bytes(136)),
        (1, SETLAW, I.pack(2)), (1, SETLINEAR, I.pack(0)), (1, VMWI_CONFIG, struct.pack("=I", 4)),
        (2, SPECIFY, I.pack(2)), (2, SET_BLOCKSIZE, I.pack(160)), (2, GET_PARAMS, bytes(136)),
        (2, SETLAW, I.pack(2)), (2, SETLINEAR, I.pack(0)),
    ]
    assert ports[0].params[3] == SIG_FXOKS
    d.close()
    assert k.fds == {}


def test_us_channels_are_mulaw():
    k, d = drv(region="us")
    d.open()
    assert (1, SETLAW, I.pack(1)) in k.calls
    d.close()


@pytest.mark.parametrize("sig,fragment", [(0, "not an analog"), (1 << 7, "not an analog"),
                                          (SIG_FXOKS | (1 << 31), "broken")])
def test_a_channel_that_is_not_analog_fails_cleanly(sig, fragment):
    k, d = drv({1: SIG_FXOKS, 2: sig})
    with pytest.raises(DriverError, match=fragment):
        d.open()
    assert k.fds == {} and d.ports == []


def test_missing_channel_and_failing_ioctl_fail_cleanly():
    k = FakeKernel({1: SIG_FXOKS})
    d = DahdiDriver([1, 7], osb=k)
    with pytest.raises(DriverError, match="channel 7: DAHDI_SPECIFY"):
        d.open()
    assert k.fds == {}
    k.fail[SETLAW] = errno.EINVAL
    d = DahdiDriver([1], osb=k)
    with pytest.raises(DriverError, match="DAHDI_SETLAW: Invalid argument"):
        d.open()
    assert k.fds == {}
    with pytest.raises(ValueError):
        DahdiDriver([0], osb=k)


def test_commands_are_the_right_ioctls():
    k, d = drv(region="uk")
    fxs, fxo = d.open()
    k.calls.clear()
    fxs.send(port.Ring((0.4, 0.2, 0.4, 2.0)))
    fxs.send(port.StopRing())
    fxs.send(port.SetPolarity(True))
    fxs.send(port.SetMwi(True))
    fxs.send(port.SetMwi(False))
    fxo.send(port.Seize())
    fxo.send(port.Release())
    cad = struct.pack("=16i", 400, 200, 400, 2000, *([0] * 12))
    assert k.calls == [(1, SETCADENCE, cad), (1, HOOK, I.pack(5)), (1, HOOK, I.pack(6)),
                       (1, SETPOLARITY, I.pack(1)), (1, VMWI, I.pack(1)), (1, VMWI, I.pack(0)),
                       (2, HOOK, I.pack(1)), (2, HOOK, I.pack(0))]
    k.calls.clear()
    with pytest.raises(DriverError, match="16"):
        fxs.send(port.Ring((0.1, 0.1) * 9))
    with pytest.raises(DriverError):
        fxo.send(port.Ring((2.0, 4.0)))      # an FXO port cannot ring
    k.fail[HOOK] = errno.EIO
    with pytest.raises(DriverError, match="DAHDI_HOOK OFFHOOK: Input/output error"):
        fxo.send(port.Seize())
    assert k.calls == []
    d.close()


async def collect(d: DahdiDriver, k: FakeKernel, feed, n: int) -> list[tuple[str, object, bool]]:
    """Start the driver, let ``feed`` play the card, wait for ``n`` port events."""
    got: list[tuple[str, object, bool]] = []
    done = asyncio.Event()
    main = threading.get_ident()

    def on_event(name):
        def cb(e, now):
            got.append((name, e, threading.get_ident() == main))
            if len(got) >= n:
                done.set()
        return cb
    for p in d.ports:
        p.on_event = on_event(p.name)
    d.start()
    try:
        feed()
        async with asyncio.timeout(3.0):
            await done.wait()
        await asyncio.sleep(0.05)       # nothing more than expected comes
    finally:
        d.close()
    return got


@pytest.mark.parametrize("elast", [False, True], ids=["pollpri", "elast"])
def test_events_map_to_port_events_on_the_loop_thread(elast):
    k, d = drv(elast=elast)
    d.open()

    def feed():
        for code in (2, 3, 1 << 16 | ord("5"), 1, 4, 5, 12, 10):   # FXS side
            k.event(1, code)
        for code in (18, 2, 11, 17, 1, 20):                         # FXO side
            k.event(2, code)
    got = asyncio.run(collect(d, k, feed, 11))
    assert all(on_loop for _, _, on_loop in got)
    fxs = [e for name, e, _ in got if name == "dahdi/1"]
    fxo = [e for name, e, _ in got if name == "dahdi/2"]
    assert fxs == [port.OffHook(), port.HookFlash(), port.PulseDigit("5"), port.OnHook(),
                   port.Alarm("alarm"), port.Alarm("alarm", active=False)]
    assert fxo == [port.RingStart(), port.RingStop(), port.PolarityReversal(),
                   port.LoopCurrentDrop(500), port.Alarm("removed")]


def test_audio_in_goes_to_on_audio_and_each_frame_read_is_answered_with_one_written():
    k, d = drv(region="us")
    fxs, _ = d.open()
    frames: list[tuple[str, bytes, bool]] = []
    main = threading.get_ident()
    fxs.send(port.PlayTone("dial"))

    async def main_():
        done = asyncio.Event()

        def on_audio(p, frame):
            frames.append((p.name, frame, threading.get_ident() == main))
            if len(frames) == 100:
                done.set()
        d.on_audio = on_audio
        d.start()
        for i in range(100):
            k.audio(1, bytes([i]) * 160)
        async with asyncio.timeout(3.0):
            await done.wait()
        d.close()
    asyncio.run(main_())
    assert [f for _, f, _ in frames] == [bytes([i]) * 160 for i in range(100)]
    assert all(name == "dahdi/1" and on_loop for name, _, on_loop in frames)
    assert len(k.tx[1]) == 100 and k.tx[2] == []
    det = CallProgressDetector("us", ("dial",))
    heard = [t.name for f in k.tx[1] for t in det.feed(decode("ulaw", f))]
    assert heard == ["dial"]


def test_caller_id_to_an_on_hook_phone_asks_for_on_hook_transmission_first():
    from board.callerid import CallerId, CallerIdReceiver
    k, d = drv(region="us")
    fxs, _ = d.open()
    k.calls.clear()
    cid = CallerId(number="5551234", name="ALICE")
    fxs.send(port.SendCallerId(cid, before_ring=False))
    # Bell 202 MDMF: 300 seizure + 180 mark bits + 10 bits for each of the 19 message bytes
    # (type, length, 2+7 number, 2+5 name, checksum) + 2, at 1200 baud = 560 ms; 500 to spare
    assert k.calls == [(1, ONHOOKTRANSFER, I.pack(1060))]
    rx = CallerIdReceiver("bell")
    got = None
    while fxs.audio.signalling:
        got = got or rx.feed(decode("ulaw", fxs.audio.next_frame()))
    assert got == cid
    d.close()


def test_a_line_machine_runs_above_the_driver():
    """FXS line machine on a DAHDI port: the phone lifts (RINGOFFHOOK), the box plays dial tone."""
    k, d = drv(region="de")
    fxs, _ = d.open()
    line = FxsLine("de", "201", prefix_plan("1XX"))

    def on_event(e, now):
        line.on_event(e, now)
        while (o := line.next_output()) is not None:
            fxs.send(o)
    fxs.on_event = on_event

    async def main_():
        d.start()
        k.event(1, 2)
        async with asyncio.timeout(3.0):
            while fxs.audio.tone is None:
                await asyncio.sleep(0.01)
        d.close()
    asyncio.run(main_())
    assert fxs.audio.tone == "dial"


def test_japanese_caller_id_goes_to_an_off_hook_phone_without_on_hook_transmission():
    """NTT's FSK follows the phone's primary response to CAR: its loop is closed, so the
    SLIC passes the audio as in a call and no on-hook transmission is asked for."""
    from board.callerid import CallerId, CallerIdReceiver
    k, d = drv(region="jp")
    fxs, _ = d.open()
    k.calls.clear()
    cid = CallerId(number="0312345678")
    fxs.send(port.SendCallerId(cid, before_ring=True))
    assert k.calls == []
    rx = CallerIdReceiver("ntt")
    got = None
    while fxs.audio.signalling:
        got = got or rx.feed(decode("ulaw", fxs.audio.next_frame()))
    assert got == cid
    d.close()
