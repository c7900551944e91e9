"""Outbound routes: dial patterns, first match wins, strip/prepend, validation with paths, and
the dial-plan verdicts an analog phone's digit collection runs on."""
from __future__ import annotations

import pytest

from firmware.config.routes import Pattern, PatternError, Routes, trunks_of, validate_routes


@pytest.mark.parametrize("pattern,number,hit", [
    ("911", "911", True), ("911", "9111", False), ("911", "91", False),
    ("9NXXXXXX", "95551234", True), ("9NXXXXXX", "91551234", False), ("9NXXXXXX", "9555123", False),
    ("9Z", "90", False), ("9Z", "91", True),
    ("0[1-37]X", "027", True), ("0[1-37]X", "047", False), ("0[1-37]X", "077", True),
    ("00X.", "00", False), ("00X.", "001", False), ("00X.", "0014155550100", True),
    ("*8X", "*81", True), ("#9", "#9", True),
    ("9X.", "9", False), ("9X.", "95", False), ("9X.", "955", True), ("9X.", "95*", False),
])
def test_patterns_match_whole_numbers(pattern: str, number: str, hit: bool) -> None:
    assert Pattern.parse(pattern).matches(number) is hit


@pytest.mark.parametrize("bad", ["", ".", "9Y", "9[]", "9[a]", "9.X", "9 1", "[1-"])
def test_bad_patterns_are_refused_with_where(bad: str) -> None:
    with pytest.raises(PatternError):
        Pattern.parse(bad)


def test_first_matching_route_wins_and_rewrites_the_number() -> None:
    routes = Routes.from_document([
        {"name": "emergency", "pattern": "911", "lines": ["fxo1"]},
        {"name": "local", "pattern": "9NXXXXXX", "strip": 1, "lines": ["fxo2", "fxo1"]},
        {"name": "intl", "pattern": "00X.", "strip": 2, "prepend": "011"},
        {"name": "rest", "pattern": "9X.", "strip": 1},
    ], trunk_prefix="9")
    hit = routes.match("95551234")
    assert (hit.name, hit.outside("95551234"), hit.lines) == ("local", "5551234", ("fxo2", "fxo1"))
    assert routes.match("911").name == "emergency" and routes.match("911").outside("911") == "911"
    assert routes.match("0044207946").outside("0044207946") == "01144207946"
    assert routes.match("9155512345").name == "rest"   # too long for "local"
    assert routes.match("1001") is None


def test_no_routes_means_the_trunk_prefix_route_or_none() -> None:
    default = Routes.from_document([], trunk_prefix="9")
    assert default.match("95551234").outside("95551234") == "5551234"
    assert default.match("9") is None and default.match("5551234") is None
    assert Routes.from_document(None, trunk_prefix="").match("95551234") is None


def test_dial_plan_verdicts() -> None:
    routes = Routes.from_document([{"pattern": "911"}, {"pattern": "9NXXXXXX", "strip": 1},
                                   {"pattern": "00X.", "strip": 2}], trunk_prefix="9")
    assert routes.verdict("9") is None           # 911 or a local number could follow
    assert routes.verdict("911") is True         # complete: no route takes 9110...
    assert routes.verdict("9555") is None
    assert routes.verdict("95551234") is True    # fixed length: dialled at once
    assert routes.verdict("0044") is None        # open-ended: waits for the inter-digit timeout
    assert routes.verdict("0044", final=True) is True
    assert routes.verdict("955", final=True) is False
    assert routes.verdict("8") is False


def test_validation_names_the_field_and_the_fix() -> None:
    doc = [{"pattern": "9NXXXXXX", "strip": 9},
           {"pattern": "9Q", "lines": ["fxo3"]},
           {"pattern": "00X.", "prepend": "01a", "colour": "red"},
           "9X.",
           {"pattern": "0X.", "lines": ["fxo1", "fxo1"]}]
    errors = {e.path: e.message for e in validate_routes(doc, trunks={"fxo1", "fxo2"})}
    assert errors["routes[0].strip"].startswith("a whole number of leading digits to drop, 0-8")
    assert "'Q' at position 2" in errors["routes[1].pattern"]
    assert "'fxo3' is no configured FXO line (configured: fxo1, fxo2)" in errors["routes[1].lines"]
    assert "digits, * or #" in errors["routes[2].prepend"]
    assert errors["routes[2].colour"].startswith("unknown; known: name, pattern")
    assert "routes[3]" in errors
    assert errors["routes[4].lines"] == "a line appears twice"
    assert validate_routes([{"pattern": "9X.", "strip": 1, "lines": ["fxo2"]}], trunks={"fxo2"}) == []
    assert validate_routes({"pattern": "9X."}, trunks=None)[0].path == "routes"
    assert "give a port an inbound destination first" in \
        validate_routes([{"pattern": "9X.", "lines": ["fxo1"]}], trunks=set())[0].message


def test_trunks_are_the_ports_with_an_inbound_destination() -> None:
    assert trunks_of({"fxs1": {"extension": "1003"}, "fxo1": {"inbound": "500"}, "fxo2": {"inbound": "1001"}}) \
        == {"fxo1", "fxo2"}
    assert trunks_of(None) == set()
