"""The nostr core is pure: no event loop, network, database or nostr-sdk imports."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"asyncio", "aiohttp", "websockets", "httpx", "sqlalchemy", "nostr_sdk"}
CORE = Path(__file__).resolve().parents[2] / "strom_nostr"


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            roots |= {
                arg.value.split(".")[0]
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            }
    return roots


def test_the_core_modules_exist() -> None:
    names = {path.stem for path in CORE.glob("*.py")}
    expected = {"event", "keys", "zap_request", "zap_receipt", "discovery", "dm", "commands"}
    assert expected | {"nip44", "nip04"} <= names


def test_no_core_module_imports_io_or_nostr_sdk() -> None:
    offenders = {
        path.name: sorted(_imported_roots(path) & FORBIDDEN)
        for path in sorted(CORE.glob("*.py"))
        if _imported_roots(path) & FORBIDDEN
    }
    assert offenders == {}


def test_the_scan_would_notice(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import asyncio\nfrom nostr_sdk import Keys\nimport importlib\n__import__('httpx')\n"
    )
    assert _imported_roots(bad) & FORBIDDEN == {"asyncio", "nostr_sdk", "httpx"}
