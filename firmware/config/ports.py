"""The ``ports`` configuration section: which analog port is which extension or inbound number,
and an FXO line's answer and disconnect settings (board.fxo.FxoConfig)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from firmware.schema import FieldError

PORT_NAME = re.compile(r"(fxs|fxo)\d{1,3}|dahdi\d{1,3}")


# What an FXO line's "line" settings may say (board.fxo.FxoConfig), and their checks.
LINE_FIELDS: dict[str, tuple[str, Any]] = {
    "rings_before_answer": ("a whole number of rings, 1-10", lambda v: type(v) is int and 1 <= v <= 10),
    "answer_on_cid": ("true or false", lambda v: isinstance(v, bool)),
    "answer_polarity": ("true or false", lambda v: isinstance(v, bool)),
    "disconnect_polarity": ("true or false", lambda v: isinstance(v, bool)),
    "loop_drop_ms": ("milliseconds, 10-2000, or null", lambda v: v is None or (type(v) is int and 10 <= v <= 2000)),
    "disconnect_tones": ('a list of "busy", "congestion", "dial"',
                         lambda v: isinstance(v, list) and all(t in ("busy", "congestion", "dial") for t in v)),
    "silence_timeout": ("seconds, 5-3600, or null",
                        lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 5 <= v <= 3600)),
}


def validate_ports(doc: Any, *, extensions: set[str] | None, numbers: set[str] | None) -> list[FieldError]:
    """Every problem of a ``ports`` document, with paths like ``ports.fxs1.extension``."""
    if doc is None:
        return []
    if not isinstance(doc, Mapping):
        return [FieldError("ports", 'an object of port name -> {"extension": N} or {"inbound": N}')]
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for name, spec in doc.items():
        path = f"ports.{name}"
        if not PORT_NAME.fullmatch(str(name)):
            errors.append(FieldError(path, "a port name like fxs1, fxo1 (simulated HAT) or dahdi1"))
            continue
        fxs = isinstance(spec, Mapping) and "extension" in spec and set(spec) <= {"extension", "call_waiting"}
        fxo = isinstance(spec, Mapping) and "inbound" in spec and set(spec) <= {"inbound", "line"}
        if not (fxs or fxo):
            errors.append(FieldError(path, '{"extension": NUMBER, "call_waiting": BOOL} (FXS) or '
                                           '{"inbound": NUMBER, "line": {...}} (FXO)'))
            continue
        if fxs:
            if not isinstance(spec.get("call_waiting", True), bool):
                errors.append(FieldError(f"{path}.call_waiting", f"true or false, not {spec['call_waiting']!r}"))
            value = spec["extension"]
            if extensions is not None and value not in extensions:
                errors.append(FieldError(f"{path}.extension", f"no extension {value!r} (add it first)"))
            elif value in seen:
                errors.append(FieldError(f"{path}.extension", f"{value} is already on {seen[value]}"))
            seen[str(value)] = str(name)
            continue
        if numbers is not None and spec["inbound"] not in numbers:
            errors.append(FieldError(f"{path}.inbound", f"{spec['inbound']!r} is no extension, IVR or queue number"))
        line = spec.get("line", {})
        if not isinstance(line, Mapping):
            errors.append(FieldError(f"{path}.line", "an object of line settings"))
            continue
        for key, value in line.items():
            rule = LINE_FIELDS.get(key)
            if rule is None:
                errors.append(FieldError(f"{path}.line.{key}", f"unknown; known: {', '.join(LINE_FIELDS)}"))
            elif not rule[1](value):
                errors.append(FieldError(f"{path}.line.{key}", f"{rule[0]}, not {value!r}"))
    return errors


def proposal_line(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A line test's proposed settings as a port's ``line`` object."""
    return {"answer_polarity": bool(settings["answer_polarity"]),
            "disconnect_polarity": bool(settings["disconnect_polarity"]),
            "loop_drop_ms": settings.get("loop_drop_ms"),
            "disconnect_tones": list(settings.get("disconnect_tones") or [])}
