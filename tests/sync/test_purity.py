"""sync/ is standard library only and does no I/O: checked on the source, not on trust."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SYNC = Path(__file__).resolve().parents[2] / "sync"
FORBIDDEN_CALLS = {"open", "input", "print", "exec", "eval", "__import__"}
FORBIDDEN_MODULES = {
    "os",
    "io",
    "socket",
    "sqlite3",
    "subprocess",
    "pathlib",
    "shutil",
    "urllib",
    "http",
    "requests",
    "httpx",
    "threading",
    "asyncio",
    "random",
}


def _modules():
    return sorted(SYNC.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_imports_only_stdlib_and_itself(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module.split(".")[0]]
        for name in names:
            assert name in sys.stdlib_module_names, f"{path.name} imports {name}"
            assert name not in FORBIDDEN_MODULES, f"{path.name} imports {name} (I/O)"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_calls_no_io_builtins(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path.name} calls {node.func.id}()"


def test_one_way_imports_between_packages():
    root = SYNC.parent
    rules = {
        "sync": {"server", "client_sdk", "fixtures", "linli"},
        "client_sdk": {"server", "linli"},
        "server": {"client_sdk", "linli"},
        "fixtures": {"server", "client_sdk", "linli"},
    }
    for package, banned in rules.items():
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                mods = []
                if isinstance(node, ast.Import):
                    mods = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    mods = [node.module]
                for mod in mods:
                    assert mod.split(".")[0] not in banned, f"{path} imports {mod}"
