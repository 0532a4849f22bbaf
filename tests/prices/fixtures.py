"""The recorded answers of tests/fixtures/prices."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "prices"


def fixture(name: str) -> bytes:
    """The bytes of one recorded answer."""
    return (FIXTURES / name).read_bytes()
