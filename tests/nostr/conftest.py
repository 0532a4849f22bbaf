"""Fixtures of the nostr tests: the official test vectors, keys, and the nostr-tools peer."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _vectors_dir() -> Path | None:
    configured = os.environ.get("STROM_VECTORS_DIR")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "vectors")
    for candidate in candidates:
        if (candidate / "nip44.vectors.json").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The folder of the official vectors (``shared/vectors`` beside the repository)."""
    found = _vectors_dir()
    if found is None:
        message = "official test vectors not found (set STROM_VECTORS_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def nip44_vectors(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((vectors_dir / "nip44.vectors.json").read_bytes())
    return data["v2"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def nip_examples(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((vectors_dir / "nostr-nip-examples.json").read_bytes())
    return data


@pytest.fixture(scope="session")
def bip340_rows(vectors_dir: Path) -> list[dict[str, str]]:
    with (vectors_dir / "bip340-test-vectors.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def bolt11_vectors(vectors_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((vectors_dir / "bolt11-vectors.json").read_bytes())
    return data
