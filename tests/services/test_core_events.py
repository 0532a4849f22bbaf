"""The OCPP event sink when the database refuses a write (a full disk).

A disconnect has no charger left to answer: it is logged and still delivered to subscribers, and
the sink never raises into the connection that is closing. An event that came in a charger's
message raises, so the message is answered with an error and sent again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from strom_core.errors import StorageError
from strom_core.ports import ChargerOffline, ChargerOnline, OcppEvent
from strom_services.core_events import CoreEventSink
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database

AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


class FullDisk(ChargerStore):
    """A charger store whose writes fail as they do when the disk is full."""

    async def set_online(self, charger_id: str, online: bool, at: datetime) -> None:
        raise StorageError("database write failed: disk I/O error")


async def test_a_disconnect_that_cannot_be_recorded_is_logged_and_still_delivered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = create_async_engine("sqlite+aiosqlite:///:memory:")
    sink = CoreEventSink(FullDisk(Database(engine)))
    delivered: list[OcppEvent] = []

    async def subscriber(event: OcppEvent) -> None:
        delivered.append(event)

    sink.subscribe(subscriber)
    offline = ChargerOffline("cp-1", AT, "disconnected")
    with caplog.at_level(logging.WARNING):
        await sink.publish(offline)
    assert delivered == [offline]
    assert "cp-1: its disconnect was not recorded: database write failed" in caplog.text

    with pytest.raises(StorageError):
        await sink.publish(ChargerOnline("cp-1", AT))
    assert delivered == [offline]
    await engine.dispose()
