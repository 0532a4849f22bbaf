"""Fixtures of the nostr tests: the official test vectors, read from ``tests/vectors``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.vectors import load_csv, load_json


@pytest.fixture(scope="session")
def nip44_vectors() -> dict[str, Any]:
    data: dict[str, Any] = load_json("nip44.vectors.json")["v2"]
    return data


@pytest.fixture(scope="session")
def nip_examples() -> dict[str, Any]:
    data: dict[str, Any] = load_json("nostr-nip-examples.json")
    return data


@pytest.fixture(scope="session")
def bip340_rows() -> list[dict[str, str]]:
    return load_csv("bip340-test-vectors.csv")
