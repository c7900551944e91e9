"""The `linebox` CLI contract: bad arguments give a one-line message on stderr that says
what to fix and a non-zero exit; `ext list` never prints secrets."""
from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from tests.e2e.box import LOOPBACK, CliResult, run_cli, strong_secret
from tests.peers.netutil import free_port, free_tcp_port, free_udp_range


def assert_one_line_error(res: CliResult, *patterns: str) -> None:
    assert res.returncode != 0, f"expected a non-zero exit\n{res.describe()}"
    err = res.stderr.strip()
    assert err, f"no message on stderr\n{res.describe()}"
    assert "Traceback" not in err, f"a traceback instead of a message\n{res.describe()}"
    assert "\n" not in err, f"the error is not one line\n{res.describe()}"
    for pat in patterns:
        assert re.search(pat, err, re.I), f"the message should match /{pat}/: {err!r}"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    res = run_cli(d, "init")
    assert res.returncode == 0, res.describe()
    assert (d / "linebox.db").exists(), f"init did not create {d / 'linebox.db'}"
    return d


def test_init_then_empty_lists(data: Path):
    res = run_cli(data, "ext", "list")
    assert res.returncode == 0 and res.stdout.strip() == "", res.describe()
    res = run_cli(data, "cdr", "--json")
    assert res.returncode == 0, res.describe()
    assert res.stdout.strip() == "[]", res.describe()


def test_duplicate_extension(data: Path):
    assert run_cli(data, "ext", "add", "1001", "--secret", strong_secret()).returncode == 0
    res = run_cli(data, "ext", "add", "1001", "--secret", strong_secret())
    assert_one_line_error(res, r"1001", r"already|exists|remove")


@pytest.mark.parametrize("secret", ["1234", "abc", "1001", "aaaaaaaa"])
def test_weak_secret(data: Path, secret: str):
    res = run_cli(data, "ext", "add", "1001", "--secret", secret)
    assert_one_line_error(res, r"secret", r"weak|short|long|least|strong|character|guess|same")
    assert run_cli(data, "ext", "list").stdout.strip() == ""


def test_empty_secret(data: Path):
    res = run_cli(data, "ext", "add", "1001", "--secret", "")
    assert_one_line_error(res, r"secret")
    assert run_cli(data, "ext", "list").stdout.strip() == ""


@pytest.mark.parametrize("number", ["alice", "12a4", "+1001", "10 01"])
def test_non_numeric_number(data: Path, number: str):
    res = run_cli(data, "ext", "add", number, "--secret", strong_secret())
    assert_one_line_error(res, r"digit|numeric|number")
    assert run_cli(data, "ext", "list").stdout.strip() == ""


def test_ext_list_never_prints_secrets(data: Path):
    s1, s2 = strong_secret(), strong_secret()
    assert run_cli(data, "ext", "add", "1001", "--secret", s1, "--name", "Alice Front Desk").returncode == 0
    assert run_cli(data, "ext", "add", "1002", "--secret", s2).returncode == 0
    res = run_cli(data, "ext", "list")
    assert res.returncode == 0, res.describe()
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 2, res.stdout
    assert any("1001" in l and "Alice Front Desk" in l for l in lines), res.stdout
    assert any("1002" in l for l in lines), res.stdout
    for s in (s1, s2):
        assert s not in res.stdout and s not in res.stderr, "ext list printed a secret"
    assert run_cli(data, "ext", "remove", "1002").returncode == 0
    res = run_cli(data, "ext", "list")
    assert "1002" not in res.stdout and "1001" in res.stdout, res.stdout


def _run(data: Path, *, sip: int | None = None, http: int | None = None,
         rtp: str | None = None) -> CliResult:
    """`linebox run` that is expected to refuse to start (a start is a timeout failure)."""
    sip = sip or free_port()
    http = http or free_tcp_port()
    while rtp is None:
        lo = free_udp_range(20)
        if not any(lo <= p < lo + 20 for p in (sip, http)):
            rtp = f"{lo}-{lo + 19}"
    return run_cli(data, "run", "--bind", LOOPBACK, "--sip-port", str(sip), "--http-port",
                   str(http), "--rtp-ports", rtp, timeout=10)


@pytest.mark.parametrize("rtp", ["abc", "30000-20000", "20000", "70000-70200", "20000-"])
def test_bad_rtp_ports(data: Path, rtp: str):
    res = _run(data, rtp=rtp)
    assert_one_line_error(res, r"rtp", r"LO-HI|\d+-\d+|range|between|65535")


def test_sip_port_in_use_udp(data: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
        res = _run(data, sip=port)
    assert_one_line_error(res, str(port), r"in use|already|busy|another|taken")


def test_sip_port_in_use_tcp(data: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, free_port()))
        s.listen()
        port = s.getsockname()[1]
        res = _run(data, sip=port)
    assert_one_line_error(res, str(port), r"in use|already|busy|another|taken")


def test_http_port_in_use(data: Path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        s.listen()
        port = s.getsockname()[1]
        res = _run(data, http=port)
    assert_one_line_error(res, str(port), r"in use|already|busy|another|taken")


def test_set_rejects_unknown_key_and_bad_value(data: Path):
    assert run_cli(data, "set", "security.ban_failures", "7").returncode == 0
    assert_one_line_error(run_cli(data, "set", "no.such.key", "1"), r"no\.such\.key")
    assert_one_line_error(run_cli(data, "set", "rtp.timeout", "soon"), r"rtp\.timeout")


def test_demo_sets_up_extensions_and_an_ivr_once(tmp_path) -> None:
    from tests.e2e.box import run_cli

    data = tmp_path / "demo"
    first = run_cli(data, "demo")
    assert first.returncode == 0, first.describe()
    assert "dial 500 for the IVR menu 'main'" in first.stdout
    second = run_cli(data, "demo")  # idempotent: same extensions, same passwords
    assert second.stdout == first.stdout
    assert run_cli(data, "ivr", "numbers").stdout.split() == ["500", "main"]
    assert len(list((data / "prompts" / "say").glob("*.wav"))) == 1
    # the demo has something of each kind: an analog phone and line on the simulated board, a queue
    assert "dial 600 for the queue 'support'" in first.stdout
    assert "fxs1 is extension 1003" in first.stdout
    doc = json.loads(run_cli(data, "config", "export").stdout)
    assert doc["ports"] == {"fxs1": {"extension": "1003"}, "fxo1": {"inbound": "500"}}
    assert doc["settings"]["analog.driver"] == "sim"
    assert doc["ivr"]["menus"][0]["options"]["3"] == {"goto": "queue", "target": "support"}
    fresh = tmp_path / "again"
    run_cli(fresh, "init")
    (tmp_path / "demo.json").write_text(json.dumps(doc))
    imported = run_cli(fresh, "config", "import", str(tmp_path / "demo.json"))
    assert imported.returncode == 0, imported.describe()  # the demo is a valid document
