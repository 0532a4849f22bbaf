"""Fixtures shared by every test tier.

* ``fail_on_swallowed_errors`` (autouse): a test fails when anything logged at ERROR or above
  while it ran, unless the test declares it expects that with ``expect_errors``. An error that
  is logged and swallowed is still a bug.
* ``ocpp_version``: the OCPP version a test's simulated charger speaks, ``"1.6"`` unless the
  test parametrises it (``tests.e2e.conftest.BOTH_VERSIONS``).
* ``peer_missing(reason)``: a test that needs an independent program (LNbits, nostr-tools,
  Chromium) skips with the reason on a laptop without it; with ``STROM_REQUIRE_PEERS=1`` (set by
  ``.ci/run``) the same call fails instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from tests.fuzz.counts import CASES
from tests.peers.lnbits import LNbitsPeer, PeerUnavailable


@pytest.fixture(scope="session")
def lnbits_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LNbitsPeer]:
    """A real LNbits with FakeWallet on 127.0.0.1 and two wallets (Strom's, a driver's).

    Started once per test run and shared by the lightning contract suite and the end-to-end
    tests; installed into .peers/ on first use.
    """
    try:
        peer = LNbitsPeer.start(tmp_path_factory.mktemp("lnbits"))
    except PeerUnavailable as exc:
        peer_missing(f"LNbits is not available: {exc}")
        raise  # peer_missing skips or fails; never reached
    try:
        yield peer
    finally:
        peer.stop()


def peer_missing(reason: str) -> None:
    """Skip (or, under STROM_REQUIRE_PEERS=1, fail) a test whose peer is not available."""
    if os.environ.get("STROM_REQUIRE_PEERS") == "1":
        pytest.fail(f"required peer missing: {reason}")
    pytest.skip(reason)


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def ocpp_version() -> str:
    """The OCPP version of the test's simulated charger: 1.6, unless the test parametrises it."""
    return "1.6"


@pytest.fixture
def expect_errors() -> list[logging.LogRecord]:
    """Declare that this test expects errors to be logged; returns the collected records."""
    return []


@pytest.fixture(autouse=True)
def fail_on_swallowed_errors(request: pytest.FixtureRequest) -> Iterator[None]:
    expected: list[logging.LogRecord] | None = None
    if "expect_errors" in request.fixturenames:
        expected = request.getfixturevalue("expect_errors")
    collector = _ErrorCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield
    finally:
        root.removeHandler(collector)
    if expected is not None:
        expected.extend(collector.records)
        return
    if collector.records:
        lines = "\n".join(f"{r.name}: {r.getMessage()}" for r in collector.records[:10])
        pytest.fail(f"errors were logged during the test:\n{lines}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many cases each fuzz target ran (``tests/fuzz`` and the live OCPP frames)."""
    if not CASES:
        return
    terminalreporter.section("fuzz cases run")
    for target, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{target:40s} {count:8,}")
    terminalreporter.write_line(f"{'total':40s} {sum(CASES.values()):8,}")
