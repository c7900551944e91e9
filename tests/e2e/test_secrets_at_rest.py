"""A real box keeps its data to its own user: `linebox init` and `linebox run` make the data
directory, the database (with its -wal and -shm) and everything the running box adds (the
recordings directory, run.json...) 0700/0600; a PIN set with the CLI is nowhere in the
database's bytes; and a data directory loosened by hand is reported at start, with the fix."""
from __future__ import annotations

import stat
from pathlib import Path

PIN = "64209753"  # 8 digits: no port, timestamp or call id in the file holds them by chance


def _open_to_others(data: Path) -> list[str]:
    return [f"{p} {stat.S_IMODE(p.stat().st_mode):04o}" for p in [data, *data.rglob("*")]
            if p.stat().st_mode & 0o077]


def test_the_data_directory_is_private_and_a_loosened_one_is_reported(box_factory) -> None:
    box = box_factory("box", start=False)  # `linebox init` and three extensions, through the CLI
    data = box.data
    box.cli("voicemail", "enable", "1002", "--pin", PIN)
    assert _open_to_others(data) == []
    box.start()
    assert (data / "recordings").is_dir() and (data / "linebox.db-wal").exists()
    assert _open_to_others(data) == []
    assert stat.S_IMODE((data / "linebox.db-wal").stat().st_mode) == 0o600
    assert PIN.encode() not in b"".join(p.read_bytes() for p in data.glob("linebox.db*"))
    assert "open to other users" not in box.log_path.read_text()
    box.stop()

    data.chmod(0o755)
    (data / "recordings").chmod(0o755)
    box.start()
    log = box.log_path.read_text()
    assert f"WARNING linebox: directory {data} is open to other users (mode 0755)" in log, log[-2000:]
    assert f"fix with `chmod 700 {data}`" in log and f"fix with `chmod 700 {data / 'recordings'}`" in log
