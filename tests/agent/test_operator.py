"""Operator commands by DM: each one works for an admin npub and is audited; nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import CardConfig
from strom_core.ports import ChargerOnline, CommandStatus, ConnectorStatusChanged
from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.dm import nip04_message, wrap_message
from strom_nostr.event import Event
from strom_services.tariffs import TariffBook
from strom_storage.schema import audit_log, connectors
from strom_storage.tariffs import TariffRepository
from tests.agent.conftest import CHARGER_ID, Person, World
from tests.agent.fakes import FakeBoot, FakeChargerInfo, FakeFirmware, FakeReservations


def _dm(world: World, person: Person, text: str, scheme: str) -> Event:
    now = int(world.clock.unix())
    if scheme == "nip17":
        return wrap_message(person.secret, world.charger_pk, text, now=now)
    return nip04_message(person.secret, world.charger_pk, text, created_at=now)


async def _ask(world: World, person: Person, text: str, scheme: str = "nip04") -> str:
    event = _dm(world, person, text, scheme)
    await person.publish(event)
    assert await world.outcome(event.id) == "answered"
    answer, used = await person.next_dm()
    assert used == scheme
    return answer


async def _audit(world: World) -> list[Any]:
    async with world.db.reader() as conn:
        return list(await conn.execute(select(audit_log).order_by(audit_log.c.id)))


async def _enabled(world: World, connector_id: int) -> bool:
    async with world.db.reader() as conn:
        value = await conn.scalar(
            select(connectors.c.enabled).where(
                connectors.c.charger_id == CHARGER_ID, connectors.c.connector_id == connector_id
            )
        )
    return bool(value)


COMMANDS = [
    ("help", "price <n> sat/kWh - set the energy price", None),
    ("status", "Farm shop charger: OFFLINE, 250 sat/kWh", None),
    ("sessions", "No open sessions.", None),
    ("unlock 2", "Unlock of connector 2: Accepted.", ("unlock", CHARGER_ID, "2")),
    ("reset soft", "Soft reset of Farm shop charger: Accepted.", ("reset", CHARGER_ID, "soft")),
    ("reset hard", "Hard reset of Farm shop charger: Accepted.", ("reset", CHARGER_ID, "hard")),
]


@pytest.mark.parametrize(("command", "expected", "call"), COMMANDS)
async def test_admin_commands(
    world: World, command: str, expected: str, call: tuple[str, ...] | None
) -> None:
    answer = await _ask(world, world.admin, command, scheme="nip17")
    assert expected in answer
    assert world.commands.calls == ([call] if call else [])
    [entry] = await _audit(world)
    assert entry.actor == world.admin.npub
    assert entry.action == command.split()[0]
    assert entry.detail["answer"] == answer[:500]


async def test_admin_disables_and_enables_a_connector(world: World) -> None:
    answer = await _ask(world, world.admin, "disable 1")
    assert answer == "Connector 1 disabled for new sessions; the charger answered Accepted."
    assert world.commands.calls == [("change_availability", CHARGER_ID, "1", "False")]
    assert not await _enabled(world, 1)
    world.commands.answer = CommandStatus.OFFLINE
    answer = await _ask(world, world.admin, "enable 1")
    assert answer.endswith("the charger answered Offline.")
    assert await _enabled(world, 1)
    assert [(e.action, e.target) for e in await _audit(world)] == [
        ("disable", "cp-1/1"),
        ("enable", "cp-1/1"),
    ]
    answer = await _ask(world, world.admin, "disable 7")
    assert answer == "Farm shop charger has no connector 7."


async def test_a_disabled_connector_shows_unavailable(world: World) -> None:
    await world.runtime.on_ocpp_event(_online())
    await world.runtime.on_ocpp_event(_status(1, "Available"))
    await world.next_status()
    await _ask(world, world.admin, "disable 1")
    await world.next_status()
    status = parse_status(await world.latest(30522))
    assert {c.id: c.status for c in status.connectors}[1] is ConnectorStatus.UNAVAILABLE


async def test_admin_sets_the_price(world: World) -> None:
    answer = await _ask(world, world.admin, "price 300 sat/kWh")
    assert answer.startswith("Energy price of Farm shop charger set to 300 sat/kWh")
    await world.next_status()
    status = parse_status(await world.latest(30522))
    assert status.prices.energy_msat_per_kwh == 300_000
    tariff = world.runtime.tariff_for(world.config.profile(CHARGER_ID))
    assert tariff.energy_msat_per_kwh == 300_000
    [entry] = await _audit(world)
    assert entry.detail["msat_per_kwh"] == 300_000
    # The change is stored: a Strom started again over the same database charges it too.
    again = TariffBook(TariffRepository(world.db), SYSTEM_CLOCK)
    await again.load()
    assert again.in_force(world.config.profile(CHARGER_ID)).energy_msat_per_kwh == 300_000


async def test_admin_asks_about_a_session_and_lists_sessions(world: World) -> None:
    opened = await world.charging_session(world.driver)
    answer = await _ask(world, world.admin, f"refund {opened.session_id}")
    assert answer.startswith(f"{opened.session_id} connector 1 charging")
    assert "refundable 20,000 sat" in answer
    assert "goes to the payer only" in answer
    answer = await _ask(world, world.admin, "sessions")
    assert answer.startswith(f"{opened.session_id} connector 1 charging")
    answer = await _ask(world, world.admin, "refund nosuchsession")
    assert answer == "No session nosuchsession on this charger."
    assert len(await _audit(world)) == 3


async def test_admin_starts_a_firmware_update_and_reads_its_status(world: World) -> None:
    """``firmware <url>`` sends UpdateFirmware through the firmware port now and reports the
    charger's answer; ``firmware`` alone shows what the charger last reported. Both audited."""
    firmware = FakeFirmware()
    info = FakeChargerInfo(FakeBoot(firmware_version="1.2.3"))
    services = world.runtime.services
    services.firmware = firmware
    services.charger_info = lambda charger_id: info if charger_id == CHARGER_ID else None
    url = "https://firmware.example/Charger-1.3.0.bin?token=AbC"
    answer = await _ask(world, world.admin, f"firmware {url}")
    assert answer == (
        f"Firmware update of Farm shop charger from {url}: the charger answered Accepted. "
        "Send firmware for its progress."
    )
    [(name, charger, location, retrieve_at)] = firmware.calls
    assert (name, charger, location) == ("update_firmware", CHARGER_ID, url)
    assert abs(datetime.fromisoformat(retrieve_at).timestamp() - world.clock.unix()) < 60
    info.notifications["FirmwareStatusNotification"] = "Downloading"
    answer = await _ask(world, world.admin, "firmware", scheme="nip17")
    assert answer == (
        "Farm shop charger: firmware 1.2.3\n"
        "last firmware status: Downloading\n"
        "last diagnostics status: none reported\n"
        "last log upload status: none reported"
    )
    firmware.answer = CommandStatus.REJECTED
    answer = await _ask(world, world.admin, "firmware ftp://10.0.0.5/fw.bin")
    assert "the charger answered Rejected (no)." in answer
    entries = await _audit(world)
    assert [(e.action, e.target) for e in entries] == [("firmware", CHARGER_ID)] * 3
    assert entries[0].detail["location"] == url
    assert entries[0].detail["charger_answer"] == "Accepted"
    assert entries[2].detail["charger_answer"] == "Rejected"
    answer = await _ask(world, world.admin, "firmware file:///etc/passwd")
    assert answer.startswith("usage: firmware <url>")
    assert len(firmware.calls) == 2
    assert len(await _audit(world)) == 3


async def test_firmware_of_a_charger_that_never_connected(world: World) -> None:
    world.runtime.services.charger_info = lambda charger_id: None
    answer = await _ask(world, world.admin, "firmware")
    assert answer == "Farm shop charger has not connected yet."


async def _reserved(world: World) -> dict[int, tuple[ConnectorStatus, int | None]]:
    status = parse_status(await world.latest(30522))
    return {c.id: (c.status, c.reserved_until) for c in status.connectors}


async def test_admin_reserves_a_connector_for_a_card_and_cancels_it(world: World) -> None:
    """``reserve <connector> <minutes> <card>`` sends ReserveNow for the card's idTag (as the
    profile writes it) with an id from the persisted counter; the status shows the connector
    reserved with its end; ``reserve cancel`` sends CancelReservation with that id. Audited."""
    reservations = FakeReservations()
    world.runtime.services.reservations = reservations
    card = CardConfig(id_tag="Fleet-0042", label="van")
    world.runtime.agent(CHARGER_ID).profile = world.config.profile(CHARGER_ID).model_copy(
        update={"cards": (card,)}
    )
    await world.runtime.on_ocpp_event(_online())
    await world.runtime.on_ocpp_event(_status(1, "Available"))
    await world.next_status()
    answer = await _ask(world, world.admin, "reserve 1 30 fleet-0042")
    [call] = reservations.calls
    name, charger, connector, reservation_id, expires_at, id_tag = call
    assert (name, charger, connector, id_tag) == ("reserve_now", CHARGER_ID, "1", "Fleet-0042")
    until = datetime.fromisoformat(expires_at)
    assert abs(until.timestamp() - (world.clock.unix() + 1800)) < 60
    assert answer == (
        f"Reservation {reservation_id} of connector 1 for card Fleet-0042 until "
        f"{until:%H:%M} UTC: the charger answered Accepted."
    )
    await world.next_status()
    assert (await _reserved(world))[1] == (ConnectorStatus.RESERVED, int(until.timestamp()))
    answer = await _ask(world, world.admin, "status")
    assert f"connector 1: Available, reserved for the operator until {until:%H:%M} UTC" in answer
    # A second reservation takes the next id: ids are never reused.
    answer = await _ask(world, world.admin, "reserve 2 15")
    second = reservations.calls[1]
    assert int(second[3]) == int(reservation_id) + 1
    assert second[5] == f"operator-{second[3]}"  # no card: a hold for nobody's card
    assert "for no card (a hold)" in answer
    answer = await _ask(world, world.admin, "reserve cancel 1")
    assert reservations.calls[2] == ("cancel_reservation", CHARGER_ID, reservation_id)
    assert answer == (
        f"Cancel of reservation {reservation_id} on connector 1: the charger answered Accepted."
    )
    await world.next_status()
    status = await _reserved(world)
    if status[1][0] is ConnectorStatus.RESERVED:  # the second reservation came out first
        await world.next_status()
        status = await _reserved(world)
    assert status[1] == (ConnectorStatus.AVAILABLE, None)
    entries = await _audit(world)
    assert [(e.action, e.target) for e in entries] == [
        ("reserve", f"{CHARGER_ID}/1"),
        ("status", CHARGER_ID),
        ("reserve", f"{CHARGER_ID}/2"),
        ("reserve_cancel", f"{CHARGER_ID}/1"),
    ]
    assert entries[0].detail["reservation_id"] == int(reservation_id)
    assert entries[0].detail["id_tag"] == "Fleet-0042"
    assert entries[0].detail["charger_answer"] == "Accepted"


async def test_reserve_refuses_unknown_cards_and_connectors_and_reports_refusals(
    world: World,
) -> None:
    reservations = FakeReservations(answer=CommandStatus.REJECTED, detail="Occupied")
    world.runtime.services.reservations = reservations
    answer = await _ask(world, world.admin, "reserve 1 30 NOSUCHCARD")
    assert answer.startswith("Farm shop charger has no card NOSUCHCARD")
    answer = await _ask(world, world.admin, "reserve 7 30")
    assert answer == "Farm shop charger has no connector 7."
    assert reservations.calls == []
    answer = await _ask(world, world.admin, "reserve 1 30")
    assert answer.endswith("the charger answered Rejected (Occupied).")
    assert not world.charger.reservations  # nothing held: the status is not changed
    answer = await _ask(world, world.admin, "reserve cancel 1")  # the rejected one is not his
    assert answer == "No reservation of yours on connector 1 is running; nothing sent."
    assert [call[0] for call in reservations.calls] == ["reserve_now"]
    assert [e.action for e in await _audit(world)] == ["reserve"] * 3 + ["reserve_cancel"]


async def test_reserve_cancel_after_a_restart_finds_the_reservation_in_the_audit_log(
    world: World,
) -> None:
    reservations = FakeReservations()
    world.runtime.services.reservations = reservations
    await _ask(world, world.admin, "reserve 2 60")
    reservation_id = reservations.calls[0][3]
    world.charger.note_reservation(2, f"operator:{reservation_id}", None)  # what a restart forgets
    answer = await _ask(world, world.admin, "reserve cancel 2")
    assert reservations.calls[1] == ("cancel_reservation", CHARGER_ID, reservation_id)
    assert "the charger answered Accepted" in answer


async def test_the_operator_does_not_cancel_a_paid_reservation(world: World) -> None:
    reservations = FakeReservations()
    world.runtime.services.reservations = reservations
    until = int(world.clock.unix()) + 600
    world.charger.note_reservation(1, "paid-session", until)  # handled before the DM
    answer = await _ask(world, world.admin, "reserve cancel 1")
    assert answer.startswith("Connector 1 is held by a paid reservation until")
    assert "its payer cancels it" in answer
    answer = await _ask(world, world.admin, "reserve 1 30")
    assert answer.startswith("Connector 1 is held by a paid reservation")
    assert reservations.calls == []


@pytest.mark.parametrize(
    "command",
    [
        "reserve cancel 1",
        "firmware",
        "firmware https://firmware.example/x.bin",
        "sessions",
        "disable 1",
        "enable 1",
        "price 1 sat/kWh",
        "unlock 1",
        "reset hard",
        "refund x1",
    ],
)
async def test_everyone_else_is_refused_and_nothing_changes(world: World, command: str) -> None:
    answer = await _ask(world, world.stranger, command)
    assert answer.startswith(("sorry,", "usage: refund", "usage: reserve"))
    assert world.commands.calls == []
    assert await _audit(world) == []
    assert await _enabled(world, 1)
    assert world.runtime.tariffs.changed_by(world.config.profile(CHARGER_ID)) is None


def _online() -> ChargerOnline:
    return ChargerOnline(CHARGER_ID, datetime.now(UTC))


def _status(connector_id: int, status: str) -> ConnectorStatusChanged:
    return ConnectorStatusChanged(CHARGER_ID, connector_id, status, "NoError", datetime.now(UTC))
