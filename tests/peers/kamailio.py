"""Kamailio (Debian's `kamailio`) as a SIP provider's registrar in e2e tests.

    with Kamailio(tmp_path / "kam", users={"4930123": "pw"}, algorithm="SHA-256") as kam:
        ...  # REGISTER to kam.addr for sip:4930123@trunk.test
        assert "sip:4930123@127.0.0.1:5099" in kam.location()

The configuration is generated per instance: UDP and TCP on 127.0.0.1 and a free port, one
worker per listener and a few MB of memory (the machine is small and shared). Accounts and
passwords are written into the script, checked with the auth module's `pv_www_authenticate`
(MD5 or SHA-256, qop=auth; an expired nonce is challenged again with stale=true);
registrations go to usrloc in memory (`save("location")`, Min-Expires enforced with 423), and
any other request is relayed to the registered contact of its Request-URI's user (`lookup`),
which is how a test proves a binding routes. Every REGISTER is written to the log with its
user, CSeq and digest username, for counting. `kamcmd` reads the location table over the ctl
module's Unix socket. Nothing listens beyond 127.0.0.1.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
from pathlib import Path

from tests.peers.netutil import LOOPBACK, free_port, wait_until

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
# Debian's multiarch directory of this machine (aarch64-linux-gnu on a Pi)
MODULES = f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}/kamailio/modules"
LOG_TAG = "linebox-test"

_CONFIG = """#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{domain}"
mpath="{modules}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "ctl.so"
loadmodule "kex.so"

modparam("ctl", "binrpc", "unixs:{ctl}")
modparam("auth", "algorithm", "{algorithm}")
modparam("auth", "nonce_expire", {nonce_expire})
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", {min_expires})
modparam("registrar", "min_expires_mode", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        xlog("L_NOTICE", "{tag} REGISTER user=$tU cseq=$cs auth=$au expires=$hdr(Expires)\\n");
        $var(pw) = "{nobody}";
{accounts}
        pv_www_authenticate("$td", "$var(pw)", "0");
        $var(rc) = $rc;
        if ($var(rc) == -4) {{
            www_challenge("$td", "17");
            exit;
        }}
        if ($var(rc) < 0) {{
            www_challenge("$td", "1");
            exit;
        }}
        save("location");  # answers by itself: 200 with the bindings, or 423 with Min-Expires
        exit;
    }}
    if ($rU == $null) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    t_relay();
}}
"""


def _quoted(text: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._~+-]+", text) is None:
        raise ValueError(f"keep test accounts to plain characters: {text!r}")
    return text


class Kamailio:
    """One Kamailio process on 127.0.0.1 (see the module docstring). `start()` waits until it
    answers OPTIONS; `stop()` ends it (and only it) with SIGTERM, then SIGKILL."""

    def __init__(self, work_dir: Path, *, users: dict[str, str], domain: str = "trunk.test",
                 algorithm: str = "MD5", min_expires: int = 10, nonce_expire: int = 300,
                 host: str = LOOPBACK, port: int | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.port = port or free_port(host)
        self.domain = domain
        self.ctl = self.work_dir / "kamailio_ctl"
        self.log_path = self.work_dir / "kamailio.log"
        accounts = "\n".join(
            f'        if ($au == "{_quoted(user)}") {{ $var(pw) = "{_quoted(password)}"; }}'
            for user, password in users.items())
        self.config = self.work_dir / "kamailio.cfg"
        self.config.write_text(_CONFIG.format(
            host=host, port=self.port, domain=domain, modules=MODULES, ctl=self.ctl, algorithm=algorithm,
            nonce_expire=nonce_expire, min_expires=min_expires, tag=LOG_TAG, accounts=accounts,
            nobody=secrets.token_hex(16)))
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)

    def __enter__(self) -> Kamailio:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 15.0) -> None:
        """Start on the same address as before (a restart keeps the port)."""
        if self.proc is not None:
            raise RuntimeError("already running")
        self.starts += 1
        log = open(self.log_path, "ab")
        try:
            # -DD: stays in the foreground (our child), forks its workers; -E: logs to stderr.
            self.proc = subprocess.Popen(
                [KAMAILIO, "-f", str(self.config), "-DD", "-E", "-m", "16", "-M", "4",
                 "-Y", str(self.work_dir), "-P", str(self.work_dir / "kamailio.pid"), "-w", str(self.work_dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        try:
            wait_until(self._answers, timeout, interval=0.1, what=f"kamailio on {self.host}:{self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"kamailio did not come up:\n{self.log_tail()}") from None

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # the main process stops its workers
        try:
            proc.wait(timeout)
            # Its workers may outlive it by a moment, still holding the port a restart wants.
            wait_until(lambda: not _group_alive(proc.pid), timeout, interval=0.05, what="kamailio's workers to exit")
        except (subprocess.TimeoutExpired, TimeoutError):
            if _group_alive(proc.pid):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: only its workers are in it
            proc.wait(timeout)

    def _answers(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"kamailio exited:\n{self.log_tail()}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((self.host, 0))
            s.settimeout(0.5)
            s.sendto(options(f"sip:{self.host}:{self.port}", s.getsockname()), self.addr)
            try:
                data, _ = s.recvfrom(65535)
            except OSError:
                return False
            return data.startswith(b"SIP/2.0 200")

    # -- what it saw -------------------------------------------------------------------------

    def registers(self, user: str | None = None) -> list[dict[str, str]]:
        """Every REGISTER it received (since the first start), oldest first."""
        out = []
        for line in self.log_tail(None).splitlines():
            if f"{LOG_TAG} REGISTER " not in line:
                continue
            fields = dict(re.findall(r"(\w+)=(\S*)", line.split(f"{LOG_TAG} REGISTER ", 1)[1]))
            if user is None or fields.get("user") == user:
                out.append(fields)
        return out

    def location(self, timeout: float = 5.0) -> str:
        """The location table (usrloc) as `kamcmd ul.dump` prints it."""
        res = subprocess.run([KAMCMD, "-s", f"unixs:{self.ctl}", "ul.dump"], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise RuntimeError(f"kamcmd ul.dump failed: {res.stderr or res.stdout}")
        return res.stdout

    def log_tail(self, lines: int | None = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text if lines is None else "\n".join(text.splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def options(uri: str, source: tuple[str, int], *, call_id: str | None = None) -> bytes:
    """An OPTIONS from `source` (a plain UDP socket of the test) to `uri`."""
    host, port = source
    call_id = call_id or secrets.token_hex(8)
    return (f"OPTIONS {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:probe@{host}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: 1 OPTIONS\r\n"
            f"Content-Length: 0\r\n\r\n").encode()

