"""The number plan's precedence and conflicts (firmware.numberplan), and the configuration
refusing a number two things claim, or a route pattern that would take an inside number, with
the field's path — through the document, the CLI's rule and the web's rule alike."""
from __future__ import annotations

from firmware.config.document import claims, new_conflicts, validate
from firmware.numberplan import Claim, Codes, Destination, Keyed, NumberPlan, Patterns, Tier, conflicts


def plan_with(extensions=("1001", "9001"), routes=("9X.",)) -> NumberPlan:
    plan = NumberPlan()

    def route(number: str) -> Destination | None:
        for p in routes:
            if number.startswith(p[0]) and len(number) > 1:
                return Destination("route", number[1:], lines=("fxo1",))
        return None

    def verdict(number: str, final: bool) -> bool | None:
        if not number.startswith("9"):
            return False
        return len(number) > 1 if final else None

    plan.add(Patterns(route, verdict))  # registered first, still looked up last
    plan.add(Codes(("*51",), lambda code, digits: Destination("agent", "login", digits)))
    plan.add(Keyed(lambda: {"500"}, lambda n: Destination("menu", "main")))
    plan.add(Keyed(lambda: set(extensions), lambda n: Destination("extension", n)))
    return plan


def test_exact_numbers_then_codes_then_routes_then_the_extension_fallback():
    plan = plan_with()
    assert plan.resolve("500") == Destination("menu", "main")
    assert plan.resolve("9001") == Destination("extension", "9001")  # an extension is never shadowed
    assert plan.resolve("95551234") == Destination("route", "5551234", lines=("fxo1",))
    assert plan.resolve("*51") == Destination("agent", "login", "")
    assert plan.resolve("*51600") == Destination("agent", "login", "600")
    assert plan.resolve("*51x") == Destination("extension", "*51x")  # digits only after a code
    assert plan.resolve("4444") == Destination("extension", "4444")  # nobody's: "not found" later
    assert [e.tier for e in plan.entries] == [Tier.EXACT, Tier.EXACT, Tier.PREFIX, Tier.PATTERN]


def test_a_live_table_is_read_at_each_look_up():
    exts = {"1001"}
    plan = NumberPlan()
    plan.add(Keyed(lambda: exts, lambda n: Destination("extension", n)))
    plan.add(Keyed(lambda: {"1002"}, lambda n: Destination("queue", "q")))
    assert plan.resolve("1002") == Destination("queue", "q")
    exts.add("1003")
    assert plan.numbers() == {"1001", "1002", "1003"}


def test_the_dial_plan_waits_while_more_digits_could_make_another_number():
    plan = plan_with()
    assert plan.complete("50") is None
    assert plan.complete("500") is True
    assert plan.complete("*5") is None
    assert plan.complete("*51") is True
    assert plan.complete("9") is None        # a route may still take more digits
    assert plan.complete("955", final=True) is True
    assert plan.complete("7") is False
    assert plan.complete("50", final=True) is False


def test_conflicts_name_the_later_claim_and_what_owns_the_number():
    found = conflicts([Claim("extension", "600", "extensions[0].number"),
                       Claim("IVR number", "600", "ivr_numbers.600"),
                       Claim("queue", "601", "queues[a].number", "a"),
                       Claim("queue", "601", "queues[b].number", "b"),
                       Claim("extension", "600", "extensions[1].number")])
    assert [(c.path, c.message) for c in found] == [
        ("ivr_numbers.600", "600 is also an extension"),
        ("queues[b].number", "601 is also queue 'a''s number"),
        ("extensions[1].number", "extension 600 already exists; pick another number")]


def doc(**sections):
    base = {"version": 1, "extensions": [{"number": n, "name": "", "secret": "Tr1cky-Harbour-42"}
                                         for n in ("1001", "1002")]}
    return {**base, **sections}


def test_a_document_with_an_extension_on_a_queues_number_is_refused_at_the_queue():
    queues = [{"id": "support", "number": "1002", "strategy": "ringall", "members": [{"agent": "1001"}]}]
    problems = {p.path: p.message for p in validate(doc(queues=queues))}
    assert problems == {"queues[support].number": "1002 is an extension"}


def test_a_route_pattern_that_would_swallow_an_extension_is_refused_at_the_pattern():
    ports = {"fxo1": {"inbound": "1001"}}
    problems = {p.path: p.message for p in validate(doc(ports=ports, routes=[
        {"pattern": "95XX", "lines": ["fxo1"]}, {"pattern": "1XXX", "lines": ["fxo1"]}]))}
    assert list(problems) == ["routes[1].pattern"]
    assert problems["routes[1].pattern"].startswith("1XXX would take extension 1001's number (and 1 more)")


def test_what_a_new_number_would_clash_with_is_said_in_the_owners_words():
    current = doc(queues=[{"id": "support", "number": "600", "strategy": "ringall", "members": [{"agent": "1001"}]}],
                  ivr={"menus": [{"id": "main", "greeting": ["welcome"], "options": {}, "dial_by_extension": True}]}, ivr_numbers={"500": "main"},
                  ports={"fxo1": {"inbound": "500"}}, routes=[{"pattern": "8X.", "lines": ["fxo1"]}])
    assert validate(current) == []
    said = lambda number: [c.message for c in new_conflicts(current, [Claim("extension", number, "number")])]
    assert said("600") == ["600 is also queue 'support''s number"]
    assert said("500") == ["500 is already an IVR number"]
    assert said("1001") == ["extension 1001 already exists; pick another number"]
    assert said("8123")[0].startswith("8X. would take extension 8123's number")
    assert said("1003") == []
    assert [c.number for c in claims(current)] == ["1001", "1002", "500", "600", "8X."]
