"""A pjsua2 SIP phone in its own process, driven by JSON lines on stdin/stdout.

pjsua allows one Endpoint per process, so every test phone is one of these
processes; tests/peers/phone.py starts it and speaks the protocol:

  stdin  {"id": 7, "cmd": "call", "uri": "sip:..."}
  stdout {"id": 7, "ok": true, "result": ...}  or  {"id": 7, "ok": false, "error": "..."}
  stdout {"event": "call_state", "call": 1, "state": "CONFIRMED", ...}   (unsolicited)

The first line out is {"event": "ready", "sip_port": N}. pjsua's own log goes to
--log-file. The phone runs single-threaded (threadCnt=0, mainThreadOnly) and polls
libHandleEvents; stdin is read with select between polls. It has at most one
current call. This file imports nothing from the test tree: it is the peer.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import select
import sys
import time
import traceback
from typing import Any

import pjsua2 as pj

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "NONE",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "ACTIVE",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "LOCAL_HOLD",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "REMOTE_HOLD",
    pj.PJSUA_CALL_MEDIA_ERROR: "ERROR",
}
DTMF_METHODS = {
    "rfc2833": pj.PJSUA_DTMF_METHOD_RFC2833,
    "rfc4733": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}


# The JSON channel is a private copy of the original stdout; fd 1 itself is pointed
# at stderr so that whatever pjlib prints to the console cannot corrupt it.
_channel = None


def _open_channel() -> None:
    global _channel
    _channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)


def emit(obj: dict[str, Any]) -> None:
    assert _channel is not None
    _channel.write(json.dumps(obj) + "\n")
    _channel.flush()


class FileLogWriter(pj.LogWriter):
    """pjsua's log into a line-buffered file: pjlib's own log file is stdio-buffered
    and would lose its tail when the agent leaves through os._exit."""

    def __init__(self, path: str):
        super().__init__()
        self.f = open(path, "a", buffering=1, encoding="utf-8", errors="replace")

    def write(self, entry: pj.LogEntry) -> None:
        self.f.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")


class AgentError(Exception):
    """A command that cannot be carried out; the message goes back to the test."""


class PhoneCall(pj.Call):
    def __init__(self, agent: "Agent", acc: pj.Account, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.agent = agent
        self.seq = agent.next_seq()
        self.state = "NULL"
        self.last_dtmf: tuple[str, int] | None = None

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        ci = self.getInfo()
        self.state = STATE_NAMES.get(ci.state, str(ci.state))
        emit({"event": "call_state", "call": self.seq, "state": self.state,
              "code": ci.lastStatusCode, "reason": ci.lastReason,
              "remote_uri": ci.remoteUri})
        if self.state == "DISCONNECTED":
            self.agent.call_ended(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        ci = self.getInfo()
        media = [{"index": m.index, "status": MEDIA_STATUS.get(m.status, str(m.status)),
                  "dir": m.dir} for m in ci.media if m.type == pj.PJMEDIA_TYPE_AUDIO]
        emit({"event": "media_state", "call": self.seq, "media": media})
        self.agent.connect_media(self)

    def _digit(self, digit: str, method: str) -> None:
        self.agent.dtmf += digit
        emit({"event": "dtmf", "call": self.seq, "digit": digit, "method": method})

    # pjsua reports RFC 4733 digits through onDtmfEvent (start/update/end) when a
    # handler for it exists and through onDtmfDigit otherwise; SIP INFO digits go
    # through onDtmfDigit. Take each digit once: the start of an RFC 4733 event.
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 and self.agent.dtmf_events_seen:
            return
        self._digit(prm.digit, "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833")

    def onDtmfEvent(self, prm: pj.OnDtmfEventParam) -> None:
        self.agent.dtmf_events_seen = True
        key = (prm.digit, prm.timestamp)
        if key == self.last_dtmf:
            return
        self.last_dtmf = key
        self._digit(prm.digit, "rfc2833")


class PhoneAccount(pj.Account):
    def __init__(self, agent: "Agent", label: str):
        super().__init__()
        self.agent = agent
        self.label = label

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        info = self.getInfo()
        emit({"event": "reg_state", "account": self.label, "code": prm.code,
              "reason": prm.reason, "expires": prm.expiration,
              "active": info.regIsActive, "status": prm.status})

    def onMwiInfo(self, prm: pj.OnMwiInfoParam) -> None:
        # the message-waiting NOTIFY as the phone saw it (unsolicited or subscribed)
        whole = prm.rdata.wholeMsg
        body = whole.split("\r\n\r\n", 1)[-1]
        m = re.search(r"(?im)^subscription-state:[ \t]*([^\r\n]*)", whole)
        # "subscribed": it came in the phone's own SUBSCRIBE dialog (pjsua reports the
        # subscription's state then); an unsolicited NOTIFY leaves the state NULL
        emit({"event": "mwi", "account": self.label, "body": body,
              "subscribed": prm.state != pj.PJSIP_EVSUB_STATE_NULL,
              "subscription_state": m.group(1).strip() if m else None})

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = PhoneCall(self.agent, self, prm.callId)
        ci = call.getInfo()
        if self.agent.call is not None and self.agent.call.state not in ("DISCONNECTED",):
            op = pj.CallOpParam()
            op.statusCode = 486
            call.hangup(op)
            self.agent.graveyard.append(call)
            emit({"event": "incoming_busy", "from": ci.remoteUri})
            return
        self.agent.call = call
        emit({"event": "incoming", "call": call.seq, "from": ci.remoteUri, "to": ci.localUri,
              "call_id": ci.callIdString})
        if self.agent.auto_ringing:
            op = pj.CallOpParam()
            op.statusCode = 180
            call.answer(op)


class Agent:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.transport_name = args.transport
        self.seq = 0
        self.call: PhoneCall | None = None
        self.graveyard: list[Any] = []  # dropped from inside callbacks, freed from the loop
        self.held: PhoneCall | None = None  # the call on hold while consulting (attended transfer)
        self.dtmf = ""
        self.dtmf_events_seen = False
        self.auto_ringing = True
        self.tone_path: str | None = None
        self.player: pj.AudioMediaPlayer | None = None
        self.recorder: pj.AudioMediaRecorder | None = None
        self.record_path: str | None = None
        self.tonegen: pj.ToneGenerator | None = None
        self.reg_acc: PhoneAccount | None = None
        self.server: str | None = None
        self.running = True

        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.userAgent = f"linebox-test-phone/{args.name} pjsua2/{self.ep.libVersion().full}"
        cfg.logConfig.level = args.log_level
        # With a writer, pjsua2 hands it what would go to the console: consoleLevel
        # is what reaches the file.
        cfg.logConfig.consoleLevel = args.log_level if args.log_file else 0
        cfg.logConfig.msgLogging = 1
        self.log_writer = FileLogWriter(args.log_file) if args.log_file else None
        if self.log_writer is not None:
            cfg.logConfig.writer = self.log_writer
        med = cfg.medConfig
        med.clockRate = 8000
        med.sndClockRate = 8000
        med.channelCount = 1
        med.noVad = True
        med.ecTailLen = 0
        self.ep.libInit(cfg)
        self.ep.audDevManager().setNullDev()

        tc = pj.TransportConfig()
        tc.boundAddress = "127.0.0.1"
        tc.publicAddress = "127.0.0.1"
        # UDP on a free port, then TCP on the same number; another process may hold that
        # number for TCP (the ephemeral range is shared), so pick again when it does.
        for attempt in range(20):
            tc.port = args.port
            self.udp_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tc)
            self.sip_port = int(self.ep.transportGetInfo(self.udp_id).localName.rsplit(":", 1)[1])
            tc.port = self.sip_port
            try:
                self.tcp_id = self.ep.transportCreate(pj.PJSIP_TRANSPORT_TCP, tc)
                break
            except pj.Error:
                if args.port or attempt == 19:
                    raise
                self.ep.transportClose(self.udp_id)
        self.ep.libStart()
        self._set_codecs(args.codecs.split(","))

        self.local_acc = PhoneAccount(self, "local")
        self.local_acc.create(self._acc_config(f"sip:{args.name}@127.0.0.1:{self.sip_port}"
                                               + self._tp_param()), True)

    # -- set-up -----------------------------------------------------------------
    def _tp_param(self) -> str:
        return ";transport=tcp" if self.transport_name == "tcp" else ""

    def _set_codecs(self, wanted: list[str]) -> None:
        infos = self.ep.codecEnum2()
        by_name = {ci.codecId.split("/")[0].upper(): ci.codecId for ci in infos}
        for ci in infos:
            self.ep.codecSetPriority(ci.codecId, 0)
        for i, name in enumerate(wanted):
            cid = by_name.get(name.strip().upper())
            if cid is None:
                raise SystemExit(f"codec {name!r} not available; have {sorted(by_name)}")
            self.ep.codecSetPriority(cid, 250 - i)

    def _acc_config(self, id_uri: str) -> pj.AccountConfig:
        ac = pj.AccountConfig()
        ac.idUri = id_uri
        ac.sipConfig.transportId = self.tcp_id if self.transport_name == "tcp" else self.udp_id
        nat = ac.natConfig
        nat.sipOutboundUse = 0
        nat.contactRewriteUse = 0
        nat.viaRewriteUse = 0
        nat.sdpNatRewriteUse = 0
        nat.iceEnabled = False
        mt = ac.mediaConfig.transportConfig
        mt.boundAddress = "127.0.0.1"
        mt.publicAddress = "127.0.0.1"
        mt.port = self.args.rtp_port
        mt.portRange = 200
        mt.randomizePort = self.args.rtp_port == 0
        return ac

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- media --------------------------------------------------------------------
    def call_audio(self, call: PhoneCall | None = None) -> pj.AudioMedia | None:
        call = call or self.call
        if call is None or call.state == "DISCONNECTED":
            return None
        ci = call.getInfo()
        for m in ci.media:
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status in (
                    pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
                return call.getAudioMedia(m.index)
        return None

    def connect_media(self, call: PhoneCall) -> None:
        if call is not self.call:
            return
        am = self.call_audio(call)
        if am is None:
            return
        if self.player is not None:
            self.player.startTransmit(am)
        if self.recorder is not None:
            am.startTransmit(self.recorder)

    def call_ended(self, call: PhoneCall) -> None:
        # The Call object must outlive this callback; the loop frees it later.
        self.graveyard.append(call)
        if call is self.call:
            self.call = None
        if call is self.held:
            self.held = None

    # -- commands -----------------------------------------------------------------
    def cmd_register(self, server: str, user: str, password: str, expires: int = 300,
                     mwi_subscribe: int = 0, **_: Any) -> None:
        if self.reg_acc is not None:
            self.reg_acc.setRegistration(True)
            return
        self.server = server
        ac = self._acc_config(f"sip:{user}@{server}")
        ac.regConfig.registrarUri = f"sip:{server}{self._tp_param()}"
        ac.regConfig.timeoutSec = expires
        ac.regConfig.retryIntervalSec = 0  # report failures, do not loop
        ac.regConfig.registerOnAdd = True
        ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
        if mwi_subscribe:
            # SUBSCRIBE to the own mailbox (message-summary), as Polycom/Cisco desk phones do
            ac.mwiConfig.enabled = True
            ac.mwiConfig.expirationSec = mwi_subscribe
        self.reg_acc = PhoneAccount(self, "reg")
        self.reg_acc.create(ac, False)

    def cmd_unregister(self, **_: Any) -> None:
        if self.reg_acc is None:
            raise AgentError("not registered")
        self.reg_acc.setRegistration(False)

    def cmd_call(self, uri: str, **_: Any) -> int:
        if self.call is not None:
            raise AgentError(f"already in a call ({self.call.state})")
        acc = self.reg_acc or self.local_acc
        call = PhoneCall(self, acc)
        op = pj.CallOpParam(True)
        op.opt.audioCount = 1
        op.opt.videoCount = 0
        self.call = call
        try:
            call.makeCall(uri, op)
        except pj.Error as e:
            self.call = None
            self.graveyard.append(call)
            raise AgentError(f"makeCall({uri}): {e.info()}") from None
        return call.seq

    def _need_call(self) -> PhoneCall:
        if self.call is None:
            raise AgentError("no current call")
        return self.call

    def cmd_answer(self, code: int = 200, **_: Any) -> None:
        op = pj.CallOpParam(True)
        op.statusCode = code
        self._need_call().answer(op)

    def cmd_reject(self, code: int = 486, **_: Any) -> None:
        op = pj.CallOpParam(True)
        op.statusCode = code
        self._need_call().hangup(op)

    def cmd_hangup(self, **_: Any) -> None:
        op = pj.CallOpParam(True)
        self._need_call().hangup(op)

    def cmd_play(self, path: str, **_: Any) -> None:
        self.cmd_stop_play()
        self.player = pj.AudioMediaPlayer()
        self.player.createPlayer(path, 0)  # 0: loop
        if self.call is not None:
            self.connect_media(self.call)

    def cmd_stop_play(self, **_: Any) -> None:
        if self.player is not None:
            am = self.call_audio()
            if am is not None:
                self.player.stopTransmit(am)
            self.player = None

    def cmd_record(self, path: str, **_: Any) -> None:
        self.cmd_stop_record()
        self.recorder = pj.AudioMediaRecorder()
        self.recorder.createRecorder(path)
        self.record_path = path
        if self.call is not None:
            self.connect_media(self.call)

    def cmd_stop_record(self, **_: Any) -> None:
        if self.recorder is not None:
            am = self.call_audio()
            if am is not None:
                am.stopTransmit(self.recorder)
            self.recorder = None  # destroying the recorder writes the WAV header...
            self._wait_wav_closed(self.record_path)

    def _wait_wav_closed(self, path: str | None, timeout: float = 2.0) -> None:
        """...but the conference bridge removes the port on its next clock tick, so the file is
        complete only a little later: wait until the RIFF size covers the whole file."""
        if path is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            try:
                with open(path, "rb") as f:
                    head = f.read(8)
                    size = os.fstat(f.fileno()).st_size
            except OSError:
                continue
            if len(head) == 8 and int.from_bytes(head[4:8], "little") + 8 == size and size > 44:
                return

    def cmd_dtmf(self, digits: str, method: str = "rfc2833", **_: Any) -> None:
        call = self._need_call()
        if method == "inband":
            am = self.call_audio(call)
            if am is None:
                raise AgentError("no active audio for in-band DTMF")
            if self.tonegen is None:
                self.tonegen = pj.ToneGenerator()
                self.tonegen.createToneGenerator(8000, 1)
            vec = pj.ToneDigitVector()
            for d in digits:
                td = pj.ToneDigit()
                td.digit = d
                td.on_msec = 100
                td.off_msec = 100
                td.volume = 0
                vec.append(td)
            self.tonegen.playDigits(vec)
            self.tonegen.startTransmit(am)
            return
        if method not in DTMF_METHODS:
            raise AgentError(f"unknown DTMF method {method!r}")
        prm = pj.CallSendDtmfParam()
        prm.method = DTMF_METHODS[method]
        prm.digits = digits
        prm.duration = 160
        call.sendDtmf(prm)

    def cmd_dtmf_received(self, **_: Any) -> str:
        return self.dtmf

    def cmd_clear_dtmf(self, **_: Any) -> None:
        self.dtmf = ""

    def cmd_hold(self, **_: Any) -> None:
        self._need_call().setHold(pj.CallOpParam(True))

    def cmd_unhold(self, **_: Any) -> None:
        op = pj.CallOpParam(True)
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._need_call().reinvite(op)

    def cmd_transfer(self, uri: str, **_: Any) -> None:
        """A blind transfer of the current call's other party to ``uri`` (REFER)."""
        self._need_call().xfer(uri, pj.CallOpParam(True))

    def cmd_consult(self, uri: str, **_: Any) -> int:
        """A desk phone's transfer key: hold the current call and call ``uri`` (the consultation)."""
        call = self._need_call()
        call.setHold(pj.CallOpParam(True))
        self.held, self.call = call, None
        try:
            return self.cmd_call(uri)
        except AgentError:
            self.call, self.held = call, None
            raise

    def cmd_transfer_attended(self, **_: Any) -> None:
        """Joins the held call's party with the consultation's (REFER with Replaces, RFC 3891)."""
        if self.held is None:
            raise AgentError("no held call: consult first")
        self.held.xferReplaces(self._need_call(), pj.CallOpParam(True))

    def cmd_auto_ringing(self, on: bool = True, **_: Any) -> None:
        self.auto_ringing = on

    def cmd_call_info(self, **_: Any) -> dict[str, Any] | None:
        call = self.call
        if call is None:
            return None
        ci = call.getInfo()
        out: dict[str, Any] = {
            "call": call.seq, "state": STATE_NAMES.get(ci.state, str(ci.state)),
            "remote_uri": ci.remoteUri, "local_uri": ci.localUri,
            "remote_contact": ci.remoteContact, "call_id": ci.callIdString,
            "code": ci.lastStatusCode, "reason": ci.lastReason,
            "codec": None, "remote_rtp": None, "media_status": None, "media_dir": None,
            "tx_pt": None, "rx_pt": None,
        }
        for m in ci.media:
            if m.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            out["media_status"] = MEDIA_STATUS.get(m.status, str(m.status))
            out["media_dir"] = m.dir
            if m.status != pj.PJSUA_CALL_MEDIA_NONE:
                try:
                    si = call.getStreamInfo(m.index)
                except pj.Error:
                    break
                out["codec"] = si.codecName
                out["remote_rtp"] = si.remoteRtpAddress
                out["tx_pt"], out["rx_pt"] = si.txPt, si.rxPt
            break
        return out

    def cmd_stream_stat(self, **_: Any) -> dict[str, int] | None:
        """RTP counters of the current call's audio stream (None without one)."""
        call = self.call
        if call is None:
            return None
        ci = call.getInfo()
        for m in ci.media:
            if m.type == pj.PJMEDIA_TYPE_AUDIO and m.status != pj.PJSUA_CALL_MEDIA_NONE:
                try:
                    st = call.getStreamStat(m.index)
                except pj.Error:
                    return None
                rx, tx = st.rtcp.rxStat, st.rtcp.txStat
                return {"rx_pkt": rx.pkt, "rx_bytes": rx.bytes, "rx_loss": rx.loss,
                        "tx_pkt": tx.pkt, "tx_bytes": tx.bytes}
        return None

    def cmd_close(self, **_: Any) -> None:
        self.running = False

    # -- loop ---------------------------------------------------------------------
    def handle(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError as e:
            emit({"event": "error", "error": f"bad JSON: {e}"})
            return
        mid = msg.pop("id", None)
        name = msg.pop("cmd", "")
        fn = getattr(self, f"cmd_{name}", None)
        try:
            if fn is None:
                raise AgentError(f"unknown command {name!r}")
            result = fn(**msg)
            emit({"id": mid, "ok": True, "result": result})
        except AgentError as e:
            emit({"id": mid, "ok": False, "error": str(e)})
        except pj.Error as e:
            emit({"id": mid, "ok": False, "error": f"pjsua: {e.info()}"})

    def run(self) -> None:
        emit({"event": "ready", "sip_port": self.sip_port, "pid": os.getpid()})
        fd = sys.stdin.fileno()
        buf = b""
        while self.running:
            self.ep.libHandleEvents(10)
            if self.graveyard:
                self.graveyard.clear()
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:  # the test side went away
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    self.handle(line.decode())
        self.shutdown()

    def shutdown(self) -> None:
        # Hang up, let the BYEs out, flush the recorder, then leave without
        # libDestroy (pjsua asserts if any Call/Account object is still alive).
        try:
            self.cmd_stop_record()
            self.player = None
            self.ep.hangupAllCalls()
            deadline = time.monotonic() + 0.5
            while time.monotonic() < deadline:
                self.ep.libHandleEvents(10)
        finally:
            if _channel is not None:
                _channel.flush()
            os._exit(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--name", default="phone")
    p.add_argument("--codecs", default="PCMU,PCMA")
    p.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    p.add_argument("--port", type=int, default=0, help="SIP port (0: any free)")
    p.add_argument("--rtp-port", type=int, default=0, help="first RTP port (0: random)")
    p.add_argument("--log-file", default="")
    p.add_argument("--log-level", type=int, default=5)
    args = p.parse_args()
    _open_channel()
    try:
        agent = Agent(args)
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
    agent.run()


if __name__ == "__main__":
    main()
