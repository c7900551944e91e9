"""The guided line test through a real `linebox run` and its CLI, on three simulated lines of
three countries at once: the test script plays the installer (calls the line when told, answers
the test call, presses a key, hangs up) and `linebox line test` proposes each country's settings."""
from __future__ import annotations

import json
import subprocess
import threading
import time

from board.regions import REGIONS
from tests.e2e.box import LINEBOX, REPO, Box
from tests.e2e.test_analog import sim

REGION_OF = {"fxo1": "us", "fxo2": "uk", "fxo3": "de"}


def installer(box: Box, port: str, proc: subprocess.Popen, out: list[str]) -> None:
    """Reads the CLI's prompts and does what they say, on the simulated exchange."""
    assert proc.stdout is not None
    called = answered = False
    for line in proc.stdout:
        out.append(line)
        if line.startswith(">>>") and not called:
            called = True
            region = REGION_OF[port]
            name = [] if REGIONS[region].cid_standard == "dtmf" else ["--name", "INSTALLER"]
            time.sleep(1.0)
            sim(box, "co", port, "ring", "--cid", "01632960123", *name)
        elif line.startswith(">>>") and called and not answered:
            answered = True
            deadline = time.monotonic() + 60
            while sim(box, "co", port, "status")["state"] != "connected":
                assert time.monotonic() < deadline, "the box never called the test number"
                time.sleep(0.2)
            time.sleep(1.0)
            sim(box, "co", port, "key", "5")
            time.sleep(5.0)
            sim(box, "co", port, "hangup")


def test_line_test_of_three_countries_proposes_their_settings(box_factory) -> None:
    box = box_factory("lines", settings={"analog.driver": "sim", "analog.sim_fxs": 0,
                                         "analog.sim_fxo_regions": "us,uk,de"})
    box.cli("port", "set", "fxo2", "--inbound", "1001")
    procs = {}
    outs: dict[str, list[str]] = {}
    threads = []
    for port in REGION_OF:
        procs[port] = subprocess.Popen(
            [str(LINEBOX), "--data", str(box.data), "line", "test", port, "--number", "5551234", "--json",
             *(["--apply"] if port == "fxo2" else [])],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        outs[port] = []
        t = threading.Thread(target=installer, args=(box, port, procs[port], outs[port]), daemon=True)
        t.start()
        threads.append(t)
    for port, proc in procs.items():
        rc = proc.wait(timeout=240)
        assert rc == 0, f"{port}: rc={rc} {proc.stderr.read() if proc.stderr else ''}\n{''.join(outs[port])}"
    for t in threads:
        t.join(timeout=10)
    for port, region in REGION_OF.items():
        text = "".join(outs[port])
        settings = json.loads(text[text.index("{"):])
        reg = REGIONS[region]
        assert settings["region"] == region, (port, settings)
        assert (settings["cid_standard"], settings["cid_start"], settings["cid_format"]) == \
            (reg.cid_standard, reg.cid_start, reg.cid_format), (port, settings)
        assert settings["disconnect_polarity"] == reg.disconnect_polarity, (port, settings)
        assert settings["answer_polarity"] is False, (port, settings)
        assert settings["busy_cadence_ms"], (port, settings)
    # the UK line's proposal was stored for it, and the line still takes calls
    uk = {p["port"]: p for p in json.loads(box.cli("port", "list", "--json").stdout)}["fxo2"]
    assert uk["inbound"] == "1001" and uk["line"]["disconnect_polarity"] is REGIONS["uk"].disconnect_polarity, uk
    # the lines are given back: a second test may run, a bad one is refused with a reason
    r = box.cli("line", "test", "fxo9", "--number", "5551234", check=False)
    assert r.returncode != 0 and "no port 'fxo9'" in r.stderr, r.stderr
