"""The official test vectors in ``tests/vectors`` are the upstream files, byte for byte."""

from __future__ import annotations

import hashlib
import re

from tests.vectors import VECTORS_DIR

ROW = re.compile(r"^\| `(?P<name>[^`]+)` \|.*\| (?P<sha256>[0-9a-f]{64}) \|", re.MULTILINE)


def test_every_vector_file_has_the_checksum_its_sources_record() -> None:
    recorded = {
        m["name"]: m["sha256"] for m in ROW.finditer((VECTORS_DIR / "SOURCES.md").read_text())
    }
    present = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in VECTORS_DIR.iterdir()
        if path.suffix in {".json", ".csv"}
    }

    assert present == recorded
