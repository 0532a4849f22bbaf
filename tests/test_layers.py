"""The layers are enforced by import-linter in the lint step (`scripts/test`), with the
contracts in pyproject.toml. This runs it on the code as it is (every contract kept) and on a
copy with one forbidden import added to each kind of contract (each one broken, by name)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = [path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name != "tests"]


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy's packages shadow the installed (editable) ones.
    env = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo", "--config", str(project / "pyproject.toml")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("layers")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("static"))
    return project


def test_the_code_keeps_every_contract() -> None:
    run = _lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("strom_core/units.py", "import asyncio", "The pure layers"),
        ("strom_nostr/event.py", "import httpx", "The pure layers"),
        ("cockpit/answers_probe.py", "import agent.runtime", "Layers:"),
        ("strom_services/probe.py", "from strom import app", "Layers:"),
        ("strom_services/payments.py", "import sqlalchemy", "The services write no SQL"),
        ("lnurl_server/probe.py", "import sqlalchemy", "SQL is written in strom_storage only"),
        ("agent/operator.py", "from agent import agent as _whole", "in one direction only"),
    ],
)
def test_one_forbidden_import_breaks_its_contract(
    copy: Path, module: str, line: str, contract: str
) -> None:
    target = copy / module
    before = target.read_text() if target.exists() else None
    target.write_text((before or "") + f"\n{line}  # noqa\n")
    try:
        run = _lint(copy)
    finally:
        if before is None:
            target.unlink()
        else:
            target.write_text(before)
    assert run.returncode != 0, run.stdout
    assert [name for name, verdict in _verdicts(run.stdout) if verdict == "BROKEN"] == [
        name for name, _ in _verdicts(run.stdout) if contract in name
    ], run.stdout


def _verdicts(report: str) -> list[tuple[str, str]]:
    """(contract name, KEPT or BROKEN) from lint-imports' summary (names wrap over lines)."""
    summary = report.split("dependencies.", 1)[-1].split("Contracts:", 1)[0]
    summary = re.sub(r"\([^)]*\)|-{3,}", " ", summary)  # "(1 ignored import)", rules
    return [
        (name.strip(), verdict)
        for name, verdict in re.findall(r"(.+?) (KEPT|BROKEN)", " ".join(summary.split()))
    ]


PER_STATEMENT = re.compile(r"\.(transaction|reader)\(")


def per_statement_calls(root: Path) -> list[str]:
    """Calls of the per-statement ``Database.transaction()`` / ``reader()`` in Strom's packages
    (outside strom_storage/db.py, which defines them and migrates with them)."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.relative_to(root).as_posix() == "strom_storage/db.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if PER_STATEMENT.search(line.split("#", 1)[0]):
                    found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


def test_every_transaction_of_strom_is_one_hop(tmp_path: Path) -> None:
    """One transaction = one hop (Database.write/read): no package of Strom opens a
    per-statement transaction; a copy that does is caught."""
    assert per_statement_calls(ROOT) == []
    shutil.copytree(ROOT / "strom_services", tmp_path / "strom_services")
    (tmp_path / "strom_services" / "sneaky.py").write_text(
        "async def f(db):\n    async with db.transaction() as conn:\n        return conn\n"
    )
    assert [hit.split(":")[0] for hit in per_statement_calls(tmp_path)] == [
        "strom_services/sneaky.py"
    ]
