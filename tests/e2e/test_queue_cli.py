"""`linebox queue ...` and queues in the configuration document, through the real command:
queues imported as data, a bad field named by its path with nothing changed, and statistics
over a queue log written by the real Store/Writer, against figures worked out by hand."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.box import CliResult, run_cli, strong_secret

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc).timestamp()  # 08:00 UTC, in the past

QUEUES = [
    {"id": "sales", "name": "Sales", "number": "600", "strategy": "leastrecent",
     "members": [{"agent": "1001"}], "agents": [{"agent": "1002", "skills": {"french": 2}}],
     "overflow": {"goto": "queue", "target": "support"}, "max_wait": 300,
     "callback_key": "1", "exit_key": "0", "exit": {"goto": "extension", "target": "1003"},
     "priority_callers": ["1003"], "service_level": 20, "recording": "always"},
    {"id": "support", "number": "601", "strategy": "ringall", "members": [{"agent": "1003"}],
     "service_level": 10},
]
RECORDING = {"extensions": {"1001": "always"}, "numbers": {"601": "on-demand"}}


def ok(res: CliResult) -> CliResult:
    assert res.returncode == 0, res.describe()
    return res


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    ok(run_cli(d, "init"))
    for n in ("1001", "1002", "1003"):
        ok(run_cli(d, "ext", "add", n, "--secret", strong_secret()))
    return d


def import_doc(data: Path, tmp_path: Path, doc: dict[str, Any], name: str = "config.json") -> CliResult:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return run_cli(data, "config", "import", str(path))


def with_queues(data: Path) -> dict[str, Any]:
    doc = json.loads(ok(run_cli(data, "config", "export")).stdout)
    assert doc["queues"] == [] and doc["recording"] == {"extensions": {}, "numbers": {}}
    doc["queues"] = QUEUES
    doc["recording"] = RECORDING
    return doc


def test_queues_are_imported_listed_and_exported(data: Path, tmp_path: Path) -> None:
    ok(import_doc(data, tmp_path, with_queues(data)))
    listed = json.loads(ok(run_cli(data, "queue", "list", "--json")).stdout)
    assert listed == [
        {"id": "sales", "name": "Sales", "number": "600", "strategy": "leastrecent",
         "members": ["1001"], "agents": ["1002"]},
        {"id": "support", "name": "", "number": "601", "strategy": "ringall", "members": ["1003"], "agents": []},
    ]
    table = ok(run_cli(data, "queue", "list")).stdout.splitlines()
    assert table[0].split("\t")[:3] == ["sales", "600", "leastrecent"]
    exported = json.loads(ok(run_cli(data, "config", "export")).stdout)
    assert exported["queues"] == QUEUES and exported["recording"] == RECORDING

    # The numbers and agents the queues use are guarded against the other commands.
    res = run_cli(data, "ext", "add", "600", "--secret", strong_secret())
    assert res.returncode != 0 and "queue 'sales'" in res.stderr, res.describe()
    res = run_cli(data, "ext", "remove", "1002")
    assert res.returncode != 0 and "queues[sales].agents[0].agent" in res.stderr, res.describe()
    assert "1002" in ok(run_cli(data, "ext", "list")).stdout


def test_a_bad_queue_field_is_named_and_nothing_changes(data: Path, tmp_path: Path) -> None:
    ok(import_doc(data, tmp_path, with_queues(data)))
    before = ok(run_cli(data, "config", "export")).stdout
    doc = json.loads(before)
    doc["extensions"][0]["name"] = "Renamed"  # a good change riding along must not be applied either
    doc["queues"][0]["strategy"] = "fast"
    doc["queues"][1]["members"] = [{"agent": "1003"}, {"agent": "1099"}]
    doc["queues"][1]["number"] = "1001"
    doc["recording"]["numbers"]["700"] = "always"
    res = import_doc(data, tmp_path, doc, "bad.json")
    assert res.returncode != 0, res.describe()
    for text in ("queues[sales].strategy: unknown strategy 'fast'", "queues[support].members[1].agent",
                 "queues[support].number: 1001 is an extension", "recording.numbers.700",
                 "recording.numbers.601: no IVR or queue number",  # support no longer answers on 601
                 "5 problem(s)", "nothing was changed"):
        assert text in res.stderr, (text, res.stderr)
    assert "Traceback" not in res.stderr
    assert ok(run_cli(data, "config", "export")).stdout == before


async def write_log(data: Path) -> None:
    from firmware.acd.events import Kind as K
    from firmware.acd.events import QueueEvent as E
    from firmware.store.db import Store
    from firmware.store.writer import Writer

    t = T0
    events = [
        E(t, "sales", K.LOGIN, agent="1001"), E(t, "sales", K.LOGIN, agent="1002"),
        E(t + 10, "sales", K.ENTER, "c1", position=1, reason="555"),
        E(t + 15, "sales", K.CONNECT, "c1", "1001", wait=5),
        E(t + 20, "sales", K.ENTER, "c2", position=1, reason="556"),
        E(t + 30, "sales", K.ENTER, "c3", position=2, reason="557"),
        E(t + 35, "sales", K.RING_NO_ANSWER, "c2", "1002", wait=15),
        E(t + 38, "sales", K.CONNECT, "c2", "1002", wait=18),
        E(t + 42, "sales", K.ABANDON, "c3", wait=12, position=1),
        E(t + 50, "support", K.ENTER, "c4", position=1, reason="558"),
        E(t + 65, "support", K.CONNECT, "c4", "1003", wait=15),
        E(t + 75, "sales", K.COMPLETE, "c1", "1001", talk=60, wrapup=10),
        E(t + 158, "sales", K.COMPLETE, "c2", "1002", talk=120, wrapup=10),
        E(t + 165, "support", K.COMPLETE, "c4", "1003", talk=100, wrapup=0),
        E(t + 200, "sales", K.PAUSE, agent="1002", reason="lunch"),
        E(t + 500, "sales", K.UNPAUSE, agent="1002"),
        E(t + 3605, "sales", K.ENTER, "c5", position=1, reason="559"),  # the next hour
        E(t + 3608, "sales", K.ABANDON, "c5", wait=3, position=1),
    ]
    store = await Store.open(data)
    writer = Writer(store)
    writer.start()
    try:
        for ev in events:
            writer.queue_event(ev)
        await writer.flush()
    finally:
        await writer.stop()
        await store.close()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M")


def stats(data: Path, *args: str) -> dict[str, Any]:
    return json.loads(ok(run_cli(data, "queue", "stats", "--json", *args)).stdout)


def test_stats_from_the_stored_log_match_hand_computed_figures(data: Path, tmp_path: Path) -> None:
    ok(import_doc(data, tmp_path, with_queues(data)))
    asyncio.run(write_log(data))

    report = stats(data, "--since", iso(T0), "--until", iso(T0 + 600), "--agents")
    assert (report["period"], report["since"], report["until"]) == ("all", "2026-11-20T08:00:00Z",
                                                                    "2026-11-20T08:10:00Z")
    sales, support = report["queues"]
    assert sales == {
        "queue": "sales", "name": "Sales", "period_start": None, "service_level_seconds": 20.0,
        "offered": 3, "answered": 2, "abandoned": 1, "overflowed": 0, "transferred": 0,
        "answered_within_sl": 2, "service_level_pct": 66.7,  # c1 (5 s) and c2 (18 s) of 3
        "asa": 11.5, "aht": 100.0, "average_talk": 90.0,  # (5+18)/2; (60+10+120+10)/2; (60+120)/2
        "average_abandon_wait": 12.0, "longest_wait": 18.0,
        "callbacks_requested": 0, "callbacks_answered": 0, "callbacks_retried": 0, "callbacks_failed": 0,
    }
    # support answers within its own threshold of 10 s or not at all: 15 s is outside
    assert (support["queue"], support["service_level_seconds"], support["offered"], support["answered"],
            support["answered_within_sl"], support["service_level_pct"]) == ("support", 10.0, 1, 1, 0, 0.0)

    agents = {(a["queue"], a["agent"]): a for a in report["agents"]}
    assert set(agents) == {("sales", "1001"), ("sales", "1002"), ("support", "1003")}
    a1, a2 = agents[("sales", "1001")], agents[("sales", "1002")]
    assert (a1["answered"], a1["missed"], a1["talk"], a1["wrapup"], a1["idle"], a1["pause"]) == \
        (1, 0, 60.0, 10.0, 530.0, {})  # 600 s logged in: 60 talk, 10 wrap-up, the rest idle
    assert (a2["answered"], a2["missed"], a2["talk"], a2["wrapup"], a2["idle"], a2["pause"], a2["pause_total"]) == \
        (1, 1, 120.0, 10.0, 170.0, {"lunch": 300.0}, 300.0)

    # A window that starts mid-call: calls are counted by when they entered, agent time is cut
    # exactly at the window's edges although the logins came before it.
    later = stats(data, "--since", iso(T0 + 120), "--until", iso(T0 + 600), "--agents", "--queue", "sales")
    assert [(q["queue"], q["offered"]) for q in later["queues"]] == [("sales", 0)]
    a2 = {a["agent"]: a for a in later["agents"]}["1002"]
    assert (a2["answered"], a2["talk"], a2["wrapup"], a2["pause"], a2["idle"]) == \
        (0, 38.0, 10.0, {"lunch": 300.0}, 132.0)  # 480 s: 120..158 talk, ..168 wrap-up, 200..500 lunch

    # Per hour: the second hour's caller is in its own row; the whole log counts 4 offered.
    hourly = stats(data, "--period", "hour", "--queue", "sales")
    assert [(q["period_start"], q["offered"], q["abandoned"]) for q in hourly["queues"]] == \
        [("2026-11-20T08:00:00Z", 3, 1), ("2026-11-20T09:00:00Z", 1, 1)]
    assert hourly["agents"] is None
    assert stats(data)["queues"][0]["offered"] == 4

    table = ok(run_cli(data, "queue", "stats", "--since", iso(T0), "--until", iso(T0 + 600), "--agents")).stdout
    assert "66.7" in table and "lunch 5:00" in table, table

    log = json.loads(ok(run_cli(data, "queue", "log", "--json", "--queue", "support")).stdout)
    assert [(e["kind"], e["call_id"], e["wait"]) for e in log] == \
        [("ENTER", "c4", 0.0), ("CONNECT", "c4", 15.0), ("COMPLETE", "c4", 0.0)]
    assert log[0]["time"] == T0 + 50 and log[0]["reason"] == "558"
    raw = ok(run_cli(data, "queue", "log", "--since", iso(T0 + 3600))).stdout.splitlines()
    assert len(raw) == 2 and "ABANDON" in raw[1]


@pytest.mark.parametrize("args, words", [
    (("queue", "stats", "--since", "yesterday"), "YYYY-MM-DD"),
    (("queue", "stats", "--period", "week"), "invalid choice"),
    (("queue", "stats", "--queue", "nope"), "no queue 'nope'"),
    (("queue", "log", "--since", "2026-11-21", "--until", "2026-11-20"), "later than --since"),
])
def test_bad_arguments_are_one_line_errors(data: Path, args: tuple[str, ...], words: str) -> None:
    res = run_cli(data, *args)
    err = res.stderr.strip()
    assert res.returncode != 0 and words in err and "\n" not in err and "Traceback" not in err, res.describe()


def test_queues_and_ivr_refer_to_each_other_consistently(data: Path, tmp_path: Path) -> None:
    doc = with_queues(data)
    doc["queues"][0]["exit"] = {"goto": "menu", "target": "main"}
    doc["ivr"] = {"menus": [{"id": "main", "options": {"1": {"goto": "queue", "target": "sales"},
                                                       "2": {"goto": "queue", "target": "billing"}}}]}
    doc["ivr_numbers"] = {"500": "main", "601": "main"}
    doc["recording"]["numbers"]["500"] = "never"
    res = import_doc(data, tmp_path, doc)
    assert res.returncode != 0, res.describe()
    assert "ivr.menus[main].options[2].target: no queue 'billing'" in res.stderr, res.stderr
    assert "queues[support].number: 601 is already an IVR number" in res.stderr, res.stderr
    assert res.stderr.count("linebox: ") == 3, res.stderr  # those two and the summary

    del doc["ivr"]["menus"][0]["options"]["2"]
    doc["ivr_numbers"] = {"500": "main"}
    ok(import_doc(data, tmp_path, doc))
    assert json.loads(ok(run_cli(data, "config", "export")).stdout)["ivr"] == doc["ivr"]

    # The other commands keep it consistent: a queue's number is not free for the IVR, the IVR
    # may not drop the menu a queue's exit key leads to, and a number the policy names stays.
    res = run_cli(data, "ivr", "number", "600", "main")
    assert res.returncode != 0 and "queue 'sales'" in res.stderr, res.describe()
    ivr = tmp_path / "ivr.json"
    ivr.write_text(json.dumps({"menus": [{"id": "other", "options": {"1": {"goto": "queue", "target": "sales"}}}]}))
    res = run_cli(data, "ivr", "import", str(ivr))
    assert res.returncode != 0 and "queues[sales].exit.target: no menu 'main'" in res.stderr, res.describe()
    res = run_cli(data, "ivr", "number", "500", "--remove")
    assert res.returncode != 0 and "recording.numbers.500" in res.stderr, res.describe()
    assert json.loads(ok(run_cli(data, "config", "export")).stdout)["ivr_numbers"] == {"500": "main"}
