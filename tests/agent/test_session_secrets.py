"""One database, no plain secrets: a zapper's links survive a crash right after the commit.

A session's secret is derived from the server key (``keys/_server.key``), so nothing has to be
written for it when a session opens, and the agents recompute it when a DM needs a link.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from strom_core.session_events import RemoteStartAccepted, TransactionStarted, TransactionStopped
from strom_core.session_secrets import SessionSecrets
from strom_services.refunds import RefundService
from strom_storage.db import Database
from strom_storage.schema import sessions
from tests.agent.conftest import Person, World, build_world, server_session_key
from tests.agent.test_dms import _at, _lnurl_target


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


async def _drain_dms(world: World, person: Person, count: int) -> list[str]:
    await world.runner.drain()
    return [(await person.next_dm())[0] for _ in range(count)]


async def test_killed_right_after_a_zap_session_commits_the_zapper_still_gets_the_started_dm_and_a_working_refund_link(  # noqa: E501
    tmp_path: Path, database: Database, relay_url: str
) -> None:
    first: AsyncGenerator[World] = build_world(tmp_path, database, relay_url)
    before = await anext(first)
    opened, _ = await before.open_zap_session(before.driver)  # committed: the crash point
    zapper_secret = before.driver.secret
    await first.aclose()  # everything in memory is gone: payments, agents, their caches

    second = build_world(tmp_path, database, relay_url)
    after = await anext(second)
    zapper = Person(zapper_secret, relay_url)
    await zapper.connect()
    try:
        # The wallet had its invoice; it is paid while Strom is back up.
        assert await after.payments.settle(opened.invoice.payment_hash, 20_000_000)
        await after.sessions.apply(opened.session_id, RemoteStartAccepted())
        await after.sessions.apply(opened.session_id, TransactionStarted(1, 1000, _at(after)))
        paid, started = await _drain_dms(after, zapper, 2)
        assert paid.startswith("Payment of 20,000 sat received.")
        assert started.startswith("Charging started on connector 1")
        await after.sessions.apply(opened.session_id, TransactionStopped(1000 + 4000, _at(after)))
        [stopped] = await _drain_dms(after, zapper, 1)
        assert stopped.startswith("Charging stopped")
        link = urlsplit(_lnurl_target(stopped))
        assert link.path == f"/lnurlw/{opened.session_id}"
        [secret] = parse_qs(link.query)["secret"]
        refunds = RefundService(
            after.sessions, after.backend, after.config.sessions, network="regtest"
        )
        offer = await refunds.request(opened.session_id, secret)  # the link works
        assert offer.amount_msat == 19_000_000
    finally:
        await zapper.close()
        await second.aclose()


async def test_a_session_secret_is_derived_from_the_server_key_and_only_its_hash_is_stored(
    world: World,
) -> None:
    opened, _ = await world.open_zap_session(world.driver)
    key = server_session_key(world.config.storage.data_dir)
    assert opened.secret == SessionSecrets(key).secret(opened.session_id)
    assert len(opened.secret) == 32
    assert SessionSecrets(bytes(32)).secret(opened.session_id) != opened.secret
    async with world.db.reader() as conn:
        stored = await conn.scalar(
            select(sessions.c.secret_hash).where(sessions.c.id == opened.session_id)
        )
    assert stored != opened.secret
    assert len(str(stored)) == 64
    assert (world.config.storage.data_dir / "keys" / "_server.key").stat().st_mode & 0o077 == 0


async def test_no_secret_is_on_disk_in_plain_text_and_the_agents_keep_no_file_of_their_own(
    world: World, tmp_path: Path
) -> None:
    opened = await world.charging_session(world.driver)
    await world.sessions.apply(opened.session_id, TransactionStopped(1000 + 4000, _at(world)))
    texts = await _drain_dms(world, world.driver, 3)  # paid, started, stopped + refund link
    assert opened.secret in texts[0]
    assert opened.secret in _lnurl_target(texts[2])
    needle = opened.secret.encode()
    files = _files(tmp_path)
    assert any(path.name.startswith("strom.sqlite3") for path in files)
    assert [path for path in files if needle in path.read_bytes()] == []
    assert not (world.config.storage.data_dir / "agent").exists()
