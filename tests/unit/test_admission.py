"""Admission control on a fake clock: overload from a late media clock, loop lag or a saturated
core, with hysteresis; the setup-rate token bucket; one event per episode; the load probe's
arithmetic on a fake loop; and the PBX's 503 + Retry-After before any challenge."""
from __future__ import annotations

import pytest

from firmware.pbx.admission import Admission, Limits, OverloadEnded, OverloadStarted, Refusal, Sample
from firmware.system.loadprobe import LoadProbe, SimulatedClock

QUIET = dict(lag=0.001, clock_late=0.0, cpu=0.2)


def events(adm: Admission) -> list[object]:
    out = []
    while (ev := adm.next_event()) is not None:
        out.append(ev)
    return out


def feed(adm: Admission, t0: float, seconds: int, **measures: float | None) -> float:
    """One sample a second from t0 for ``seconds``; returns the time after the last."""
    for i in range(seconds):
        adm.observe(Sample(now=t0 + i, **measures))
    return t0 + seconds


def test_a_late_media_clock_refuses_new_calls_with_503_and_retry_after():
    """The CI requirement: a media clock reporting lateness (a fake one) makes admission refuse."""
    adm = Admission(now=0.0)
    t = feed(adm, 1.0, 3, **QUIET)
    assert adm.check(t) is None and adm.admit(t) is None
    adm.observe(Sample(now=t, lag=0.001, clock_late=0.15, cpu=0.2))
    assert adm.admit(t + 0.1) is None, "one late second is not an overload (a GC pause)"
    adm.observe(Sample(now=t + 1, lag=0.001, clock_late=0.3, cpu=0.2))
    refusal = adm.check(t + 1.1)
    assert refusal == Refusal("media-clock", retry_after=10)
    assert refusal.status == 503 and "overloaded" in refusal.phrase
    assert adm.admit(t + 1.2) == refusal
    assert adm.refused == {"media-clock": 2}
    st = adm.status(t + 1.2)
    assert st["state"] == "refusing" and st["reason"] == "media-clock" and st["refused_recently"] == 2
    assert st["measures"]["clock_late"] == 0.3


@pytest.mark.parametrize("measure, value, reason", [("lag", 0.080, "loop-lag"), ("clock_late", 0.2, "media-clock")])
def test_a_loop_or_clock_far_past_its_mark_refuses_at_once(measure, value, reason):
    """Twice the high mark is no GC pause: waiting a second sample would let a second's worth
    of ramping calls in, and every call up would suffer for them."""
    adm = Admission(now=0.0)
    t = feed(adm, 0.0, 2, **QUIET)
    adm.observe(Sample(now=t, **{**QUIET, measure: value * 0.99}))
    assert adm.overload is None
    t = feed(adm, t + 1, 2, **QUIET)
    adm.observe(Sample(now=t, **{**QUIET, measure: value}))
    assert adm.overload is not None and adm.overload.reason == reason
    assert adm.check(t + 0.1) is not None
    adm2 = Admission(now=0.0)
    adm2.observe(Sample(now=1.0, **{**QUIET, "cpu": 1.0}))
    assert adm2.overload is None, "a full core for one second may be a burst: two samples"


@pytest.mark.parametrize("measure, high, between, low", [
    ("clock_late", 0.10, 0.05, 0.01),
    ("lag", 0.040, 0.020, 0.005),
])
def test_hysteresis_each_measure_enters_high_and_leaves_only_after_calm_below_low(measure, high, between, low):
    adm = Admission(now=0.0)
    quiet = dict(QUIET)

    def at(value: float) -> dict[str, float]:
        return {**quiet, measure: value}

    t = feed(adm, 0.0, 2, **at(between))
    assert adm.overload is None, "between the marks is not an overload"
    t = feed(adm, t, 2, **at(high))
    reason = {"clock_late": "media-clock", "lag": "loop-lag"}[measure]
    assert adm.overload is not None and adm.overload.reason == reason
    # back between the marks: still refusing, however long (the load of the calls up is that)
    t = feed(adm, t, 20, **at(between))
    assert adm.check(t) is not None
    # below the low mark, but not for calm_seconds yet: still refusing; a blip restarts the wait
    t = feed(adm, t, 4, **at(low))
    assert adm.check(t) is not None
    t = feed(adm, t, 1, **at(between))
    t = feed(adm, t, 5, **at(low))
    assert adm.check(t) is not None
    t = feed(adm, t, 1, **at(low))
    assert adm.overload is None and adm.check(t) is None
    evs = events(adm)
    assert [type(e) for e in evs] == [OverloadStarted, OverloadEnded]
    assert evs[0].reason == reason and evs[1].reason == reason and evs[1].refused == 3


def test_one_event_per_overload_not_one_per_refused_invite():
    adm = Admission(now=0.0)
    t = feed(adm, 0.0, 2, lag=0.05, clock_late=None, cpu=0.7)
    for i in range(500):
        assert adm.check(t + i * 0.001) is not None
    evs = events(adm)
    assert len(evs) == 1 and isinstance(evs[0], OverloadStarted)
    assert evs[0].measures["lag"] == 0.05 and "loop lag 50 ms" in evs[0].describe()
    feed(adm, t + 1, 6, **QUIET)
    (end,) = events(adm)
    assert isinstance(end, OverloadEnded) and end.refused == 500 and "500 refused" in end.describe()


def admit_for(adm: Admission, t0: float, offered: int) -> tuple[int, list[Refusal]]:
    """``offered`` authenticated INVITEs spread over the second from t0: (admitted, refusals)."""
    refusals = [r for i in range(offered) if (r := adm.admit(t0 + i / offered)) is not None]
    return offered - len(refusals), refusals


def test_a_saturated_loop_lowers_the_setup_rate_to_what_its_core_carries():
    """Setting calls up is most of the loop's work: past its core, the box still sets up what
    the core carries (here 400 offered a second, the loop at 99% with 300), and refuses the
    rest with 503 at once, instead of refusing every call for seconds at a time."""
    adm = Admission(Limits(setups_per_second=300.0), now=0.0)
    adm.observe(Sample(now=0.0, **QUIET))
    admit_for(adm, 0.0, 1000)  # the burst spent
    adm.observe(Sample(now=1.0, **QUIET))
    admitted, refused = admit_for(adm, 1.0, 400)
    assert 299 <= admitted <= 301 and {r.reason for r in refused} == {"setup-rate"}
    adm.observe(Sample(now=2.0, lag=0.002, clock_late=None, cpu=0.99))
    assert adm.overload is None, "a full core is not yet calls suffering"
    assert adm.governed == pytest.approx(admitted * 0.88 / 0.99)
    admitted, refused = admit_for(adm, 2.0, 400)
    assert 263 <= admitted <= 270
    assert {r.reason for r in refused} == {"cpu"} and {r.retry_after for r in refused} == {1}
    (started,) = [e for e in events(adm) if isinstance(e, OverloadStarted) and e.reason == "cpu"]
    assert "setups beyond 26" in started.describe() and "loop CPU 99% of a core" in started.describe()
    assert 263 <= adm.status(2.5)["governed_setups_per_second"] <= 270

    # Still over the mark at the lower rate: lower again, never under the floor.
    governed = adm.governed
    adm.observe(Sample(now=3.0, lag=0.002, clock_late=None, cpu=1.0))
    assert adm.governed < governed * 0.9
    for t in range(4, 9):
        adm.observe(Sample(now=float(t), lag=0.002, clock_late=None, cpu=1.0))  # nothing admitted
    assert adm.governed == pytest.approx(300 * 0.05)

    # Between the target and the mark: held. Under the target: back by 5% of 300 a second.
    adm.observe(Sample(now=9.0, lag=0.002, clock_late=None, cpu=0.9))
    assert adm.governed == pytest.approx(15.0)
    t = 10.0
    while adm.governed is not None:
        adm.observe(Sample(now=t, **QUIET))
        t += 1
    assert t == 10.0 + 19
    admitted, _ = admit_for(adm, t, 300)
    assert admitted == 300


def test_the_governor_is_off_with_refuse_overload_off_and_below_a_new_setting():
    adm = Admission(Limits(setups_per_second=300.0), now=0.0)
    adm.observe(Sample(now=0.0, **QUIET))
    admitted, _ = admit_for(adm, 0.0, 300)
    adm.observe(Sample(now=1.0, lag=0.002, clock_late=None, cpu=1.0))
    assert adm.governed == pytest.approx(admitted * 0.88)
    adm.configure(setups_per_second=200.0)
    assert adm.governed is None, "a setting below the governed rate replaces it"
    adm, t = governed_at(300.0)
    adm.configure(setups_per_second=300.0, refuse_overload=False)
    assert adm.governed is None, "switched off, at once: not at the next sample"
    adm.observe(Sample(now=t + 1, lag=0.002, clock_late=None, cpu=1.0))
    assert adm.governed is None and admit_for(adm, t + 2, 300)[0] == 300


def governed_at(top: float, cpu: float = 0.99) -> tuple[Admission, float]:
    """An Admission whose loop was saturated at ``cpu`` while admitting ``top`` a second."""
    adm = Admission(Limits(setups_per_second=top), now=0.0)
    adm.observe(Sample(now=0.0, **QUIET))
    admit_for(adm, 0.0, int(top * 4))  # the burst spent
    adm.observe(Sample(now=1.0, **QUIET))
    admit_for(adm, 1.0, int(top * 2))
    adm.observe(Sample(now=2.0, lag=0.002, clock_late=None, cpu=cpu))
    assert adm.governed is not None
    return adm, 2.0


def test_a_busy_media_worker_does_not_govern_the_setup_rate():
    """New calls go to the least loaded worker and each is checked against it; a worker at 99%
    is no reason to set up fewer calls on the others."""
    adm = Admission(Limits(setups_per_second=300.0), now=0.0)
    adm.observe(Sample(now=0.0, **QUIET))
    admit_for(adm, 0.0, 1200)
    adm.observe(Sample(now=1.0, **QUIET))
    admit_for(adm, 1.0, 600)
    adm.observe(Sample(now=2.0, lag=0.002, clock_late=None, cpu=0.99, loop_cpu=0.4))
    assert adm.governed is None and admit_for(adm, 2.0, 300)[0] >= 299


def test_a_governed_rate_holds_no_burst_of_the_setting_and_ends_with_the_measurements():
    adm, t = governed_at(300.0)
    for i in range(1, 8):  # nothing admitted while saturated: down to the floor, 15 a second
        adm.observe(Sample(now=t + i, lag=0.002, clock_late=None, cpu=1.0))
    assert adm.governed == pytest.approx(15.0)
    adm.observe(Sample(now=t + 8, lag=0.002, clock_late=None, cpu=0.9))  # held, not given back
    admitted, _ = admit_for(adm, t + 8.0, 300)
    assert admitted <= 30, "the bucket holds a second of the governed rate, not of the setting"
    assert adm.check(t + 8 + adm.limits.stale_after + 1) is None and adm.governed is None, \
        "no measurements: nothing says the core is still full"


def test_an_overload_does_not_drive_the_governed_rate_to_its_floor():
    """While a late loop refuses everything nothing is admitted: that says nothing of the rate."""
    adm, t = governed_at(300.0)
    rate = adm.governed
    for i in range(1, 4):
        adm.observe(Sample(now=t + i, lag=0.2, clock_late=None, cpu=1.0))
    assert adm.overload is not None and adm.governed == rate


def test_a_saturated_second_that_admitted_past_the_setting_governs_nothing():
    adm = Admission(Limits(setups_per_second=300.0), now=0.0)
    adm.observe(Sample(now=0.0, **QUIET))
    admit_for(adm, 0.0, 1000)  # the burst and the second's refill: ~600
    adm.observe(Sample(now=1.0, lag=0.002, clock_late=None, cpu=0.96))
    assert adm.governed is None
    assert {r.reason for r in admit_for(adm, 1.0, 600)[1]} == {"setup-rate"}


def test_missing_measures_count_as_quiet_and_stale_measures_end_an_overload():
    adm = Admission(now=0.0)
    t = feed(adm, 0.0, 10, lag=None, clock_late=None, cpu=None)  # an idle clock says nothing
    assert adm.overload is None
    t = feed(adm, t, 2, lag=0.2, clock_late=None, cpu=None)
    assert adm.check(t) is not None
    # the probe stopped: no sample for longer than stale_after, so admission stops refusing
    assert adm.check(t + 5) is not None
    assert adm.check(t + 12) is None
    evs = events(adm)
    assert isinstance(evs[-1], OverloadEnded) and evs[-1].why == "no-measurements"


def test_token_bucket_refuses_setups_beyond_the_rate_at_once_and_refills():
    adm = Admission(Limits(setups_per_second=10.0), now=0.0)
    admitted = [adm.admit(0.0) for _ in range(10)]  # a full bucket: one second's worth
    assert admitted == [None] * 10
    refusal = adm.admit(0.0)
    assert refusal == Refusal("setup-rate", retry_after=1)
    # the first INVITE of the next call is refused before its challenge, and spends nothing
    assert adm.check(0.01) is not None
    assert adm.check(0.1) is None and adm.check(0.1) is None, "check only looks"
    assert adm.admit(0.1) is None and adm.admit(0.1) is not None
    assert adm.refused == {"setup-rate": 3}
    assert adm.status(0.2)["state"] == "limiting"
    (start,) = events(adm)
    assert isinstance(start, OverloadStarted) and start.reason == "setup-rate"
    assert "10/s" in start.describe()
    # a sustained 10/s gets through; calm_seconds after the last refusal the episode ends
    t, refused = 1.0, 0
    for i in range(100):
        refused += adm.admit(t + i * 0.1) is not None
    assert refused == 0
    (end,) = events(adm)
    assert isinstance(end, OverloadEnded) and end.reason == "setup-rate" and end.refused == 3
    assert adm.status(t + 10)["state"] == "admitting"


def test_configure_changes_the_rate_and_caps_the_bucket():
    adm = Admission(Limits(setups_per_second=100.0), now=0.0)
    adm.configure(setups_per_second=2.0)
    assert [adm.admit(0.0) is None for _ in range(3)] == [True, True, False]
    assert adm.status(0.0)["max_setups_per_second"] == 2.0


def test_while_overloaded_the_bucket_is_not_spent_and_the_reason_is_the_load():
    adm = Admission(Limits(setups_per_second=1.0), now=0.0)
    t = feed(adm, 0.0, 2, lag=0.5, clock_late=None, cpu=None)
    assert adm.admit(t).reason == "loop-lag"
    t = feed(adm, t, 6, **QUIET)
    assert adm.overload is None
    assert adm.admit(t) is None, "the token was kept while the load refused"


def test_refused_recently_forgets_after_the_window():
    adm = Admission(Limits(setups_per_second=1.0), now=0.0)
    adm.admit(0.0)
    for i in range(5):
        adm.admit(0.0 + i * 0.01)
    assert adm.refused_recently(1.0) == 5
    assert adm.refused_recently(400.0) == 0
    assert adm.refused["setup-rate"] == 5


class FakeLoop:
    """call_at only: the probe's callbacks are fired by the test at chosen times."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, object]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when, fn):
        loop = self

        class Handle:
            def cancel(self) -> None:
                loop.timers = [x for x in loop.timers if x[1] is not fn]

        self.timers.append((when, fn))
        return Handle()

    def run_next(self, late: float = 0.0) -> None:
        when, fn = self.timers.pop(0)
        self.now = when + late
        fn()


def test_a_saturated_media_worker_counts_like_a_saturated_loop():
    loop = FakeLoop()
    samples: list[Sample] = []
    workers = [None]
    probe = LoadProbe(loop, on_sample=samples.append, clock_stats=lambda: None, cpu_time=lambda: 0.0,
                      workers_load=lambda: workers[0], core_share=lambda: 1.0)
    probe.start()
    for _ in range(11):
        loop.run_next()
    assert samples[-1].cpu == 0.0 and samples[-1].lag == 0.0   # no worker running: this loop alone
    workers[0] = (0.05, 0.99)     # the busiest worker: 50 ms late, 99 % of its core
    for _ in range(11):
        loop.run_next()
    assert samples[-1].cpu == 0.99 and samples[-1].lag == 0.05 and samples[-1].loop_cpu == 0.0
    admission = Admission(now=0.0)
    for s in samples[-1:] * 2:
        admission.observe(s)
    assert admission.check(samples[-1].now) is not None, "a saturated worker refuses new calls"


def test_the_load_probe_reports_mean_lag_cpu_share_and_clock_late_share():
    loop = FakeLoop()
    samples: list[Sample] = []
    cpu = [0.0]
    clock = SimulatedClock(0.0)
    probe = LoadProbe(loop, on_sample=samples.append, clock_stats=clock, cpu_time=lambda: cpu[0],
                      core_share=lambda: 1.0)  # not this machine's cgroup
    probe.start()
    for _ in range(8):  # one second of probes (every 0.1 s, each 25 ms late), the loop thread busy 60%
        assert samples == []
        cpu[0] += 0.075
        loop.run_next(late=0.025)
    assert len(samples) == 1 and loop.now == pytest.approx(1.0)
    s = samples[0]
    assert s.lag == pytest.approx(0.025)
    assert s.cpu == pytest.approx(0.6)
    assert s.clock_late == 0.0
    clock.late_share = 0.5  # the same clock object, now late half the time
    for _ in range(10):
        loop.run_next()
    assert samples[-1].clock_late == 0.5 and samples[-1].lag == 0.0
    probe.clock_stats = SimulatedClock(1.0)  # another source: no delta across the swap
    for _ in range(10):
        loop.run_next()
    assert samples[-1].clock_late is None
    for _ in range(10):
        loop.run_next()
    assert samples[-1].clock_late == 1.0
    probe.clock_stats = lambda: None  # no media clock made (a relay-only box)
    for _ in range(20):
        loop.run_next()
    assert samples[-1].clock_late is None
    probe.stop()
    assert loop.timers == []


def test_an_overloaded_pbx_answers_a_new_invite_503_before_challenging_it():
    """The wiring in firmware.pbx.pbx: a new INVITE without credentials gets 503 + Retry-After
    (not 407), statelessly (nobody vouches for its source address); an in-dialog request never
    meets admission."""
    from types import SimpleNamespace

    from firmware.pbx.guard import Guard
    from firmware.pbx.pbx import Pbx
    from firmware.sip.message import Message

    sent: list[object] = []
    adm = Admission(now=0.0)
    feed(adm, 0.0, 2, lag=0.001, clock_late=0.5, cpu=0.1)
    guard = Guard()
    pbx = Pbx.__new__(Pbx)  # only what _on_request touches on these paths
    pbx.loop = SimpleNamespace(time=lambda: 2.5)
    pbx.media = SimpleNamespace(workers=None)
    stateless: list[object] = []
    pbx.sip = SimpleNamespace(send_response=lambda tx, r: sent.append(r),
                              answer_statelessly=lambda tx, r: (sent.append(r), stateless.append(r)))
    pbx.admission, pbx.guard, pbx.subscriptions, pbx.dialogs = adm, guard, SimpleNamespace(get=lambda *a: None), {}
    pbx.auth = SimpleNamespace(challenges=lambda *a, **k: pytest.fail("challenged while overloaded"))
    invite = Message.parse(
        b"INVITE sip:1002@box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKa1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:1001@box>;tag=f1\r\nTo: <sip:1002@box>\r\n"
        b"Call-ID: c1@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    flow = SimpleNamespace(remote=("127.0.0.1", 5062), transport="udp")
    pbx._on_request(invite, flow, object())
    (resp,) = sent
    assert resp.status == 503 and resp.headers.get("Retry-After") == "10"
    assert stateless == [resp]
    assert [e.event for e in guard.events] == ["overload"]
    bye = Message.parse(
        b"BYE sip:1002@box SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKa2\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:1001@box>;tag=f1\r\nTo: <sip:1002@box>;tag=t9\r\n"
        b"Call-ID: c2@test\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
    pbx._on_request(bye, flow, object())
    assert sent[-1].status == 481, "in-dialog: looked up, never refused by admission"
    assert stateless == [resp], "an answer in a dialog is kept in its transaction"
    assert adm.refused == {"media-clock": 1}


def test_switched_off_the_load_refuses_nothing_but_the_rate_still_counts():
    adm = Admission(Limits(setups_per_second=1.0), now=0.0)
    t = feed(adm, 0.0, 2, lag=0.001, clock_late=0.9, cpu=0.1)
    assert adm.check(t) is not None
    adm.configure(setups_per_second=1.0, refuse_overload=False)
    t = feed(adm, t, 3, lag=0.001, clock_late=0.9, cpu=0.1)
    assert adm.overload is None and adm.admit(t) is None
    assert adm.admit(t).reason == "setup-rate"
    ended = [e for e in events(adm) if isinstance(e, OverloadEnded)]
    assert ended[0].why == "switched off"
    assert adm.status(t)["measures"]["clock_late"] == 0.9  # still shown


def test_a_call_that_would_fill_its_media_worker_is_refused_at_once_without_waiting_for_samples():
    """Calls ramping in faster than the load samples: the projection for the worker the call
    would go to decides per call, so the first N are taken and the next refused."""
    adm = Admission(now=0.0)
    feed(adm, 0.0, 3, **QUIET)
    assert adm.admit(3.0, media=0.74) is None and adm.admit(3.1, media=None) is None
    refusal = adm.check(3.2, media=0.86)
    assert refusal == Refusal("media-capacity", retry_after=10)
    assert adm.admit(3.3, media=0.97).reason == "media-capacity"
    assert adm.status(3.3)["state"] == "refusing" and adm.status(3.3)["reason"] == "media-capacity"
    (start,) = events(adm)
    assert isinstance(start, OverloadStarted) and "86%" in start.describe()
    # calls ending bring the projection down: admitted again; the episode ends once calm
    assert adm.admit(4.0, media=0.60) is None
    feed(adm, 4.0, 6, **QUIET)
    (end,) = events(adm)
    assert isinstance(end, OverloadEnded) and end.reason == "media-capacity" and end.refused == 2
    assert adm.refused == {"media-capacity": 2}


def test_the_media_projection_refuses_nothing_when_refusing_for_load_is_switched_off():
    adm = Admission(Limits(refuse_overload=False), now=0.0)
    assert adm.admit(1.0, media=1.5) is None


def test_a_contact_is_not_taken_for_dead_while_the_box_loop_is_saturated():
    """The OPTIONS answer may be waiting in the box's own socket: the qualify timeout waits again
    while the loop is saturated or late, and decides once it is calm. A configured setup cap
    says nothing about the socket: refusing past it, the box still decides at once."""
    from types import SimpleNamespace

    from firmware.pbx.pbx import Pbx

    adm = Admission(Limits(setups_per_second=300.0), now=0.0)
    later: list[tuple] = []
    pbx = Pbx.__new__(Pbx)
    pbx.admission = adm
    pbx.loop = SimpleNamespace(call_later=lambda delay, fn, *args: later.append((fn, args)))
    pbx.setting = lambda key: 5.0
    pbx.registrar = SimpleNamespace(unreachable=set())
    first, second = object(), object()
    pbx.qualify_txs = {first: ("1002", "sip:1002@10.0.0.2"), second: ("1003", "sip:1003@10.0.0.3")}
    adm.observe(Sample(now=0.0, **QUIET))
    admit_for(adm, 0.0, 1000)                                       # the burst spent
    adm.observe(Sample(now=1.0, **QUIET))
    admit_for(adm, 1.0, 400)
    adm.observe(Sample(now=2.0, lag=0.002, clock_late=None, cpu=0.99))  # the loop saturated
    assert adm.loop_behind
    pbx._qualify_expired(first)
    assert pbx.registrar.unreachable == set() and later == [(pbx._qualify_expired, (first,))]
    feed(adm, 3.0, 25, **QUIET)                                     # calm: the rate is back
    assert not adm.loop_behind
    pbx._qualify_expired(first)
    assert pbx.registrar.unreachable == {("1002", "sip:1002@10.0.0.2")} and first not in pbx.qualify_txs
    assert admit_for(adm, 30.0, 1000)[1] and not adm.loop_behind    # past the setting: not the loop
    pbx._qualify_expired(second)
    assert ("1003", "sip:1003@10.0.0.3") in pbx.registrar.unreachable
