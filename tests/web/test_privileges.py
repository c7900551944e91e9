"""Started by root as on a real box, the PBX and the web admin run as the `linebox` user that owns
the data directory (scripts/setup creates it), keeping only the capabilities each needs; the web
admin refuses to serve as root at all; and an upload through the unprivileged web admin is
converted, stored as the box's user and played by a menu's owner process."""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.box import REPO, Box, run_cli
from tests.web.conftest import create_admin
from tests.web.webproc import Web

CAP_NET_BIND_SERVICE, CAP_NET_ADMIN = 10, 12


def status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def uids(pid: int) -> set[int]:
    return {int(u) for u in status(pid)["Uid"].split()}


def caps(pid: int, which: str) -> int:
    return int(status(pid)[which], 16)


@pytest.fixture
def linebox_user() -> pwd.struct_passwd:
    if os.geteuid() != 0:
        pytest.fail("these tests start the box as root, as systemd and scripts/run do: run them as root")
    try:
        return pwd.getpwnam("linebox")
    except KeyError:
        pytest.fail("no user `linebox`: scripts/setup creates it")


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder the `linebox` user can reach, with the checkout and the Python it runs on reachable
    too, as on an installed box (/opt/linebox, Debian's /usr/bin/python3). A fresh clone may sit
    below a 0700 temporary folder, and a developer's Python under /root (pyenv): the directories
    above them get o+x for the test and their modes back after it."""
    changed: list[tuple[Path, int]] = []
    above = {d for top in (REPO, Path(os.__file__).parent, Path(sys.base_prefix)) for d in (top, *top.parents)}
    for d in sorted(above, key=lambda p: len(p.parts)):
        mode = stat.S_IMODE(d.stat().st_mode)
        if not mode & stat.S_IXOTH:
            changed.append((d, mode))
            d.chmod(mode | stat.S_IXOTH)
    root = Path(tempfile.mkdtemp(prefix="lb-priv-", dir="/tmp"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for d, mode in reversed(changed):
            d.chmod(mode)


def owned_by(path: Path, uid: int) -> list[str]:
    """Every file under ``path`` not owned by ``uid``."""
    return [str(p) for p in [path, *path.rglob("*")] if p.lstat().st_uid != uid]


def test_box_and_web_admin_run_as_the_data_directorys_user(linebox_user, reachable: Path, page, tmp_path: Path):
    box = Box(reachable / "box", extensions=("1001",))
    box.setup()  # as root, like `linebox demo` in scripts/run
    subprocess.run(["chown", "-R", "linebox:linebox", str(box.data)], check=True)
    box.start()
    web = None
    try:
        pid = box.proc.pid
        assert uids(pid) == {linebox_user.pw_uid}, status(pid)["Uid"]
        assert caps(pid, "CapEff") == caps(pid, "CapPrm") == 1 << CAP_NET_BIND_SERVICE
        assert caps(pid, "CapInh") == 0 and caps(pid, "CapAmb") == 0
        assert "running as root" not in box.log_text()

        # A CLI command run by root on that data becomes its user too: nothing it writes is root's.
        box.add_extension("1002", name="Second")
        assert run_cli(box.data, "ext", "list").stdout.count("100") == 2

        web = Web(tmp_path / "web", data=box.data, api=f"http://127.0.0.1:{box.http_port}",
                  sip_port=box.sip_port).start()
        wid = web.proc.pid
        assert uids(wid) == {linebox_user.pw_uid}, status(wid)["Uid"]
        assert caps(wid, "CapEff") == (1 << CAP_NET_BIND_SERVICE) | (1 << CAP_NET_ADMIN)
        assert caps(wid, "CapInh") == 0

        # It works as that user: the wizard stores the admin, an upload is converted by sox (a
        # child with no capability at all) and lands as the box's user.
        create_admin(page, web)
        page.goto(web.url("/prompts"))
        tone = tmp_path / "tone.wav"
        subprocess.run(["sox", "-n", "-r", "16000", "-c", "2", str(tone), "synth", "1", "sine", "700"], check=True)
        page.set_input_files("#file", str(tone))
        page.fill("#name", "tone.wav")
        page.click("#upload-form button[type=submit]")
        assert "Uploaded tone.wav" in page.inner_text("p.notice")
        assert (box.data / "prompts" / "uploads" / "tone.wav").stat().st_uid == linebox_user.pw_uid

        # Nothing in the data directory belongs to root, and nothing is readable by others.
        assert owned_by(box.data, linebox_user.pw_uid) == []
        assert stat.S_IMODE(box.data.stat().st_mode) & 0o077 == 0
        assert stat.S_IMODE((box.data / "api.secret").stat().st_mode) == 0o600
    finally:
        if web is not None:
            web.stop()
        rc = box.stop()
        assert rc == 0, box.log_tail()


def test_the_web_admin_refuses_to_serve_as_root(linebox_user, tmp_path: Path):
    data = tmp_path / "data"
    assert run_cli(data, "init").returncode == 0
    out = subprocess.run([sys.executable, "-m", "webui", "--data", str(data), "--host", "127.0.0.1", "--port", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "refusing to serve the web admin as root" in out.stderr and "chown -R linebox:" in out.stderr, out.stderr


def test_the_capability_kept_is_the_one_that_works(linebox_user, reachable: Path):
    """net_admin kept across the drop really lets the web admin's process change an address (in a
    namespace of its own), and without it the same change is refused."""
    data = reachable / "data"
    data.mkdir()
    os.chown(data, linebox_user.pw_uid, linebox_user.pw_gid)
    ns = f"lbpriv{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    script = ("import sys; from pathlib import Path; from firmware.system.privileges import drop_to_owner\n"
              "d = drop_to_owner(Path(sys.argv[1]), keep=sys.argv[2:])\n"
              "from firmware.system.rtnetlink import Rtnetlink\n"  # what the network page changes it with
              "with Rtnetlink() as nl:\n"
              "    nl.change_address(True, nl.link_index('lo'), '198.51.100.9', 32)\n"
              "print(d.user, d.kept)\n")
    try:
        without = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script, str(data)],
                                 cwd=REPO, capture_output=True, text=True, timeout=30)
        assert without.returncode != 0 and "Operation not permitted" in without.stderr, without.stderr
        kept = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script, str(data), "net_admin"],
                              cwd=REPO, capture_output=True, text=True, timeout=30)
        assert kept.returncode == 0 and kept.stdout.strip() == "linebox ('net_admin',)", kept.stderr
        shown = subprocess.run(["ip", "netns", "exec", ns, "ip", "-4", "addr", "show", "dev", "lo"],
                               capture_output=True, text=True, check=True).stdout
        assert "198.51.100.9/32" in shown
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
