"""Scripted IVR sessions on a fake clock: inputs in, the exact actions out (STYLE.md testing shape)."""

from __future__ import annotations

import pytest

from firmware.ivr.menu import File, Hangup, IvrSession, Menu, Play, Route, Say, StopPlayback
from firmware.ivr.schema import check, DocumentError, validate
from firmware.schema import FieldError

EXTENSIONS = {"1001", "1002", "2001"}
WITH_10 = EXTENSIONS | {"10"}  # not prefix-free: 10 and 1001

MAIN = {
    "id": "main",
    "greeting": ["welcome", {"say": "Press one for sales"}, {"file": "promo.wav"}],
    "options": {"1": {"goto": "queue", "target": "sales"}, "2": {"goto": "menu", "target": "support"},
                "9": {"goto": "repeat"}, "*": {"goto": "hangup"}, "#": {"goto": "voicemail", "target": "1001"}},
    "timeout": 5, "retries": 2, "invalid": ["invalid-option"],
    "fallback": {"goto": "extension", "target": "1001"},
}
SUPPORT = {
    "id": "support", "greeting": ["support-menu"],
    "options": {"1": {"goto": "queue", "target": "support"}, "0": {"goto": "back"}},
    "timeout": 4, "retries": 1,
}
GREETING = ("welcome", Say("Press one for sales"), File("promo.wav"))


def session(*menus, start: str = "main", longer=None, exists=EXTENSIONS) -> IvrSession:
    return IvrSession(list(menus) or [MAIN, SUPPORT], start, 0.0, exists.__contains__, longer)


def drain(s: IvrSession) -> list:
    out = []
    while (a := s.next_action()) is not None:
        out.append(a)
    return out


def play(prompts, seq) -> Play:
    return Play(tuple(prompts), barge_in=True, seq=seq)


def test_greeting_then_option_routes_to_queue():
    s = session()
    s.started(0.0)
    assert drain(s) == [play(GREETING, 1)]
    assert s.get_timer() is None  # the timeout runs from the end of the greeting
    s.playback_finished(3.0, seq=1)
    assert s.get_timer() == 8.0
    s.digit("1", 4.0)
    assert drain(s) == [Route("queue", "sales")]
    assert s.done and s.get_timer() is None
    s.digit("2", 4.5)  # after leaving, nothing more happens
    assert drain(s) == []


def test_barge_in_stops_the_greeting_and_the_late_finish_is_ignored():
    s = session()
    s.started(0.0)
    drain(s)
    s.digit("2", 1.0)
    assert drain(s) == [StopPlayback(), play(["support-menu"], 2)]
    s.playback_finished(1.1)            # the stopped greeting's finish: owed, swallowed
    assert s.get_timer() is None
    s.playback_finished(2.0)            # the support greeting itself
    assert s.get_timer() == 6.0


def test_stale_finish_with_seq_does_not_end_the_new_prompt():
    s = session()
    s.started(0.0)
    drain(s)
    s.digit("7", 1.0)                   # invalid while playing: stop, invalid + greeting
    assert drain(s) == [StopPlayback(), play(("invalid-option",) + GREETING, 2)]
    s.playback_finished(1.1, seq=1)
    assert s.get_timer() is None
    s.playback_finished(5.0, seq=2)
    assert s.get_timer() == 10.0


def test_timeout_repeats_greeting_then_fallback_after_retries():
    s = session()
    s.started(0.0)
    actions = drain(s)
    t = 0.0
    for seq in (1, 2, 3):               # retries=2: heard three times
        assert actions == [play(GREETING, seq)]
        t += 3.0
        s.playback_finished(t, seq=seq)
        s.handle_timer(t + 4.9)         # early wake-ups change nothing
        assert drain(s) == []
        t += 5.0
        assert s.get_timer() == t
        s.handle_timer(t)
        actions = drain(s)
    assert actions == [Route("extension", "1001")]


def test_on_timeout_wins_over_fallback_for_timeouts_only():
    menu = {**MAIN, "retries": 0, "on_timeout": {"goto": "voicemail", "target": "1002"}}
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.handle_timer(6.0)
    assert drain(s) == [Route("voicemail", "1002")]
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.digit("5", 0.5)
    assert drain(s) == [StopPlayback(), Route("extension", "1001")]


def test_invalid_plays_invalid_prompt_and_counts_retries_with_timeouts():
    s = session()
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("5", 2.0)
    assert drain(s) == [play(("invalid-option",) + GREETING, 2)]
    s.playback_finished(3.0)
    s.handle_timer(8.0)                 # a timeout is the second failure
    assert drain(s) == [play(GREETING, 3)]
    s.playback_finished(9.0)
    s.digit("0", 10.0)                  # third failure > retries=2 -> fallback
    assert drain(s) == [Route("extension", "1001")]


def test_no_fallback_hangs_up():
    menu = {k: v for k, v in MAIN.items() if k != "fallback"} | {"retries": 0}
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.handle_timer(6.0)
    assert drain(s) == [Hangup("ivr-fallback")]


def test_repeat_option_replays_without_counting():
    s = session({**MAIN, "retries": 0}, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("9", 2.0)
    assert drain(s) == [play(GREETING, 2)]
    s.digit("9", 2.5)
    assert drain(s) == [StopPlayback(), play(GREETING, 3)]
    s.digit("#", 3.0)
    assert drain(s) == [StopPlayback(), Route("voicemail", "1001")]


def test_nested_menu_and_back_reset_the_count():
    s = session()
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("2", 2.0)
    assert drain(s) == [play(["support-menu"], 2)]
    s.playback_finished(3.0)
    assert s.get_timer() == 7.0         # the nested menu's own timeout
    s.handle_timer(7.0)                 # one failure in support
    assert drain(s) == [play(["support-menu"], 3)]
    s.digit("0", 7.5)                   # back to main
    assert drain(s) == [StopPlayback(), play(GREETING, 4)]
    assert s.stack == ["main"] and s.failures == 0
    s.digit("0", 8.0)                   # in main "0" is no option
    assert drain(s) == [StopPlayback(), play(("invalid-option",) + GREETING, 5)]


def test_back_at_the_top_replays_the_greeting():
    s = session(SUPPORT, start="support")
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("0", 2.0)
    assert drain(s) == [play(["support-menu"], 2)]


def test_menu_outside_the_set_is_a_route():
    menu = {**MAIN, "options": {"3": {"goto": "menu", "target": "elsewhere"}}}
    s = session(menu)
    s.started(0.0)
    drain(s)
    s.digit("3", 0.1)
    assert drain(s) == [StopPlayback(), Route("menu", "elsewhere")]


def test_hangup_option():
    s = session()
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("*", 1.5)
    assert drain(s) == [Hangup("ivr-hangup")]
    assert s.get_timer() is None


DIAL = {**MAIN, "dial_by_extension": True, "inter_digit_timeout": 2.5}


def test_dial_by_extension_routes_when_the_number_exists():
    s = session(DIAL, SUPPORT)
    s.started(0.0)
    drain(s)
    # "1" is the queue option, not marked as a prefix: it is taken at once
    s.digit("1", 0.5)
    assert drain(s) == [StopPlayback(), Route("queue", "sales")]
    s = session({**DIAL, "options": {"*": {"goto": "hangup"}}}, SUPPORT)
    s.started(0.0)
    drain(s)
    s.digit("1", 0.5)
    assert drain(s) == [StopPlayback()]
    assert s.get_timer() == 3.0
    s.digit("0", 2.0)
    assert s.get_timer() == 4.5         # each digit restarts the inter-digit timer
    s.digit("0", 4.0)
    s.digit("2", 6.0)
    assert drain(s) == [Route("extension", "1002")]


def test_dial_by_extension_inter_digit_timeout_is_invalid():
    s = session({**DIAL, "options": {}}, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("1", 2.0)
    s.digit("0", 3.0)
    s.digit("0", 4.0)
    s.handle_timer(6.4)
    assert drain(s) == []
    s.handle_timer(6.5)                 # "100" is no extension
    assert drain(s) == [play(("invalid-option",) + GREETING, 2)]
    assert s.collected == ""


def test_hash_ends_the_number():
    s = session({**DIAL, "options": {}}, SUPPORT, longer=lambda n: n in ("1", "10", "100"),
                exists=WITH_10)
    s.started(0.0)
    drain(s)
    s.digit("1", 0.5)
    s.digit("0", 0.7)                   # "10" exists but "1001" too: wait
    assert drain(s) == [StopPlayback()]
    s.digit("#", 1.0)
    assert drain(s) == [Route("extension", "10")]


def test_ambiguous_number_routes_on_timeout():
    s = session({**DIAL, "options": {}}, SUPPORT, longer=lambda n: n in ("1", "10", "100"),
                exists=WITH_10)
    s.started(0.0)
    drain(s)
    s.digit("1", 0.5)
    s.digit("0", 0.7)
    s.handle_timer(3.2)
    assert drain(s) == [StopPlayback(), Route("extension", "10")]


def test_impossible_number_is_invalid_at_once_when_prefixes_are_known():
    s = session({**DIAL, "options": {}}, SUPPORT, longer=lambda n: n in ("1", "10", "100", "2", "20", "200"))
    s.started(0.0)
    drain(s)
    s.digit("5", 0.5)
    assert drain(s) == [StopPlayback(), play(("invalid-option",) + GREETING, 2)]


def test_option_digit_that_also_begins_an_extension():
    options = {"1": {"goto": "queue", "target": "sales", "extension_prefix": True}}
    menu = {**DIAL, "options": options}
    # alone, then the inter-digit timeout: the option
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    s.digit("1", 2.0)
    assert drain(s) == [] and s.get_timer() == 4.5
    s.handle_timer(4.5)
    assert drain(s) == [Route("queue", "sales")]
    # followed by more digits: the extension
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.playback_finished(1.0)
    for t, d in enumerate("1001"):
        s.digit(d, 2.0 + t)
    assert drain(s) == [Route("extension", "1001")]
    # with '#' right after it: still the option
    s = session(menu, SUPPORT)
    s.started(0.0)
    drain(s)
    s.digit("1", 0.2)
    s.digit("#", 0.3)
    assert drain(s) == [StopPlayback(), Route("queue", "sales")]


def test_star_while_collecting_is_invalid():
    s = session({**DIAL, "options": {}}, SUPPORT)
    s.started(0.0)
    drain(s)
    s.digit("2", 0.5)
    s.digit("*", 0.6)
    assert drain(s) == [StopPlayback(), play(("invalid-option",) + GREETING, 2)]


def test_empty_greeting_starts_the_timeout_at_once():
    s = session({"id": "quiet", "options": {"1": {"goto": "hangup"}}, "timeout": 3, "retries": 0},
                start="quiet")
    s.started(10.0)
    assert drain(s) == [] and s.get_timer() == 13.0
    s.handle_timer(13.0)
    assert drain(s) == [Hangup("ivr-fallback")]


def test_menu_values_are_accepted_and_unknown_start_is_an_error():
    menu = Menu.from_document(MAIN)
    assert menu.greeting == GREETING and menu.options["1"].target == "sales"
    IvrSession({"main": menu}, "main", 0.0, EXTENSIONS.__contains__)
    with pytest.raises(KeyError):
        IvrSession([MAIN], "nope", 0.0, EXTENSIONS.__contains__)


# ------------------------------------------------------------------ schema

PHRASES = {"welcome", "support-menu", "invalid-option"}
KNOWN = dict(phrases=PHRASES, files={"promo.wav"}, extensions=EXTENSIONS, queues={"sales", "support"})


def errors(doc, **known) -> list[str]:
    return [str(e) for e in validate(doc, **{**KNOWN, **known})]


def test_a_good_document_validates():
    office = {"id": "office", "timezone": "Europe/Berlin",
              "hours": [{"days": "mon-fri", "from": "08:30", "to": "17:30"}],
              "holidays": [{"date": "12-25"}],
              "day": {"goto": "menu", "target": "main"}, "night": {"goto": "voicemail", "target": "1001"}}
    assert errors({"menus": [MAIN, SUPPORT, DIAL | {"id": "dial"}], "time_conditions": [office]}) == []
    check({"menus": {"main": MAIN, "support": SUPPORT}}, **KNOWN)


def test_reference_errors_name_their_path():
    menu = {**MAIN, "options": {"1": {"goto": "queue", "target": "billing"},
                                "2": {"goto": "menu", "target": "nowhere"},
                                "3": {"goto": "extension", "target": "9999"},
                                "4": {"goto": "voicemail", "target": "7"},
                                "5": {"goto": "condition", "target": "office"},
                                "6": {"goto": "teleport"},
                                "7": {"goto": "queue"},
                                "8": {"goto": "hangup", "target": "x"}}}
    assert errors({"menus": [menu]}) == [
        "menus[main].options[1].target: no queue 'billing'",
        "menus[main].options[2].target: no menu 'nowhere'",
        "menus[main].options[3].target: no extension '9999'",
        "menus[main].options[4].target: no voicemail '7'",
        "menus[main].options[5].target: no condition 'office'",
        "menus[main].options[6].goto: unknown destination 'teleport' (one of: back, condition, extension, "
        "hangup, menu, queue, repeat, voicemail)",
        "menus[main].options[7].target: 'queue' needs a target",
        "menus[main].options[8].target: 'hangup' takes no target",
    ]


def test_the_issue_example_message():
    menu = {**MAIN, "options": {"1": {"goto": "queue", "target": "sales"}}}
    assert errors({"menus": [menu]}, queues=set()) == ["menus[main].options[1].target: no queue 'sales'"]


def test_option_keys_prompts_and_numbers():
    menu = {"id": "m", "greeting": ["welcom", {"file": "gone.wav"}, {"say": " "}, 7],
            "invalid": "invalid-option",
            "options": {"12": {"goto": "hangup"}, "x": {"goto": "hangup"}, "1": {"goto": "repeat"}},
            "timeout": 0, "retries": -1, "inter_digit_timeout": "2", "dial_by_extension": "yes", "colour": 1}
    with pytest.raises(DocumentError) as info:
        check({"menus": [menu]}, **KNOWN)
    assert [str(e) for e in info.value.errors] == [
        "menus[m].colour: unknown field (known: dial_by_extension, fallback, greeting, id, "
        "inter_digit_timeout, invalid, name, on_timeout, options, retries, timeout)",
        "menus[m].greeting[0]: no prompt 'welcom' in the phrase table",
        "menus[m].greeting[1].file: no uploaded file 'gone.wav'",
        "menus[m].greeting[2].say: text to speak must not be empty",
        "menus[m].greeting[3]: a prompt is a name, {say: text} or {file: name}",
        "menus[m].invalid: a list of prompt names, {say: text} or {file: name}",
        "menus[m].timeout: must be a number of seconds > 0, not 0",
        "menus[m].inter_digit_timeout: must be a number of seconds > 0, not '2'",
        "menus[m].retries: must be a whole number >= 0, not -1",
        "menus[m].dial_by_extension: true or false, not 'yes'",
        "menus[m].options[12]: option keys are single DTMF keys (0-9, *, #, A-D), not '12'",
        "menus[m].options[x]: option keys are single DTMF keys (0-9, *, #, A-D), not 'x'",
    ]


def test_unchecked_references_when_nothing_is_known():
    menu = {**MAIN, "greeting": ["anything"], "options": {"1": {"goto": "queue", "target": "whatever"}}}
    assert [str(e) for e in validate({"menus": [menu]})] == []


def test_ids_duplicates_and_keys():
    assert errors({"menus": [MAIN, MAIN, {"greeting": []}, SUPPORT]}) == [
        "menus[main].id: duplicate id 'main'", "menus[2].id: missing id (a non-empty text)"]
    assert errors({"menus": {"a": {**SUPPORT, "id": "b"}}}) == ["menus[a].id: id 'b' differs from its key 'a'"]


def test_extension_prefix_rules_and_fallback_repeat():
    menu = {**MAIN, "options": {"1": {"goto": "queue", "target": "sales", "extension_prefix": True},
                                "*": {"goto": "hangup", "extension_prefix": True}},
            "fallback": {"goto": "repeat"}}
    assert errors({"menus": [menu]}) == [
        "menus[main].options[1].extension_prefix: the menu does not have dial_by_extension",
        "menus[main].options[*].extension_prefix: key '*' cannot begin an extension number",
        "menus[main].fallback.goto: 'repeat' without input loops forever; send the caller somewhere",
    ]


def test_loops_without_input_are_found():
    a = {"id": "a", "greeting": ["welcome"], "options": {"1": {"goto": "hangup"}},
         "fallback": {"goto": "menu", "target": "b"}}
    b = {"id": "b", "greeting": ["welcome"], "options": {"1": {"goto": "hangup"}},
         "on_timeout": {"goto": "condition", "target": "c"}, "fallback": {"goto": "hangup"}}
    c = {"id": "c", "hours": [{"days": "daily", "from": "00:00", "to": "24:00"}],
         "day": {"goto": "menu", "target": "a"}, "night": {"goto": "hangup"}}
    assert errors({"menus": [a, b], "time_conditions": [c]}) == [
        "time_conditions[c].day.target: loops without input (menu a -> menu b -> condition c -> menu a); "
        "a caller who presses nothing never leaves"]
    # an option back to a menu needs input, so it is no loop
    a2 = {**a, "fallback": {"goto": "hangup"}, "options": {"1": {"goto": "menu", "target": "a"}}}
    assert errors({"menus": [a2]}) == []


def test_time_condition_errors_name_their_path():
    bad = {"id": "office", "timezone": "Mars/Olympus",
           "hours": [{"days": "mon-fry", "from": "08:30", "to": "17:30"},
                     {"days": "sat", "from": "8.30", "to": "12:00"},
                     {"days": "sat", "from": "09:00", "to": "25:00"},
                     {"days": "sun", "from": "09:00", "to": "09:00"}],
           "holidays": [{"date": "02-30"}, {"from": "2025-08-15", "to": "2025-08-04"},
                        {"from": "12-24", "to": "2025-12-26"}, {"when": "xmas"}],
           "day": {"goto": "queue", "target": "nope"}}
    assert errors({"time_conditions": [bad]}) == [
        "time_conditions[office].timezone: unknown time zone 'Mars/Olympus' (e.g. Europe/Berlin)",
        "time_conditions[office].hours[0].days: unknown day 'fry' (use mon, tue, wed, thu, fri, sat, sun)",
        "time_conditions[office].hours[1].from: time must be HH:MM, not '8.30'",
        "time_conditions[office].hours[2].to: no such time of day '25:00'",
        "time_conditions[office].hours[3].to: a range from and to the same time is empty; "
        "use 00:00-24:00 for all day",
        "time_conditions[office].holidays[0].date: no such date '02-30'",
        "time_conditions[office].holidays[1].to: 2025-08-04 is before 2025-08-15",
        "time_conditions[office].holidays[2].to: from and to must both be MM-DD or both YYYY-MM-DD",
        "time_conditions[office].holidays[3]: a holiday is {date} or {from, to}",
        "time_conditions[office].day.target: no queue 'nope'",
        "time_conditions[office].night: missing destination",
    ]


def test_field_error_str():
    assert str(FieldError("menus[main].timeout", "bad")) == "menus[main].timeout: bad"
