"""The dependency direction is the design (DESIGN §5): conversations/ is pure.

It imports none of handlers/storage/notifications/bot, no platform SDK or database library, and
does no I/O: no file, network, process or clock access of its own. The edges point inwards:
handlers/ get small protocols (`handlers.ports`: token cache, reply window, send budget), never
the store, so no module of handlers/ imports storage/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_MODULES = {
    # our own edges
    "handlers", "storage", "notifications", "bot",
    # SDKs, databases, schedulers, network
    "telegram", "aiogram", "wechatpy", "sqlmodel", "sqlalchemy", "psycopg", "apscheduler",
    "aiohttp", "httpx", "requests", "urllib", "socket", "sqlite3", "asyncio",
    # files, processes, environment, wall clock
    "os", "pathlib", "shutil", "subprocess", "io", "tempfile", "time", "logging", "sys",
}  # fmt: skip
FORBIDDEN_CALLS = {"open", "eval", "exec", "compile", "input", "print", "__import__"}
FORBIDDEN_ATTRS = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today")}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} calls {func.id}()")
            if isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name | ast.Attribute
            ):
                owner = func.value.id if isinstance(func.value, ast.Name) else func.value.attr
                if (owner, func.attr) in FORBIDDEN_ATTRS:
                    found.append(
                        f"{path.name}:{node.lineno} reads the clock ({owner}.{func.attr})"
                    )
    return found


def test_conversations_is_pure() -> None:
    files = sorted((ROOT / "conversations").glob("**/*.py"))
    assert files, "conversations/ has no modules"
    violations = [v for f in files for v in _violations(f)]
    assert violations == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import storage.store\n", "imports storage.store"),
        ("from telegram import Bot\n", "imports telegram"),
        ("import os\n", "imports os"),
        ("x = open('f')\n", "calls open()"),
        ("import datetime\nx = datetime.datetime.now()\n", "reads the clock (datetime.now)"),
        ("import datetime as dt\nx = dt.date.today()\n", "reads the clock (date.today)"),
    ],
)
def test_the_checker_catches_edge_code(tmp_path: Path, source: str, expected: str) -> None:
    # The architecture test must be able to fail: each kind of violation is seen.
    bad = tmp_path / "bad.py"
    bad.write_text(source, encoding="utf-8")
    assert [v.split(" ", 1)[1] for v in _violations(bad)] == [expected]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


# Adapters are wired by bot/, never the other way round. They get small protocols
# (handlers.ports: token cache, reply window, send budget), never the store: bot.edges
# implements them over storage/.
HANDLERS_NEVER_IMPORT = {"bot", "storage"}


def _forbidden_imports(files: list[Path], forbidden: set[str], root: Path) -> list[str]:
    return [
        f"{f.relative_to(root)}:{line} imports {name}"
        for f in files
        for line, name in _imports(f)
        if name.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("handlers", HANDLERS_NEVER_IMPORT),
        ("storage", {"bot", "handlers", "notifications"}),
        ("notifications", {"bot", "handlers"}),
    ],
)
def test_edges_point_inwards(package: str, forbidden: set[str]) -> None:
    files = sorted((ROOT / package).glob("**/*.py"))
    assert files
    assert _forbidden_imports(files, forbidden, ROOT) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from storage.channels import Token\n", "bad.py:1 imports storage.channels"),
        ("import storage.store\n", "bad.py:1 imports storage.store"),
        ("import storage\n", "bad.py:1 imports storage"),
        ("def late():\n    from storage.store import Store\n", "bad.py:2 imports storage.store"),
        ("from bot.edges import StoreTokenCache\n", "bad.py:1 imports bot.edges"),
    ],
)
def test_the_checker_catches_a_handler_importing_storage(
    tmp_path: Path, source: str, expected: str
) -> None:
    # The edge test must be able to fail: an adapter reaching for the store is seen.
    bad = tmp_path / "bad.py"
    bad.write_text(source, encoding="utf-8")
    assert _forbidden_imports([bad], HANDLERS_NEVER_IMPORT, tmp_path) == [expected]


def test_channels_do_not_import_each_other() -> None:
    # One channel never reaches into another: they share handlers.base, .config, .ports...
    channels = {"telegram", "wechat", "wecom", "console"}
    violations = []
    for path in sorted((ROOT / "handlers").glob("**/*.py")):
        own = path.relative_to(ROOT / "handlers").parts[0].removesuffix(".py")
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] == "handlers" and len(parts) > 1:
                other = parts[1]
                if other in channels and other != own:
                    violations.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert violations == []


def _runtime_imports(package: Path) -> dict[str, set[str]]:
    """Per module of a package, the modules of the package it imports when it runs: at the top
    or inside a function, `from pkg import mod` included; imports under `if TYPE_CHECKING:`
    never run and are left out."""
    modules = {p.stem for p in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        type_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
            for inner in ast.walk(node)
        }
        found: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                head, _, rest = name.partition(".")
                if head == package.name and rest.split(".")[0] in modules:
                    found.add(rest.split(".")[0])
        graph[path.stem] = found - {path.stem}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of the graph (its modules, the first repeated at the end), or []."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return []
        for other in sorted(graph.get(module, ())):
            if found := visit(other, [*path, module]):
                return found
        done.add(module)
        return []

    for module in sorted(graph):
        if found := visit(module, []):
            return found
    return []


def test_conversations_has_no_import_cycle() -> None:
    # The models import one another one way only; conversations.loader, which imports them all,
    # runs the checks across them (issue 9: campaign -> forms -> answers -> campaign was one).
    assert _cycle(_runtime_imports(ROOT / "conversations")) == []


def test_the_cycle_checker_catches_a_cycle(tmp_path: Path) -> None:
    package = tmp_path / "conversations"
    package.mkdir()
    (package / "campaign.py").write_text("from conversations.forms import Form\n")
    (package / "answers.py").write_text("from conversations.campaign import Fact\n")
    (package / "forms.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from conversations.loader import x\n"
        "def parse():\n    from conversations import answers\n"
    )
    (package / "loader.py").write_text("import conversations.forms\n")
    assert _cycle(_runtime_imports(package)) == ["answers", "campaign", "forms", "answers"]
    (package / "answers.py").write_text("import re\n")
    assert _cycle(_runtime_imports(package)) == []
