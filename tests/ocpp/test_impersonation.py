"""Nobody takes a charger's place: replacement after authentication, and password floods.

Several source addresses are played from 127.0.0.0/8, which on Linux is all this machine.
"""

from __future__ import annotations

import asyncio
import base64
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_server import ChargerAuth, hash_password
from ocpp_server.backoff import Reservation, SourceBackoff
from strom_core.ports import ChargerOffline, CommandStatus
from tests.ocpp.conftest import PASSWORD, DriverFactory, Harness, HarnessFactory, boot
from tests.ocpp.drivers import HandshakeRefused, PythonDriver, handshake_status

BOOT = {"chargePointVendor": "Test", "chargePointModel": "Driver"}


async def _still_serves(harness: Harness, live: PythonDriver, charger_id: str) -> None:
    """The live connection still gets the charger's commands, and it never went offline."""
    await live.answer("Reset", {"status": "Accepted"})
    assert (await harness.server.commands.reset(charger_id, hard=False)).accepted
    await live.server_call("Reset")
    assert harness.server.online_chargers() == [charger_id]
    assert harness.sink.of_type(ChargerOffline) == []


@pytest.mark.parametrize(
    "password",
    [None, "wrong-password-123456", PASSWORD + "x"],
    ids=["no-password", "wrong-password", "longer-password"],
)
@pytest.mark.parametrize("auto_register", [False, True], ids=["closed", "auto-register"])
async def test_a_connection_that_fails_the_password_never_touches_the_live_one(
    start_harness: HarnessFactory, password: str | None, auto_register: bool
) -> None:
    harness = await start_harness(auto_register=auto_register)
    live = PythonDriver()
    await boot(live, harness)
    intruder = PythonDriver()
    with pytest.raises(HandshakeRefused) as refused:
        await intruder.connect(harness.url, "cp-1", password, source="127.0.0.2")
    assert refused.value.status == 401
    # A configured id is never held for approval, even with auto-registration on.
    assert harness.server.pending_chargers() == []
    await _still_serves(harness, live, "cp-1")
    await live.close()


async def test_a_keyed_password_is_checked_before_a_live_connection_is_replaced(
    harness: Harness,
) -> None:
    made = harness.server.password_key.new_password()
    harness.chargers.add(ChargerAuth("cp-keyed", made.password_hash))
    live = PythonDriver()
    await live.connect(harness.url, "cp-keyed", made.key)
    await live.call("BootNotification", BOOT)
    intruder = PythonDriver()
    with pytest.raises(HandshakeRefused) as refused:
        await intruder.connect(harness.url, "cp-keyed", made.key[::-1], source="127.0.0.2")
    assert refused.value.status == 401
    await _still_serves(harness, live, "cp-keyed")
    # The charger itself, reconnecting with its key, does take over.
    again = PythonDriver()
    await again.connect(harness.url, "cp-keyed", made.key)
    await live.closed()
    await again.close()


async def test_a_connection_without_a_password_does_not_replace_a_live_one_that_answers(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(replace_probe_s=2.0)
    live = PythonDriver()
    await live.connect(harness.url, "cp-open")
    await live.call("BootNotification", BOOT)
    intruder = PythonDriver()
    with pytest.raises(HandshakeRefused) as refused:
        await intruder.connect(harness.url, "cp-open", source="127.0.0.2")
    assert refused.value.status == 409
    await _still_serves(harness, live, "cp-open")
    await live.close()


async def test_a_connection_without_a_password_replaces_a_half_open_one(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(replace_probe_s=0.3)
    gone = PythonDriver()
    await gone.connect(harness.url, "cp-open")
    await gone.call("BootNotification", BOOT)
    gone.go_half_open()  # it moved to another network; its old TCP connection lingers
    back = PythonDriver()
    started = time.monotonic()
    await back.connect(harness.url, "cp-open", source="127.0.0.2")
    assert time.monotonic() - started < 5
    await back.answer("Reset", {"status": "Accepted"})
    assert (await harness.server.commands.reset("cp-open", hard=False)).accepted
    await back.server_call("Reset")
    await back.close()
    await gone.close(force=True)


async def test_a_held_unknown_charger_is_not_taken_over_while_it_answers(
    start_harness: HarnessFactory, new_driver: DriverFactory
) -> None:
    harness = await start_harness(auto_register=True, replace_probe_s=2.0)
    held = await new_driver()
    await held.connect(harness.url, "cp-new", "a-key-the-operator-will-set")
    assert (await held.call("BootNotification", BOOT))["status"] == "Pending"
    intruder = PythonDriver()
    with pytest.raises(HandshakeRefused) as refused:
        await intruder.connect(harness.url, "cp-new", source="127.0.0.2")
    assert refused.value.status == 409
    [pending] = harness.server.pending_chargers()
    assert pending.presented_credentials  # still the first connection's record
    assert "currentTime" in await held.call("Heartbeat", {})


# --- wrong-password floods -----------------------------------------------------------------------


async def _raw_attempt(harness: Harness, charger_id: str, password: str, source: str) -> int:
    """One handshake with a wrong password, written by hand: cheap for the attacker's side."""
    token = base64.b64encode(f"{charger_id}:{password}".encode()).decode()
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", harness.server.port, local_addr=(source, 0)
    )
    try:
        writer.write(
            (
                f"GET /ocpp/{charger_id} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n"
                f"Authorization: Basic {token}\r\n\r\n"
            ).encode()
        )
        status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1]) if status_line else 0


class CountingBackoff(SourceBackoff):
    """The server's back-off, counting the slow checks it allowed."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_checks = 0

    def reserve(self, source: str) -> Reservation:
        reservation = super().reserve(source)
        self.slow_checks += reservation.granted
        return reservation


async def test_a_flood_of_wrong_passwords_does_not_delay_real_chargers_reconnecting(
    start_harness: HarnessFactory,
) -> None:
    backoff = CountingBackoff()
    harness = await start_harness(backoff=backoff)
    # After a restart: 25 chargers with generated keys, 25 with chosen (scrypt) passwords that
    # this process has not checked yet. scrypt at 2**12 here, 2**14 in production.
    keys: dict[str, str] = {}
    for n in range(25):
        made = harness.server.password_key.new_password()
        harness.chargers.add(ChargerAuth(f"keyed-{n}", made.password_hash))
        keys[f"keyed-{n}"] = made.key
        chosen = f"chosen-password-{n:04d}"
        harness.chargers.add(ChargerAuth(f"chosen-{n}", hash_password(chosen, log2_n=12)))
        keys[f"chosen-{n}"] = chosen

    # 1,000 wrong passwords for the scrypt chargers from four addresses, all at once.
    attackers = [f"127.0.0.{n}" for n in range(2, 6)]
    answered: list[int] = []
    under_way = asyncio.Event()

    async def wrong(n: int) -> None:
        answer = await _raw_attempt(
            harness, f"chosen-{n % 25}", "not-it-0123456789", attackers[n % 4]
        )
        answered.append(answer)
        if len(answered) == 100:
            under_way.set()

    flood = asyncio.gather(*(wrong(n) for n in range(1000)))
    await asyncio.wait_for(under_way.wait(), 60)

    async def reconnect(charger_id: str) -> None:
        driver = PythonDriver()
        await driver.connect(harness.url, charger_id, keys[charger_id], source="127.0.0.1")
        assert (await driver.call("BootNotification", BOOT))["status"] == "Accepted"
        await driver.close()

    started = time.monotonic()
    await asyncio.gather(*(reconnect(charger_id) for charger_id in keys))
    admitted_within = time.monotonic() - started
    await flood
    assert set(answered) <= {401, 429}
    # The 25 real scrypt checks, and for each attacking address its free failures and the odd
    # retry after a back-off ended; everything else was refused before hashing.
    assert backoff.slow_checks <= 25 + 4 * 12, backoff.slow_checks
    # The count above is the proof; the time only catches a gross regression. It is under
    # 1 s alone, and 5.4 s was seen on a machine shared with other builds: room for that.
    assert admitted_within < 15.0, f"50 real chargers took {admitted_within:.1f} s"


async def test_a_right_password_from_a_backed_off_address_is_still_admitted(
    harness: Harness,
) -> None:
    # Chargers behind one NAT share its address with whoever misbehaves there.
    nat = "127.0.0.7"
    made = harness.server.password_key.new_password()
    harness.chargers.add(ChargerAuth("cp-keyed", made.password_hash))
    seen = PythonDriver()
    await seen.connect(harness.url, "cp-1", PASSWORD, source=nat)  # verified once: remembered
    await seen.close()
    for charger_id in ("cp-chosen", "cp-target"):
        chosen = hash_password(f"{charger_id}-chosen-pw", log2_n=10)
        harness.chargers.add(ChargerAuth(charger_id, chosen))

    wrong = "not-the-password-123"
    answers = [
        await handshake_status(harness.url, "cp-target", wrong, source=nat) for _ in range(8)
    ]
    assert answers[:5] == [401] * 5
    assert answers[-1] == 429  # the address is backed off

    for charger_id, key in [("cp-keyed", made.key), ("cp-1", PASSWORD)]:
        driver = PythonDriver()
        await driver.connect(harness.url, charger_id, key, source=nat)
        assert (await driver.call("BootNotification", BOOT))["status"] == "Accepted"
        await driver.close()
    # A chosen password never checked since the start would cost a slow check: it waits.
    assert (
        await handshake_status(harness.url, "cp-chosen", "cp-chosen-chosen-pw", source=nat) == 429
    )
    # Another address is not affected at all.
    assert (
        await handshake_status(harness.url, "cp-chosen", "cp-chosen-chosen-pw", source="127.0.0.8")
        == 101
    )


async def test_a_backed_off_address_is_told_when_to_come_back(harness: Harness) -> None:
    token = base64.b64encode(b"cp-1:not-the-password-123").decode()
    status, retry_after = 0, ""
    for _ in range(8):
        try:
            async with connect(
                f"{harness.url}/cp-1",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers={"Authorization": f"Basic {token}"},
            ):
                pass
        except InvalidStatus as exc:
            status = exc.response.status_code
            retry_after = exc.response.headers.get("Retry-After", "")
    assert status == 429
    assert retry_after.isdigit()
    assert int(retry_after) >= 1
    offline = await harness.server.commands.reset("cp-1", hard=False)
    assert offline.status is CommandStatus.OFFLINE


async def test_a_slow_check_that_outlives_its_handshake_is_remembered_not_held_against_it(
    start_harness: HarnessFactory,
) -> None:
    # After a restart slow checks queue up; a charger whose handshake times out in the queue
    # tries again. Its check still runs to the end: no wrong password is counted against its
    # address, and its next attempt is admitted from the remembered result at once.
    harness = await start_harness(handshake_timeout_s=0.05)
    chosen = "a-chosen-password-1234"
    harness.chargers.add(ChargerAuth("cp-slow", hash_password(chosen, log2_n=15)))
    answers = [await _raw_attempt(harness, "cp-slow", chosen, "127.0.0.9") for _ in range(8)]
    assert 0 in answers  # some handshakes timed out while their check ran
    assert 429 not in answers  # and none of those counted as a wrong password
    for _ in range(100):  # each attempt ends in 50 ms at most
        if await _raw_attempt(harness, "cp-slow", chosen, "127.0.0.9") == 101:
            break
    else:
        pytest.fail("the remembered password never opened the door")
