"""The pure layers import no I/O: no asyncio, websockets, aiohttp, psycopg, logging, os or socket;
and nothing in `scripts/` imports `tests` (the package ships without them).

Checked on the source with `ast`, including imports inside functions, and transitively through
the project modules they import (which must be pure layers themselves).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BANNED = frozenset(
    {"asyncio", "websockets", "aiohttp", "psycopg", "psycopg_pool", "logging", "os", "socket"}
    | {"importlib"}
)
PURE_MODULES = frozenset(
    {"scripts.models", "scripts.clock", "scripts.deribit.protocol", "scripts.deribit.channels"}
    | {"scripts.backups.names", "scripts.backups.retention"}
    | {f"scripts.collectors.realtime.trade_{m}" for m in ("windows", "watch", "coverage")}
    | {"scripts.collectors.realtime.trade_checkpoint"}
    | {f"scripts.normalize.{p.stem}" for p in (ROOT / "scripts" / "normalize").glob("*.py")}
)


def pure_files() -> list[Path]:
    files = [
        ROOT / "scripts" / "models.py",
        ROOT / "scripts" / "clock.py",
        ROOT / "scripts" / "deribit" / "protocol.py",
        ROOT / "scripts" / "deribit" / "channels.py",
        ROOT / "scripts" / "backups" / "names.py",
        ROOT / "scripts" / "backups" / "retention.py",
        *(
            ROOT / "scripts" / "collectors" / "realtime" / f"trade_{m}.py"
            for m in ("windows", "watch", "coverage", "checkpoint")
        ),
        *sorted((ROOT / "scripts" / "normalize").glob("*.py")),
    ]
    return [f for f in files if f.name != "__init__.py" or f.read_text().strip()]


def imported_modules(source: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError("relative imports are not used in this project")
            module = node.module or ""
            found.add(module)
            # `from scripts import logs` imports the module scripts.logs
            found.update(f"{module}.{alias.name}" for alias in node.names if module == "scripts")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.add("__import__")
    return found


def violations(source: str) -> list[str]:
    bad = []
    for module in imported_modules(source):
        top = module.split(".")[0]
        impure_project_module = top == "scripts" and module not in PURE_MODULES | {"scripts"}
        if top in BANNED or module == "__import__" or impure_project_module:
            bad.append(module)
    return sorted(bad)


def test_the_checker_catches_io_imports() -> None:
    src = (
        "import os\nfrom asyncio import sleep\ndef f():\n    import logging\n"
        "from scripts import logs\nfrom scripts.storage.tables import X\n"
    )
    assert violations(src) == ["asyncio", "logging", "os", "scripts.logs", "scripts.storage.tables"]
    assert violations("import orjson\nfrom scripts.models import QuoteRow\n") == []


@pytest.mark.parametrize("path", pure_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_layer_imports_no_io(path: Path) -> None:
    assert violations(path.read_text()) == [], f"{path.relative_to(ROOT)} imports I/O"


def test_all_pure_files_are_checked() -> None:
    names = {str(p.relative_to(ROOT)) for p in pure_files()}
    assert {
        "scripts/models.py",
        "scripts/deribit/protocol.py",
        "scripts/deribit/channels.py",
    } <= names
    assert {
        "scripts/normalize/common.py",
        "scripts/normalize/trades.py",
        "scripts/normalize/books.py",
    } <= names


def package_files() -> list[Path]:
    return sorted((ROOT / "scripts").rglob("*.py"))


def imports_tests(source: str) -> list[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        found.update(n for n in names if n.split(".")[0] == "tests")
    return sorted(found)


def test_the_checker_catches_imports_of_tests() -> None:
    src = "def f():\n    from tests.support.pgcluster import PgCluster\nimport tests.fake_deribit\n"
    assert imports_tests(src) == ["tests.fake_deribit", "tests.support.pgcluster"]
    assert imports_tests("from scripts.tests_like import x\nimport testsuite\n") == []


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_package_module_imports_no_tests(path: Path) -> None:
    assert imports_tests(path.read_text()) == [], f"{path.relative_to(ROOT)} imports tests"
