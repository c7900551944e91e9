"""CDR search: a call recorded between two pjsua2 phones is found, filtered, exported as CSV
(the rows the filter shows, quoted right) and its recording plays in the browser (the route
answers Range requests with the WAV's own bytes; the <audio> element plays and advances)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from tests.e2e.test_calls import connect
from tests.peers.netutil import wait_until
from tests.web.conftest import DESKTOP, PHONE, finish_wizard

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(page, name: str) -> None:
    """Screenshots for docs/web.md, when asked for (LINEBOX_SHOTS=1): desktop and phone."""
    if not os.environ.get("LINEBOX_SHOTS"):
        return
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.reload()  # drawn at that width, as a phone would
        page.wait_for_load_state("load")
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=False)
    page.set_viewport_size(DESKTOP)


def test_cdr_search_export_and_recording_playback(box_factory, web_factory, page, phones):
    box = box_factory("box", extensions=("1001", "1002"), settings={"recording.calls": "always"})
    web = web_factory(box)
    a, b = phones("a1001"), phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        assert ph.register(server=box.sip_addr, user=ext, password=box.secret(ext)) == 200
    connect(a, b)
    a.wait_rx_packets(100, timeout=15)
    a.hangup()
    b.wait_state("DISCONNECTED")
    b.call("1999")  # no such extension: a FAILED row from 1002, no recording
    b.wait_state("DISCONNECTED")
    rows = box.wait_cdr(2)
    recorded = next(r for r in rows if r["recording"])
    wav = box.data / "recordings" / recorded["recording"]
    wait_until(wav.exists, 10, what=f"{wav.name} finished")

    finish_wizard(page, web)
    page.goto(web.url("/cdr"))
    assert page.locator("#cdr tr[data-cdr]").count() == 2
    page.fill("#caller", "1001")
    page.click("#cdr-filter button[type=submit]")
    page.wait_for_url(lambda u: "caller=1001" in u)
    assert [r.get_attribute("data-cdr") for r in page.locator("#cdr tr[data-cdr]").all()] == [recorded["id"]]

    # The recording's route: the WAV's own bytes, a Range answered with 206.
    src = page.get_attribute(f"tr[data-cdr='{recorded['id']}'] audio", "src")
    whole = page.request.get(web.url(src))
    assert whole.status == 200 and whole.headers["content-type"].startswith("audio/wav"), whole.headers
    body = whole.body()
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE" and body == wav.read_bytes()
    part = page.request.get(web.url(src), headers={"Range": "bytes=100-199"})
    assert part.status == 206 and part.body() == wav.read_bytes()[100:200]
    assert page.request.get(web.url(src + "?download=1")).headers["content-disposition"].startswith("attachment")
    other = next(r for r in rows if not r["recording"])
    assert page.request.get(web.url(f"/cdr/{other['id']}/recording")).status == 404
    assert page.request.get(web.url("/cdr/..%2F..%2Flinebox.db/recording")).status == 404

    # Played in the page: play() resolves and the clock moves.
    state = page.evaluate("""async (sel) => {
        const a = document.querySelector(sel);
        a.muted = true;
        await a.play();
        await new Promise(r => setTimeout(r, 600));
        return {t: a.currentTime, ready: a.readyState, duration: a.duration};
    }""", f"tr[data-cdr='{recorded['id']}'] audio")
    assert state["ready"] >= 2 and state["t"] > 0.1, state
    assert abs(state["duration"] - recorded["billsec"]) < 1.0, (state, recorded)
    shoot(page, "cdr")

    # A recording the quota removed: the row says so instead of offering a dead player.
    wav.rename(wav.with_suffix(".bak"))
    page.reload()
    assert page.locator(f"tr[data-cdr='{recorded['id']}'] audio").count() == 0
    assert page.inner_text(f"tr[data-cdr='{recorded['id']}'] td.rec") == "removed"
    assert page.request.get(web.url(src)).status == 404
    wav.with_suffix(".bak").rename(wav)

    # CSV of the filtered rows (disposition FAILED: the other call), then of all.
    page.goto(web.url("/cdr?disposition=FAILED"))
    with page.expect_download() as dl:
        page.click("#cdr-csv")
    got = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text(encoding="utf-8"))))
    assert [(g["id"], g["disposition"]) for g in got] == [(other["id"], "FAILED")]
    all_csv = page.request.get(web.url("/cdr.csv")).text()
    got = list(csv.DictReader(io.StringIO(all_csv)))
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    for g, r in zip(got, rows):
        assert (g["caller"], g["callee"], g["disposition"], g["recording"]) == \
               (r["caller"], r["callee"], r["disposition"], r["recording"] or "")
        assert float(g["billsec"] or 0) == float(r["billsec"] or 0)

    # A bad date is shown next to its field and filters nothing.
    page.goto(web.url("/cdr?from=2026-13-45"))
    assert "YYYY-MM-DD" in page.inner_text("#from-error")
    assert page.locator("#cdr tr[data-cdr]").count() == 0


def test_csv_quoting_and_formula_cells():
    from webui.pages.cdr import CSV_COLUMNS, CdrFilter, csv_text, search

    rows = [{"id": "a1", "start": 1_700_000_000.0, "answer": None, "end": 1_700_000_003.5,
             "caller": '"Smith, J" <sip:1001@box>', "callee": "1002", "disposition": "NO ANSWER",
             "duration": 3.5, "billsec": 0.0, "cause": "line one\nline two", "recording": None},
            {"id": "a2", "start": 1_700_000_100.0, "answer": 1_700_000_101.0, "end": 1_700_000_110.0,
             "caller": "=HYPERLINK(\"http://x\")", "callee": "1003", "disposition": "ANSWERED",
             "duration": 10.0, "billsec": 9.0, "cause": "normal", "recording": "r.wav"}]
    text = csv_text(rows)
    assert text.endswith("\r\n") and '"""Smith, J"" <sip:1001@box>"' in text and '"line one\nline two"' in text
    got = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [g["caller"] for g in got] == ['"Smith, J" <sip:1001@box>', "'=HYPERLINK(\"http://x\")"]
    assert got[0]["cause"] == "line one\nline two" and got[0]["answer"] == "" and got[1]["recording"] == "r.wav"
    assert [r["id"] for r in search(rows, CdrFilter(caller="smith"))] == ["a1"]
    # Every column is guarded, not only the ones a caller obviously writes; numbers stay numbers.
    formula = {c: f"=cmd|' /C calc'!{c}" for c in CSV_COLUMNS}
    for column in ("start", "answer", "end"):
        formula[column] = None
    formula.update(duration=-2.5, billsec=0)
    got = next(csv.DictReader(io.StringIO(csv_text([formula]), newline="")))
    for column in CSV_COLUMNS:
        if isinstance(formula[column], str):
            assert got[column] == "'" + formula[column], column
    assert (got["duration"], got["billsec"]) == ("-2.5", "0")
    for lead in ("+", "-", "@", "\t", "\r", "\n"):
        row = next(csv.DictReader(io.StringIO(csv_text([{"id": lead + "1", "disposition": lead + "X"}]), newline="")))
        assert row["id"] == "'" + lead + "1" and row["disposition"] == "'" + lead + "X", repr(lead)
    assert [r["id"] for r in search(rows, CdrFilter(since=1_700_000_050.0))] == ["a2"]
    assert [r["id"] for r in search(rows, CdrFilter(until=1_700_000_050.0, disposition="NO ANSWER"))] == ["a1"]
