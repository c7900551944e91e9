"""Fixtures of the end-to-end suite: a running LineBox per test, phones, and the box's
log tail in every failure report.

`box` is function scoped: each test gets a fresh data directory (init, extensions
1001/1002/1003 with strong secrets, all through the CLI) and its own `linebox run`
on free loopback ports, so no test can lean on another's registrations, bans or CDR.
`module_box(request, tmp_path_factory)` builds a module-scoped one for suites that
fire many independent messages at one box on purpose (the torture wire test: the
point there is that each message leaves the box answering the next).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.box import Box, started_box
from tests.peers.phone import Phone

_BOXES_ATTR = "_linebox_boxes"


def _remember(node: pytest.Item, box: Box) -> None:
    boxes = getattr(node, _BOXES_ATTR, None)
    if boxes is None:
        boxes = []
        setattr(node, _BOXES_ATTR, boxes)
    boxes.append(box)


@pytest.fixture
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Box]:
    """A set-up, running box (function scope)."""
    b = started_box(tmp_path / "box")
    _remember(request.node, b)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def box_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator:
    """make(name, start=True, **Box kwargs) -> Box; every box made is stopped at the end."""
    made: list[Box] = []

    def make(name: str = "box2", start: bool = True, **kw) -> Box:
        b = Box(tmp_path / name, **kw)
        made.append(b)
        _remember(request.node, b)
        b.setup()
        if start:
            b.start()
        return b

    try:
        yield make
    finally:
        for b in made:
            b.stop()


def module_box(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               **kw) -> Box:
    """A started box for a whole module; the caller stops it (use in a module fixture)."""
    b = started_box(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]), **kw)
    return b


# Each phone plays a tone into every call unless told otherwise: with the null sound
# device and nothing connected, pjsua closes the device after 1 s idle, its conference
# clock stops, and the phone stops sending RTP (and RFC 4733 digits) mid-call.
DEFAULT_TONES = {"a": 600.0, "b": 1400.0, "c": 1000.0}


@pytest.fixture
def phones(tmp_path: Path) -> Iterator:
    """make(name, tone=Hz or None, **Phone kwargs) -> Phone; all closed at the end (killed
    if wedged). By default a phone plays a tone chosen by its name's first letter."""
    made: list[Phone] = []

    def make(name: str, tone: float | None = -1.0, **kw) -> Phone:
        kw.setdefault("log_dir", tmp_path / "phones")
        p = Phone(name, **kw)
        made.append(p)
        if tone == -1.0:
            tone = DEFAULT_TONES.get(name[:1].lower(), 1000.0)
        if tone:
            p.play_tone(tone)
        return p

    try:
        yield make
    finally:
        for p in reversed(made):
            try:
                p.close()
            finally:
                p.kill()


@pytest.fixture
def registered(box: Box, phones) -> "tuple[Phone, Phone]":
    """Phones a (1001) and b (1002), both registered with the box."""
    a = phones("a1001")
    b = phones("b1002")
    for ph, ext in ((a, "1001"), (b, "1002")):
        code = ph.register(server=box.sip_addr, user=ext, password=box.secret(ext))
        assert code == 200, f"{ext} REGISTER -> {code}\n{box.log_tail()}"
    return a, b


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, _BOXES_ATTR, []) or []:
            rep.sections.append((f"linebox log ({b!r})", b.log_tail(80)))
    # module boxes are attached by their fixtures through the item's module
    mod_box = getattr(item.module, "_module_box", None) if item.module is not None else None
    if rep.failed and mod_box is not None:
        rep.sections.append((f"linebox log (module box {mod_box!r})", mod_box.log_tail(80)))
