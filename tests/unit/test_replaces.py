"""The Replaces value of an attended transfer's Refer-To (RFC 3891), as phones escape it."""
from __future__ import annotations

from firmware.pbx.sipleg import replaces_dialog
from firmware.sip.uri import NameAddr


def test_replaces_from_a_refer_to_header() -> None:
    refer_to = ("<sip:1003@127.0.0.1:5060?Replaces=5f2a%40host.example%3Bto-tag%3Dbx91"
                "%3Bfrom-tag%3Dph77>")
    uri = NameAddr.parse(refer_to).uri
    assert replaces_dialog(uri.headers["Replaces"]) == ("5f2a@host.example", frozenset({"bx91", "ph77"}))


def test_tag_order_and_case_do_not_matter_and_missing_tags_match_nothing() -> None:
    assert replaces_dialog("abc%3BFrom-Tag%3D1%3Bto-tag%3D2") == ("abc", frozenset({"1", "2"}))
    assert replaces_dialog("abc;early-only") == ("abc", frozenset({""}))
