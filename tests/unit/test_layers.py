"""The layers of the source tree, read from the modules' own imports (with ast, nothing run):
board never reaches into the PBX, the web admin never into the store, the PBX or the
configuration document, the protocol cores import nothing above them, and no two packages
depend on each other in a circle (docs/architecture.md draws the same picture).

Every import counts: at the top, inside a function, or under TYPE_CHECKING. A lazy import still
ties the two modules together, and a type-only one still says who knows whom."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("firmware", "board", "webui")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, absolute, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # `from firmware import events`
    return {m for m in found if m.split(".")[0] in TREES}


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: board, webui, or firmware's first-level package."""
    parts = module.split(".")
    if parts[0] != "firmware" or len(parts) == 1:
        return parts[0]
    return f"firmware.{parts[1]}"


def graph() -> dict[str, dict[str, set[str]]]:
    """unit -> unit it imports -> the modules doing so (for the message)."""
    known = {module_name(p) for t in TREES for p in (ROOT / t).rglob("*.py")}
    edges: dict[str, dict[str, set[str]]] = {}
    for tree in TREES:
        for path in (ROOT / tree).rglob("*.py"):
            src = module_name(path)
            for target in imports_of(path):
                if target not in known:
                    continue  # a name imported from a package, already counted as the package
                a, b = unit_of(src), unit_of(target)
                if a != b and b != "firmware":
                    edges.setdefault(a, {}).setdefault(b, set()).add(f"{src} -> {target}")
    return edges


EDGES = graph()


def reaches(unit: str, banned: str) -> list[str]:
    """The imports of ``unit`` whose imported module is ``banned`` or inside it."""
    return sorted(m for mods in EDGES.get(unit, {}).values() for m in mods
                  if (m.split(" -> ")[1] + ".").startswith(banned + "."))


def test_board_never_imports_the_pbx_or_anything_above_it():
    for banned in ("firmware.pbx", "firmware.config", "firmware.store", "firmware.api", "firmware.system",
                   "firmware.cli", "webui"):
        assert reaches("board", banned) == [], banned


@pytest.mark.parametrize("banned", ["firmware.store", "firmware.pbx", "firmware.system.app", "firmware.cli"])
def test_the_web_admin_reaches_the_box_only_through_the_local_api(banned):
    assert reaches("webui", banned) == []


def test_the_web_admin_does_not_validate_documents_itself():
    assert reaches("webui", "firmware.config.document") == []


@pytest.mark.parametrize("core, allowed", [
    ("firmware.sip", set()),
    ("firmware.media", {"firmware.sip"}),
    ("firmware.events", {"firmware.sip"}),
    ("firmware.numberplan", set()),
])
def test_the_protocol_cores_import_nothing_above_them(core, allowed):
    above = {target: mods for target, mods in EDGES.get(core, {}).items() if target not in allowed}
    assert above == {}


def test_no_two_packages_depend_on_each_other_in_a_circle():
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(EDGES.get(node, {})):
            if nxt in on_path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                on_path.add(nxt)
                visit(nxt, path + [nxt], on_path, done)
                on_path.discard(nxt)
        done.add(node)

    done: set[str] = set()
    for start in sorted(EDGES):
        if start not in done:
            visit(start, [start], {start}, done)
    described = [" -> ".join(c) + "   via " + "; ".join(sorted(EDGES[c[-2]][c[-1]])[:3]) for c in cycles]
    assert described == []


def test_the_checker_sees_a_cycle_and_a_banned_import(tmp_path, monkeypatch):
    """The rules above can fail: a board module importing the PBX, and two packages importing
    each other, are both found."""
    fake = tmp_path / "board"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "bad.py").write_text("from firmware.pbx.b2bua import Call\n")
    fw = tmp_path / "firmware"
    (fw / "pbx").mkdir(parents=True)
    (fw / "__init__.py").write_text("")
    (fw / "pbx" / "__init__.py").write_text("")
    (fw / "pbx" / "b2bua.py").write_text("import board.bad\n")
    (tmp_path / "webui").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    edges = graph()
    assert edges["board"]["firmware.pbx"] == {"board.bad -> firmware.pbx.b2bua"}
    assert edges["firmware.pbx"]["board"] == {"firmware.pbx.b2bua -> board.bad"}


def test_inside_the_pbx_only_the_composition_root_knows_the_front_desk():
    """Legs, applications and features are given narrow interfaces (firmware/pbx/services.py and
    their own modules), not Pbx: no module of the package imports pbx.py, even for types, and its
    modules import each other in no circle."""
    modules = {module_name(p): p for p in (ROOT / "firmware" / "pbx").glob("*.py")}
    importers = sorted(m for m, p in modules.items() if "firmware.pbx.pbx" in imports_of(p) and m != "firmware.pbx.pbx")
    assert importers == []
    edges = {m: {t for t in imports_of(p) if t in modules and t != m} for m, p in modules.items()}

    def circle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, ())):
                if nxt == start:
                    return path + [nxt]
                if nxt not in path:
                    stack.append((nxt, path + [nxt]))
        return None

    assert [c for c in map(circle_from, sorted(modules)) if c] == []
