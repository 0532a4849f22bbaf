"""The official test vectors, kept in this folder (``SOURCES.md`` says where each came from).

Every test reads them from here only, so a clone of the repository is all the tests need.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson

VECTORS_DIR = Path(__file__).resolve().parent


def load_json(name: str) -> Any:
    """The parsed JSON file ``name`` of this folder."""
    return orjson.loads((VECTORS_DIR / name).read_bytes())


def load_csv(name: str) -> list[dict[str, str]]:
    """The rows of the CSV file ``name`` of this folder, keyed by the header."""
    with (VECTORS_DIR / name).open(newline="") as handle:
        return list(csv.DictReader(handle))
