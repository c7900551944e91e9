"""The number plan walked on the demo configuration: every number the demo answers to (and a
few it does not) resolves to the same destination as before the plan existed, the analog dial
plan gives the same verdict on every prefix, and the set of dialable numbers is the same.

tests/unit/fixtures/numberplan_demo.json was captured from the code before the change, with
Pbx.route's if/elif chain instrumented (its capture script is in the fixture's "how" key); here
the plan's look-up is put in the same canonical form and compared."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from firmware.numberplan import Destination
from firmware.pbx.apps import FEATURE_CODES
from firmware.system.app import Box, RunOptions
from tests.e2e.box import run_cli
from tests.peers.netutil import LOOPBACK, free_port, free_tcp_port, free_udp_range

BEFORE = json.loads((Path(__file__).parents[1] / "unit" / "fixtures" / "numberplan_demo.json").read_text())


def canonical(dest: Destination) -> list:
    """A destination as the capture wrote what the old chain did with the number."""
    if dest.kind in ("menu", "condition", "queue", "extension"):
        return ["place", dest.kind, dest.target]
    if dest.kind == "feature":
        return ["app", FEATURE_CODES[dest.target].__name__]
    if dest.kind == "agent":
        return ["agent", dest.target, dest.arg]
    if dest.kind == "messages":
        return ["voicemail-login" if dest.arg == "login" else "voicemail-check", None]
    if dest.kind == "route":
        return ["trunk", dest.target, list(dest.lines)]
    raise AssertionError(f"a destination kind the old chain never produced: {dest}")


def test_the_demo_numbers_go_where_they_always_went(tmp_path: Path):
    data = tmp_path / "data"
    assert run_cli(data, "demo").returncode == 0

    async def walk() -> dict:
        lo = free_udp_range(50)
        box = Box(RunOptions(data=data, bind=LOOPBACK, sip_port=free_port(), http_port=free_tcp_port(),
                             rtp_lo=lo, rtp_hi=lo + 49))
        await box.start()
        try:
            plan = box.pbx.plan
            complete = box.lines._dial_plan()
            return {"routes": {n: [canonical(plan.resolve(n))] for n in BEFORE["routes"]},
                    "dialable": sorted(box.pbx.dialable()),
                    "dial_plan": {p: [complete(p, False), complete(p, True)] for p in BEFORE["dial_plan"]}}
        finally:
            await box.stop()

    after = asyncio.run(walk())
    for number, before in BEFORE["routes"].items():
        assert after["routes"][number] == before, number
    assert after["dialable"] == BEFORE["dialable"]
    assert after["dial_plan"] == BEFORE["dial_plan"]


def test_the_cli_refuses_a_number_someone_owns_with_the_owners_name(tmp_path: Path):
    """The reported poisoning: with queue 600 in place an extension 600 was accepted by the web.
    The CLI and the web now ask the number plan the same question (the web's page test is in
    tests/web/test_extensions.py's family; here the CLI and the local API the web uses)."""
    from firmware.api.localapi import Invalid, LocalApi

    data = tmp_path / "data"
    assert run_cli(data, "demo").returncode == 0  # queue 600, IVR 500, extensions 1001-1003
    before = run_cli(data, "config", "export").stdout
    r = run_cli(data, "ext", "add", "600")
    assert r.returncode == 1 and "600 is also queue 'support''s number; nothing was changed" in r.stderr, r.stderr
    r = run_cli(data, "ext", "add", "500")
    assert r.returncode == 1 and "500 is already an IVR number" in r.stderr, r.stderr
    r = run_cli(data, "ivr", "number", "1002", "main")
    assert r.returncode == 1 and "1002 is also an extension" in r.stderr, r.stderr
    r = run_cli(data, "route", "add", "10XX", "--lines", "fxo1")
    assert r.returncode == 1 and "routes[0].pattern: 10XX would take extension 1001's number" in r.stderr, r.stderr
    assert run_cli(data, "config", "export").stdout == before

    api = LocalApi(data, api=None)
    try:
        for number, said in (("600", "600 is also queue 'support''s number"), ("500", "500 is already an IVR number")):
            try:
                api.add_extensions([(number, "")])
            except Invalid as exc:
                assert exc.errors == {"number": said}
            else:
                raise AssertionError(f"the local API took extension {number}")
    finally:
        api.close()
    assert run_cli(data, "config", "export").stdout == before
    # A number nobody owns is taken, and the route that needs a prefix is taken with one.
    assert run_cli(data, "ext", "add", "1004").returncode == 0
    assert run_cli(data, "route", "add", "810XX", "--lines", "fxo1").returncode == 0
