"""One archive for the whole box: the configuration document, the prompts, optionally the
recordings, and a manifest that vouches for every byte.

Layout of a backup (a gzip'd tar)::

    manifest.json   {"format": "linebox-backup", "version": 1, "box_version": "0.1.0",
                     "created": "2026-11-23T08:30:00Z", "recordings": false,
                     "files": [{"path": "config.json", "size": 1234, "sha256": "..."}, ...]}
    config.json     the configuration document (docs/config.md; holds the SIP secrets)
    history.json    the call history: every CDR row and the queue log (merged on restore: rows the
                    box lacks are added, none it has is changed or dropped)
    prompts/...     <data>/prompts (uploaded and rendered prompts)
    recordings/...  <data>/recordings/*.wav, when asked for

A restore is two steps. :func:`check` proves the archive good before anything on the box is
touched: a gzip'd tar of regular files only, no absolute path, no ``..``, nothing outside
config.json/prompts/recordings, every member named once in the manifest and every manifest entry
present, sizes within limits and equal to the manifest's, every SHA-256 right, and the
configuration valid (``firmware.api.localapi.document_problems``, with the prompts the archive brings). The
files are unpacked into a staging directory inside the data directory while they are hashed.
:func:`apply` then moves the staged files into place (the files they replace are kept aside)
and applies the configuration through ``LocalApi.apply_document``; if that fails, the files are
put back as they were. A refused archive raises :class:`Refused` with a message for the admin
and leaves the box as it was.

A backup may be encrypted with a passphrase (webui.encrypted: the archive above, sealed whole):
it then shows nothing, not the SIP secrets in config.json nor the recordings, to whoever holds
the file without the passphrase. :func:`check` recognises one by its header; without the
passphrase, or with another, it is refused with :class:`PassphraseRefused` before anything is
unpacked. Either way the voicemail PINs in config.json are salted hashes (firmware.config.pins).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterable, Mapping

from firmware.api.localapi import FILE_MODE, document_problems, private_dir
from webui import encrypted
from firmware.acd.events import Kind
from firmware.prompts import uploads

FORMAT = "linebox-backup"
VERSION = 1
MANIFEST = "manifest.json"
CONFIG = "config.json"
HISTORY = "history.json"
CDR_FIELDS = {"id": str, "call_id": str, "caller": str, "callee": str, "start": (int, float),
              "disposition": str}  # required; answer, end, duration, billsec: numbers or null
LOG_FIELDS = {"time": (int, float), "queue": str, "kind": str, "call_id": str, "agent": str,
              "wait": (int, float), "talk": (int, float), "wrapup": (int, float), "position": int, "reason": str}
ROOTS = ("prompts", "recordings")  # directories of <data> an archive may carry
MAX_FILE = 512 * 1024 * 1024  # one recording of several hours is still well under this
MAX_TOTAL = 4 * 1024 * 1024 * 1024
MAX_MANIFEST = 4 * 1024 * 1024
MAX_MEMBERS = 100_000
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
STAGING_PREFIX = ".restore-"
SKIP_SUFFIXES = (".part", ".tmp")  # a recording or prompt being written is not part of a backup


class Refused(Exception):
    """The archive cannot be restored; the message says why. Nothing was changed."""


class PassphraseRefused(Refused):
    """The archive is encrypted and the passphrase is missing or wrong (said next to its field)."""


@dataclass
class Checked:
    """An archive proven good, its files unpacked in ``staging`` (removed by apply/discard)."""

    manifest: dict[str, Any]
    document: dict[str, Any]
    staging: Path
    files: list[str] = field(default_factory=list)  # the paths besides config.json and history.json
    history: dict[str, Any] | None = None

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def box_version() -> str:
    try:
        from importlib.metadata import version

        return version("linebox")
    except Exception:  # noqa: BLE001 -- not installed as a package (a source checkout)
        return "unknown"


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect(data: Path, *, recordings: bool) -> list[tuple[str, Path]]:
    """(path in the archive, file on disk) for the prompts and, if asked, the recordings."""
    out: list[tuple[str, Path]] = []
    for root in ROOTS:
        if root == "recordings" and not recordings:
            continue
        base = data / root
        if not base.is_dir():
            continue
        for p in sorted(base.rglob("*")):
            if not p.is_file() or p.is_symlink() or p.name.endswith(SKIP_SUFFIXES) or p.name.startswith("."):
                continue
            if root == "recordings" and p.suffix != ".wav":
                continue
            rel = p.relative_to(data).as_posix()
            if safe_path(rel):
                out.append((rel, p))
    return out


def sizes(data: Path) -> dict[str, int]:
    """Bytes the prompts and the recordings would add to a backup (for the page)."""
    return {root: sum(p.stat().st_size for rel, p in collect(data, recordings=True) if rel.startswith(root + "/"))
            for root in ROOTS}


def write(out: IO[bytes], document: Mapping[str, Any], data: Path, *, recordings: bool,
          now: float | None = None, history: Mapping[str, Any] | None = None,
          passphrase: str | None = None) -> dict[str, Any]:
    """Writes a backup of ``document`` (and the call ``history``) and the files of ``data`` to
    ``out``, encrypted if a ``passphrase`` is given; returns its manifest."""
    if not passphrase:
        return _write(out, document, data, recordings=recordings, now=now, history=history)
    sealed = encrypted.Writer(out, passphrase)  # the same archive, sealed a segment at a time as it is made
    manifest = _write(sealed, document, data, recordings=recordings, now=now, history=history)
    sealed.finish()
    return manifest


def _write(out: IO[bytes] | encrypted.Writer, document: Mapping[str, Any], data: Path, *, recordings: bool,
           now: float | None, history: Mapping[str, Any] | None) -> dict[str, Any]:
    config = (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()
    files = collect(data, recordings=recordings)
    entries = [{"path": CONFIG, "size": len(config), "sha256": hashlib.sha256(config).hexdigest()}]
    blobs = [(CONFIG, config)]
    if history is not None:
        hist = (json.dumps(history, separators=(",", ":")) + "\n").encode()
        entries.append({"path": HISTORY, "size": len(hist), "sha256": hashlib.sha256(hist).hexdigest()})
        blobs.append((HISTORY, hist))
    entries += [{"path": rel, "size": p.stat().st_size, "sha256": _sha256_file(p)} for rel, p in files]
    stamp = time.time() if now is None else now
    manifest = {"format": FORMAT, "version": VERSION, "box_version": box_version(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
                "recordings": recordings, "files": entries}
    raw = (json.dumps(manifest, indent=1) + "\n").encode()
    with tarfile.open(fileobj=out, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, blob in ((MANIFEST, raw), *blobs):
            tar.addfile(_info(name, len(blob), stamp), io.BytesIO(blob))
        for (rel, p), entry in zip(files, entries[len(blobs):]):
            with open(p, "rb") as f:
                # The size is the one hashed: a file that grew since is cut to it, so the
                # archive stays true to its manifest.
                tar.addfile(_info(rel, entry["size"], p.stat().st_mtime), f)
    return manifest


def _info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    # 0600: an archive unpacked by hand keeps the SIP secrets and recordings private too
    info.size, info.mtime, info.mode, info.type = size, int(mtime), FILE_MODE, tarfile.REGTYPE
    return info


def safe_path(rel: str) -> bool:
    """A path an archive may hold: config.json, or prompts/... / recordings/... made of plain
    segments (no absolute path, no ``..``, no hidden file, no backslash)."""
    if rel in (CONFIG, HISTORY):
        return True
    parts = rel.split("/")
    return (len(parts) >= 2 and parts[0] in ROOTS and all(SEGMENT.fullmatch(s) for s in parts[1:])
            and PurePosixPath(rel).as_posix() == rel and ".." not in parts)


def check(archive: Path | IO[bytes], data: Path, *, max_total: int = MAX_TOTAL,
          passphrase: str | None = None) -> Checked:
    """Proves ``archive`` (seekable) a good backup for the box at ``data`` (see the module doc)
    and stages its files; raises :class:`Refused` otherwise, having changed nothing.
    ``passphrase``: the one an encrypted archive was made with (ignored for a plain one)."""
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data))  # 0700, like the rest
    try:
        with open(archive, "rb") if isinstance(archive, (str, Path)) else contextlib.nullcontext(archive) as src:
            return _check(_plain(src, passphrase), data, staging, max_total)
    except encrypted.WrongPassphrase:
        shutil.rmtree(staging, ignore_errors=True)
        raise PassphraseRefused("The passphrase is wrong: this backup was encrypted with another one.") from None
    except encrypted.Undecryptable as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise Refused(f"The encrypted backup cannot be read: {str(exc).rstrip('.')}.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _plain(src: IO[bytes], passphrase: str | None) -> IO[bytes]:
    """The gzip'd tar inside ``src``: ``src`` itself, or the decrypting view of an encrypted one."""
    src.seek(0)
    head = src.read(len(encrypted.MAGIC))
    src.seek(0)
    if not encrypted.is_encrypted(head):
        return src
    if not passphrase:
        raise PassphraseRefused("This backup is encrypted: type the passphrase it was made with.")
    return encrypted.Reader(src, passphrase)


def _open(archive: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=archive, mode="r:gz")
    except (tarfile.TarError, EOFError, zlib.error, OSError):
        raise Refused("This is not a LineBox backup: not a gzip-compressed tar archive.") from None


def _check(archive: IO[bytes], data: Path, staging: Path, max_total: int) -> Checked:
    tar = _open(archive)
    try:
        try:
            members = _members(tar)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise Refused(f"The archive is damaged (it ends early or fails its own checksum: {exc}).") from None
        if MANIFEST not in members:
            raise Refused("This is not a LineBox backup: it has no manifest.json.")
        manifest = _manifest(tar, members[MANIFEST])
        listed = {e["path"]: e for e in manifest["files"]}
        present = set(members) - {MANIFEST}
        if present - set(listed):
            raise Refused(f"The archive holds files its manifest does not list: {', '.join(sorted(present - set(listed))[:5])}.")
        if set(listed) - present:
            raise Refused(f"Files the manifest lists are missing: {', '.join(sorted(set(listed) - present)[:5])}.")
        if CONFIG not in listed:
            raise Refused("The archive holds no configuration (config.json).")
        total = 0
        for path, e in listed.items():
            m = members[path]
            if m.size != e["size"]:
                raise Refused(f"{path}: {m.size} bytes in the archive, {e['size']} in the manifest.")
            if m.size > MAX_FILE:
                raise Refused(f"{path} is larger than {MAX_FILE // (1024 * 1024)} MB.")
            total += m.size
        if total > max_total:
            raise Refused(f"The archive unpacks to {total // (1024 * 1024)} MB; at most {max_total // (1024 * 1024)} MB.")
        try:
            free = shutil.disk_usage(data).free
        except OSError:
            free = None
        if free is not None and total * 2 > free:  # staged copy + the files kept aside
            raise Refused(f"Not enough free space on the box to restore {total // (1024 * 1024)} MB.")
        for path, e in sorted(listed.items()):
            _stage(tar, members[path], staging / path, e["sha256"])
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise Refused(f"The archive is damaged ({exc}).") from None
    finally:
        tar.close()
    document = _document(staging / CONFIG, data, staging)
    history = _history(staging / HISTORY) if HISTORY in listed else None
    return Checked(manifest, document, staging, sorted(p for p in listed if p not in (CONFIG, HISTORY)), history)


def _history(path: Path) -> dict[str, Any]:
    """The call history of an archive, each row checked field by field before any is merged."""
    try:
        h = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Refused("history.json is not JSON.") from None
    if not isinstance(h, dict) or not isinstance(h.get("cdr"), list) or not isinstance(h.get("queue_log"), list):
        raise Refused('history.json must be {"cdr": [...], "queue_log": [...]}.')
    kinds = {k.value for k in Kind}
    for i, r in enumerate(h["cdr"]):
        bad = [k for k, t in CDR_FIELDS.items() if not isinstance(r, dict) or not isinstance(r.get(k), t)
               or isinstance(r.get(k), bool)]
        bad += [k for k in ("answer", "end", "duration", "billsec") if isinstance(r, dict)
                and r.get(k) is not None and (not isinstance(r[k], (int, float)) or isinstance(r[k], bool))]
        if bad:
            raise Refused(f"history.json: call record {i} has a bad {bad[0]}.")
    for i, e in enumerate(h["queue_log"]):
        if not isinstance(e, dict) or set(e) != set(LOG_FIELDS) or e.get("kind") not in kinds:
            raise Refused(f"history.json: queue log line {i} is not a queue event.")
        bad = [k for k, t in LOG_FIELDS.items() if not isinstance(e[k], t) or isinstance(e[k], bool)]
        if bad:
            raise Refused(f"history.json: queue log line {i} has a bad {bad[0]}.")
    return h


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    members: dict[str, tarfile.TarInfo] = {}
    for i, m in enumerate(tar):
        if i >= MAX_MEMBERS:
            raise Refused(f"The archive holds more than {MAX_MEMBERS} files.")
        name = m.name
        if name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise Refused(f"The archive names a file outside the box's data ({name!r}); refused.")
        if m.isdir():
            continue
        if not m.isreg():
            raise Refused(f"{name!r} is not a regular file (a link or a device); a backup holds only files.")
        if name != MANIFEST and not safe_path(name):
            raise Refused(f"The archive holds {name!r}, which is not part of a LineBox backup.")
        if name in members:
            raise Refused(f"The archive holds {name!r} twice.")
        members[name] = m
    return members


def _manifest(tar: tarfile.TarFile, info: tarfile.TarInfo) -> dict[str, Any]:
    if info.size > MAX_MANIFEST:
        raise Refused("manifest.json is too large to be a LineBox manifest.")
    f = tar.extractfile(info)
    assert f is not None
    try:
        manifest = json.loads(f.read())
    except (ValueError, UnicodeDecodeError):
        raise Refused("manifest.json is not JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise Refused("This is not a LineBox backup (its manifest names another format).")
    if manifest.get("version") != VERSION:
        raise Refused(f"This backup has format version {manifest.get('version')!r}; this box reads version {VERSION}. "
                      "Update the box first.")
    files = manifest.get("files")
    if not isinstance(files, list):
        raise Refused("The manifest has no file list.")
    seen: set[str] = set()
    for e in files:
        if (not isinstance(e, dict) or not isinstance(e.get("path"), str) or not isinstance(e.get("size"), int)
                or e["size"] < 0 or not isinstance(e.get("sha256"), str) or not re.fullmatch(r"[0-9a-f]{64}", e["sha256"])):
            raise Refused("The manifest's file list is malformed (each entry: path, size, sha256).")
        if not safe_path(e["path"]) or e["path"] in seen:
            raise Refused(f"The manifest names {e['path']!r}, which a backup may not hold.")
        seen.add(e["path"])
    return manifest


def _stage(tar: tarfile.TarFile, info: tarfile.TarInfo, dest: Path, sha256: str) -> None:
    private_dir(dest.parent)
    src = tar.extractfile(info)
    assert src is not None
    h = hashlib.sha256()
    left = info.size
    # 0600 whatever the umask: these files are moved into the data directory as they are
    with os.fdopen(os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "wb") as out:
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise Refused(f"{info.name} ends early: the archive is damaged.")
            h.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    if h.hexdigest() != sha256:
        raise Refused(f"{info.name} does not match its SHA-256 in the manifest: the archive is damaged or was altered.")


def _document(path: Path, data: Path, staging: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Refused("config.json is not JSON.") from None
    files = uploads.names(data) | uploads.names(staging)
    problems = document_problems(doc, files=files)
    if problems:
        shown = "; ".join(f"{p.path or 'document'}: {p.message}" for p in problems[:5])
        raise Refused(f"The configuration in this backup is not valid for this box: {shown}.")
    return doc


def apply(checked: Checked, api: Any, data: Path) -> Any:
    """Moves the staged files into place, then applies the configuration (``api.apply_document``).
    If the configuration is refused, the files are put back as they were and the error raised.
    Returns what ``apply_document`` returned."""
    aside = checked.staging / ".aside"
    moved: list[tuple[Path, Path | None]] = []  # (target, where its old file went, or None)
    try:
        for rel in checked.files:
            target = data / rel
            private_dir(target.parent)
            old = None
            if target.exists():
                old = aside / rel
                private_dir(old.parent)
                os.replace(target, old)
            moved.append((target, old))
            os.replace(checked.staging / rel, target)
        result = api.apply_document(checked.document)
        if checked.history is not None:
            # After the configuration: a refused configuration leaves the history untouched too.
            api.merge_history(checked.history)
    except BaseException:
        for target, old in reversed(moved):
            try:
                if old is not None:
                    os.replace(old, target)
                elif target.exists():
                    target.unlink()
            except OSError:
                pass
        raise
    finally:
        checked.discard()
    return result


def clear_stale(data: Path, older_than: float = 3600.0) -> None:
    """Removes staging directories a crash mid-restore left behind."""
    now = time.time()
    for p in data.glob(STAGING_PREFIX + "*"):
        try:
            if p.is_dir() and now - p.stat().st_mtime > older_than:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def summary(checked: Checked | Mapping[str, Any]) -> str:
    manifest = checked.manifest if isinstance(checked, Checked) else checked
    files: Iterable[Mapping[str, Any]] = manifest.get("files", [])
    n = {root: sum(1 for e in files if str(e["path"]).startswith(root + "/")) for root in ROOTS}
    return (f"backup of {manifest.get('created', '?')} (LineBox {manifest.get('box_version', '?')}): "
            f"the configuration, {n['prompts']} prompt file(s), {n['recordings']} recording(s)")


__all__ = ["Refused", "PassphraseRefused", "Checked", "write", "check", "apply", "collect", "sizes", "safe_path",
           "summary", "clear_stale", "FORMAT", "VERSION"]
