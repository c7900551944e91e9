"""`python -m webui` as a test subject: its own process beside a real `linebox run`.

    web = Web(tmp_path / "web", data=box.data, api=f"http://127.0.0.1:{box.http_port}",
              sip_port=box.sip_port).start()
    web.url("/extensions")
    web.stop()

Like tests/e2e/box.py, nothing here imports the web admin: the tests hold it to what it
serves. Every wait has a timeout and a failure carries the tail of the web's log.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.box import REPO, _env
from tests.peers.netutil import LOOPBACK, free_tcp_port


class WebError(AssertionError):
    pass


class Web:
    def __init__(self, root: Path, *, data: Path, api: str | None, sip_port: int = 5060, args: tuple[str, ...] = ()):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = Path(data)
        self.api = api
        self.sip_port = sip_port
        self.args = tuple(args)
        self.port = free_tcp_port()
        self.log_path = self.root / "web.log"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "webui", "--data", str(self.data), "--host", LOOPBACK,
                "--port", str(self.port), "--sip-host", LOOPBACK, "--sip-port", str(self.sip_port),
                # Test data directories are root's: tests/web/test_privileges.py runs it as a real box does.
                "--allow-root", *self.args]
        if self.api:
            argv += ["--api", self.api]
        return argv

    def start(self, timeout: float = 15.0) -> "Web":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), cwd=REPO, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise WebError(f"the web process exited rc={self.proc.returncode}\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url("/static/app.css"), timeout=1).close()
                return self
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise WebError(f"the web admin did not answer within {timeout:g}s\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return self.proc.returncode

    def rss_kib(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise WebError("no VmRSS")

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return f"--- {self.log_path} ---\n" + "\n".join(text)
