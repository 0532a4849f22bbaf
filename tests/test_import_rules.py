"""DESIGN.md's import rules, checked by scanning the source (no import-time side effects).

* ``strom`` (the core) imports none of ``agent``, ``lnurl_server``, ``ocpp_server`` — except
  the composition root (``strom/app.py``), the CLI (``strom/cli.py``) and ``strom/demo.py``.
* ``ocpp_server`` never imports ``agent`` or ``lnurl_server``.
* ``cockpit`` (the operator's API and UI) sits on top: nothing but the composition root and
  the CLI imports it.
* The pure modules import no asyncio, aiohttp, websockets, httpx or database driver.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IO_LIBS = {"asyncio", "aiohttp", "websockets", "httpx", "sqlalchemy", "aiosqlite", "asyncpg"}
PURE = [
    "strom_core/units.py",
    "strom_core/ids.py",
    "strom_core/tariff.py",
    "strom_core/session.py",
    "strom_core/errors.py",
    "strom_core/ports.py",
]
PURE_PACKAGES = [
    "agent/nostr",
    "ocpp_server/ocppj.py",
    "ocpp_server/peer.py",
    "ocpp_server/v16/schemas.py",
    "strom_web/lnurl.py",
]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(relative: str) -> list[Path]:
    path = ROOT / relative
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.py")) if path.is_dir() else []


@pytest.mark.parametrize(
    ("package", "forbidden", "allowed"),
    [
        (
            "strom",
            {"agent", "lnurl_server", "ocpp_server", "cockpit"},
            {"strom/app.py", "strom/cli.py", "strom/demo.py"},
        ),
        ("ocpp_server", {"agent", "lnurl_server", "cockpit"}, set()),
        ("agent", {"lnurl_server", "cockpit"}, set()),
        ("lnurl_server", {"ocpp_server", "cockpit"}, set()),
    ],
)
def test_packages_import_only_what_the_design_allows(
    package: str, forbidden: set[str], allowed: set[str]
) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imported_roots(path) & forbidden)}"
        for path in python_files(package)
        if str(path.relative_to(ROOT)) not in allowed and imported_roots(path) & forbidden
    ]
    assert offenders == []


def test_the_front_door_uses_only_the_pure_nostr_core_of_agent() -> None:
    # lnurl_server validates zap requests (NIP-57) with agent/nostr's pure functions; the agent
    # runtime (actors, relays, keys) stays out of reach.
    offenders = []
    for path in python_files("lnurl_server"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent"):
                if not node.module.startswith("strom_nostr"):
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [
                    f"{path.relative_to(ROOT)}: {a.name}"
                    for a in node.names
                    if a.name.startswith("agent") and not a.name.startswith("strom_nostr")
                ]
    assert offenders == []


def test_pure_modules_do_no_io() -> None:
    files = [f for name in PURE + PURE_PACKAGES for f in python_files(name)]
    assert len(files) >= len(PURE)
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(imported_roots(path) & IO_LIBS)}"
        for path in files
        if imported_roots(path) & IO_LIBS
    ]
    assert offenders == []


def test_the_scan_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("import asyncio.tasks\nfrom aiohttp import web\nfrom . import x\n")
    assert imported_roots(sample) == {"asyncio", "aiohttp"}
