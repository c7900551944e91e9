"""The spoken prompt set: phrases rendered from text at build/setup time.

Data lives in ``firmware/prompts/<lang>.py`` (VOICE, SPEED, PHRASES: name ->
text). ``build()`` renders each phrase with espeak-ng and turns it with sox
into what the media engine plays: 8 kHz mono 16-bit PCM WAV, leading/trailing
silence trimmed, peak-normalised to -6 dBFS (so every prompt plays at the
same level; µ-law/A-law conversion happens in the engine)::

    espeak-ng -v VOICE -s SPEED -w tmp.wav            (text on stdin)
    sox -D tmp.wav -r 8000 -c 1 -b 16 out.wav \\
        silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse norm -6

``-D`` (no dither) makes the output bit-for-bit reproducible. Files land in
``<out>/<lang>/<name>.wav`` next to a ``manifest.json`` that records, per
prompt, a hash of text + voice + speed + espeak-ng version + sox chain; a
prompt whose hash is unchanged and whose file exists is skipped, so a second
build does nothing. Files are written to a temporary name and renamed.

The grammar half turns values into playlists of prompt names:
``number_to_prompts(1234) -> ["1", "thousand", "2", "hundred", "30", "4"]``,
``digits_to_prompts("1002")``, ``time_to_prompts(13, 45)``; ``PromptSet``
maps names to files and says how to build them when one is missing.

CLI::

    python -m firmware.prompts build --out DIR [--lang en] [--voice V] [--speed N]
    python -m firmware.prompts say --out DIR [--name NAME] [--lang en] "text"
    python -m firmware.prompts list [--lang en]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

__all__ = [
    "PromptError", "PromptMissing", "Language", "language", "build", "say",
    "number_to_prompts", "digits_to_prompts", "time_to_prompts",
    "PromptSet", "default_dir", "SOX_EFFECTS",
]

SOX_EFFECTS = ("silence", "1", "0.02", "0.5%", "reverse",
               "silence", "1", "0.02", "0.5%", "reverse",
               "norm", "-6")
SOX_FORMAT = ("-r", "8000", "-c", "1", "-b", "16")
WORKERS = 2
MANIFEST = "manifest.json"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class PromptError(RuntimeError):
    """Building a prompt failed (tool missing, tool error, bad name or text)."""


class PromptMissing(LookupError):
    """A prompt file is not there; the message names it and the build command."""


# ---------------------------------------------------------------- languages

@dataclass(frozen=True)
class Language:
    code: str
    voice: str
    speed: int
    phrases: dict[str, str]
    source: str          # the phrase table file (setup compares its mtime)


def language(lang: str = "en") -> Language:
    if not re.fullmatch(r"[a-z]{2,3}(_[a-z]{2})?", lang):
        raise ValueError(f"bad language code {lang!r}")
    try:
        mod = importlib.import_module(f"firmware.prompts.{lang}")
    except ModuleNotFoundError:
        raise ValueError(f"no phrase table for language {lang!r} "
                         f"(expected firmware/prompts/{lang}.py)") from None
    for name in mod.PHRASES:
        if not _NAME_RE.match(name):
            raise ValueError(f"{mod.__file__}: bad prompt name {name!r}")
    return Language(lang, mod.VOICE, int(mod.SPEED), dict(mod.PHRASES), mod.__file__)


# ---------------------------------------------------------------- grammar (en)


def _under_100_en(n: int) -> list[str]:
    if n <= 20:
        return [str(n)]
    tens, ones = divmod(n, 10)
    return [str(tens * 10)] + ([str(ones)] if ones else [])


def _under_1000_en(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [str(hundreds), "hundred"] if hundreds else []
    if rest or not out:
        out += _under_100_en(rest)
    return out


def _number_en(n: int) -> list[str]:
    if n < 0:
        return ["minus"] + _number_en(-n)
    thousands, rest = divmod(n, 1000)
    out = _under_1000_en(thousands) + ["thousand"] if thousands else []
    if rest or not out:
        out += _under_1000_en(rest)
    return out


def _time_en(hour: int, minute: int) -> list[str]:
    out = ["the-time-is"]
    h12 = hour % 12 or 12
    if minute == 0 and hour in (0, 12):
        return out + ["12", "midnight" if hour == 0 else "noon"]
    out += _number_en(h12)
    if minute == 0:
        out.append("oclock")
    elif minute < 10:
        out += ["oh", str(minute)]
    else:
        out += _number_en(minute)
    out.append("am" if hour < 12 else "pm")
    return out


_GRAMMARS = {"en": (_number_en, _time_en)}
_DIGIT_NAMES = {**{d: d for d in "0123456789"}, "*": "star", "#": "pound"}
MAX_NUMBER = 999_999


def _grammar(lang: str):
    try:
        return _GRAMMARS[lang]
    except KeyError:
        raise ValueError(f"no number grammar for language {lang!r}") from None


def number_to_prompts(n: int, lang: str = "en") -> list[str]:
    """Prompt names that speak ``n`` (-999999..999999), e.g. 1234 ->
    ["1", "thousand", "2", "hundred", "30", "4"]."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number_to_prompts wants an int, got {n!r}")
    if abs(n) > MAX_NUMBER:
        raise ValueError(f"{n} is out of range (|n| <= {MAX_NUMBER})")
    return _grammar(lang)[0](n)


def digits_to_prompts(digits: str, lang: str = "en") -> list[str]:
    """One prompt per key: "1002" -> ["1", "0", "0", "2"]; "*" -> star,
    "#" -> pound. Anything else is refused."""
    _grammar(lang)
    out = []
    for ch in str(digits):
        try:
            out.append(_DIGIT_NAMES[ch])
        except KeyError:
            raise ValueError(f"cannot speak {ch!r} in {digits!r} as a digit") from None
    return out


def time_to_prompts(hour: int, minute: int, lang: str = "en") -> list[str]:
    """The speaking clock: 13:45 -> the time is one forty five P M;
    00:05 -> twelve oh five A M; 12:00 -> twelve noon; 10:00 -> ten o'clock A M."""
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"bad time {hour:02d}:{minute:02d}")
    return _grammar(lang)[1](hour, minute)


# ---------------------------------------------------------------- rendering

def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise PromptError(f"{name} is not installed (scripts/setup installs espeak-ng and sox)")
    return path


def _espeak_version() -> str:
    out = subprocess.run([_tool("espeak-ng"), "--version"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("Data at:")[0].strip()


def _fingerprint(text: str, voice: str, speed: int, tool_version: str) -> str:
    blob = json.dumps([text, voice, speed, tool_version, SOX_FORMAT, SOX_EFFECTS],
                      ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _render(text: str, voice: str, speed: int, dest: Path) -> Path:
    """espeak-ng -> sox -> dest (atomically). Raises PromptError."""
    text = " ".join(text.split())
    if not text:
        raise PromptError(f"{dest.name}: empty text")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".render-") as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        # Text on stdin: arbitrary user text (a "-" first, quotes) never reads as an option.
        r = subprocess.run([_tool("espeak-ng"), "-v", voice, "-s", str(speed),
                            "-w", str(raw), "--stdin"],
                           input=text.encode(), capture_output=True)
        if r.returncode or not raw.exists() or raw.stat().st_size <= 44:
            raise PromptError(f"espeak-ng failed for {dest.name} (voice {voice}): "
                              f"{r.stderr.decode(errors='replace').strip()}")
        r = subprocess.run([_tool("sox"), "-D", str(raw), *SOX_FORMAT, str(out), *SOX_EFFECTS],
                           capture_output=True)
        if r.returncode:
            raise PromptError(f"sox failed for {dest.name}: "
                              f"{r.stderr.decode(errors='replace').strip()}")
        if out.stat().st_size <= 44:
            raise PromptError(f"{dest.name}: nothing left after trimming silence ({text!r})")
        os.replace(out, dest)
    return dest


def _read_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) and isinstance(data.get("prompts"), dict) else {"prompts": {}}
    except (FileNotFoundError, ValueError):
        return {"prompts": {}}


def _write_manifest(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def build(out_dir, lang: str = "en", voice: str | None = None, speed: int | None = None,
          names: Iterable[str] | None = None, workers: int = WORKERS) -> list[Path]:
    """Render the phrase table of ``lang`` into ``out_dir/lang/NAME.wav``.

    Returns the files (re)written by this call, so an up-to-date set returns
    []. ``names`` restricts the build to some phrases (others in the manifest
    are kept). ``voice``/``speed`` override the table's defaults.
    """
    lg = language(lang)
    voice = voice or lg.voice
    speed = int(speed or lg.speed)
    if names is None:
        todo = dict(lg.phrases)
    else:
        unknown = [n for n in names if n not in lg.phrases]
        if unknown:
            raise PromptError(f"not in the {lang} phrase table: {', '.join(unknown)}")
        todo = {n: lg.phrases[n] for n in names}
    dest_dir = Path(out_dir) / lang
    dest_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = dest_dir / MANIFEST
    manifest = _read_manifest(manifest_path)
    version = _espeak_version()
    jobs = {}
    for name, text in todo.items():
        fp = _fingerprint(text, voice, speed, version)
        entry = manifest["prompts"].get(name)
        if entry and entry.get("hash") == fp and (dest_dir / f"{name}.wav").is_file():
            continue
        jobs[name] = (text, fp)
    written: list[Path] = []
    errors: list[str] = []
    if jobs:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futs = {pool.submit(_render, text, voice, speed, dest_dir / f"{name}.wav"): name
                    for name, (text, _) in jobs.items()}
            for fut in concurrent.futures.as_completed(futs):
                name = futs[fut]
                try:
                    written.append(fut.result())
                except PromptError as e:
                    errors.append(str(e))
                    continue
                text, fp = jobs[name]
                manifest["prompts"][name] = {"hash": fp, "text": text}
        manifest.update(lang=lang, voice=voice, speed=speed, espeak=version)
        _write_manifest(manifest_path, manifest)   # records what did succeed
    if errors:
        raise PromptError(f"{len(errors)} prompt(s) failed: " + "; ".join(sorted(errors)))
    return sorted(written)


def said_name(text: str) -> str:
    """The file name ``say`` gives a text, so a player finds what the configuration rendered."""
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower())[:6]) or "prompt"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def say(out_dir, text: str, name: str | None = None, lang: str = "en",
        voice: str | None = None, speed: int | None = None) -> Path:
    """Render one-off text (e.g. an IVR greeting typed in the web admin) to
    ``out_dir/NAME.wav``; the name defaults to a slug of the text plus a hash."""
    lg = language(lang)
    if name is None:
        name = said_name(text)
    if not _NAME_RE.match(name):
        raise PromptError(f"bad prompt name {name!r} (lower case, digits and '-')")
    return _render(text, voice or lg.voice, int(speed or lg.speed), Path(out_dir) / f"{name}.wav")


# ---------------------------------------------------------------- lookup

def default_dir() -> Path:
    """Where scripts/setup builds the set: $LINEBOX_PROMPTS, else <venv>/share/linebox/prompts."""
    env = os.environ.get("LINEBOX_PROMPTS")
    return Path(env) if env else Path(sys.prefix) / "share" / "linebox" / "prompts"


class PromptSet:
    """Prompt name -> file for one language: ``PromptSet(dir).path("welcome")``."""

    def __init__(self, root=None, lang: str = "en"):
        self.root = Path(root) if root is not None else default_dir()
        self.lang = lang
        self.dir = self.root / lang

    def path(self, name: str) -> Path:
        p = self.dir / f"{name}.wav"
        if _NAME_RE.match(name) and p.is_file():
            return p
        try:
            known = name in language(self.lang).phrases
        except ValueError:
            known = False
        why = "" if known else f" (and {name!r} is not in firmware/prompts/{self.lang}.py)"
        raise PromptMissing(
            f"prompt {name!r} ({self.lang}) not found at {p}{why}; build the prompt set with: "
            f"python -m firmware.prompts build --out {self.root} --lang {self.lang}")

    def paths(self, names: Iterable[str]) -> list[Path]:
        return [self.path(n) for n in names]

    def __contains__(self, name: str) -> bool:
        return bool(_NAME_RE.match(name)) and (self.dir / f"{name}.wav").is_file()

    def __repr__(self) -> str:
        return f"PromptSet({str(self.root)!r}, lang={self.lang!r})"


# ---------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m firmware.prompts",
                                 description="Build the spoken prompt set with espeak-ng + sox.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render the phrase table (skips up-to-date prompts)")
    s = sub.add_parser("say", help="render one text to DIR/NAME.wav")
    ls = sub.add_parser("list", help="print the phrase table")
    for p in (b, s):
        p.add_argument("--out", required=True, type=Path)
        p.add_argument("--voice")
        p.add_argument("--speed", type=int)
    for p in (b, s, ls):
        p.add_argument("--lang", default="en")
    s.add_argument("--name")
    s.add_argument("text")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "build":
            import time
            t0 = time.monotonic()
            written = build(args.out, args.lang, args.voice, args.speed)
            total = len(language(args.lang).phrases)
            print(f"prompts: {len(written)} of {total} {args.lang} prompts rendered into "
                  f"{args.out / args.lang} in {time.monotonic() - t0:.1f} s")
        elif args.cmd == "say":
            print(say(args.out, args.text, args.name, args.lang, args.voice, args.speed))
        else:
            for name, text in language(args.lang).phrases.items():
                print(f"{name}\t{text}")
    except (PromptError, ValueError) as e:
        print(f"prompts: {e}", file=sys.stderr)
        return 1
    return 0
