"""Three ``strom run --cluster`` processes on one PostgreSQL: sessions paid at any process start
on the right charger wherever it is connected; a killed process's chargers move to the others
and nothing paid is lost or refunded twice; a rolling restart under payments loses nothing."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from strom_nostr.dm import nip04_message
from strom_nostr.keys import encode_npub, public_key_hex
from tests.agent.conftest import Person
from tests.cluster.trio import Trio
from tests.conftest import peer_missing
from tests.ocpp.drivers import OcppRpcDriver, install_ocpp_rpc
from tests.peers import relay_nostr_relay

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHARGERS = ["cp-a", "cp-b", "cp-c"]  # simulated, one connected to each process at first
RPC_CHARGER = "cp-rpc"  # the strict independent client's


@pytest.fixture
async def trio(tmp_path: Path, cluster_url: str) -> AsyncIterator[Trio]:
    trio = Trio(tmp_path, cluster_url, [*CHARGERS, RPC_CHARGER])
    trio.setup()
    try:
        await trio.start()
        yield trio
    finally:
        await trio.aclose()


async def test_payments_and_commands_reach_chargers_held_by_other_processes(trio: Trio) -> None:
    for index, charger_id in enumerate(CHARGERS):
        trio.connect(charger_id, index)  # cp-a on process 1, cp-b on 2, cp-c on 3
    # The strict independent client (ocpp-rpc) holds cp-rpc on process 3.
    rpc = OcppRpcDriver(install_ocpp_rpc())
    await rpc.start()
    try:
        await rpc.connect(trio.ocpp_url(2), RPC_CHARGER, trio.passwords[RPC_CHARGER])
        boot = await rpc.call(
            "BootNotification", {"chargePointVendor": "ocpp-rpc", "chargePointModel": "strict"}
        )
        assert boot["status"] == "Accepted"
        await rpc.call(
            "StatusNotification",
            {"connectorId": 1, "status": "Available", "errorCode": "NoError"},
        )
        await trio.online_everywhere([*CHARGERS, RPC_CHARGER])
        # An operator's command at process 1 reaches the charger held by process 3.
        await rpc.answer("TriggerMessage", {"status": "Accepted"})
        token = await trio.admin_token()
        async with httpx.AsyncClient(timeout=60) as http:
            answered = await http.post(
                f"{trio.configs[0].server.public_url}/api/v1/chargers/{RPC_CHARGER}"
                "/commands/trigger-status",
                json={"connector_id": 1},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert answered.status_code == 200, answered.text
        assert answered.json()["status"] == "Accepted"
        triggered = await rpc.server_call("TriggerMessage")
        assert triggered["requestedMessage"] == "StatusNotification"
        # Each simulated charger is paid for at a process that does not hold its connection.
        drivers = [
            trio.driver(charger_id, (index + 1) % 3) for index, charger_id in enumerate(CHARGERS)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(d.story() for d in drivers)), 90)
        except BaseException:
            print(trio.logs())
            raise
        finally:
            for driver in drivers:
                await driver.aclose()
        assert rpc.validation_failures == []
    finally:
        await rpc.stop()
    for charger_id in CHARGERS:
        sim = trio.chargers[charger_id]
        started = [c for c in sim.received_calls if c.action == "RemoteStartTransaction"]
        assert len(started) == 1, (charger_id, [c.action for c in sim.received_calls])
    assert await trio.drained(), await trio.pending()
    assert await trio.check() == []


KILLS = int(os.environ.get("STROM_CLUSTER_KILLS", "2"))  # CI: a short sample; more by hand
SEED = int(os.environ.get("STROM_CLUSTER_SEED", "22"))


async def _charge_through_a_kill(trio: Trio, rng: random.Random, round_: int) -> None:
    """Pay at one process for a charger held by another, kill that one mid-charge, finish."""
    victim = rng.randrange(3)
    charger_id = CHARGERS[victim]
    sim = trio.chargers[charger_id]
    payer_at = (victim + 1 + rng.randrange(2)) % 3
    driver = trio.driver(charger_id, payer_at)
    try:
        answer = await driver.invoice()
        status_url = str(answer["successAction"]["url"]).replace("?", ".json?", 1)
        await driver.wallet.pay(str(answer["pr"]))
        status = await driver.status(status_url, {"charging"}, 60)
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        trio.children[victim].kill()  # SIGKILL: no goodbye, its leases just run out
        await sim.wait_until(lambda: sim.connected, 30)  # to another process now
        while status["state"] == "charging" and status["energy_wh"] < 400:
            await asyncio.sleep(0.2)
            status = await driver.get(status_url)
        await driver.refund(status_url)
    finally:
        await driver.aclose()
    await trio.revive_all()  # the dead process comes back (a supervisor restarts it)


async def test_a_process_killed_mid_session_loses_nothing(trio: Trio) -> None:
    for index, charger_id in enumerate(CHARGERS):
        trio.connect(charger_id, index, speed=20.0)
    await trio.online_everywhere(CHARGERS)
    rng = random.Random(SEED)
    try:
        for round_ in range(KILLS):
            await asyncio.wait_for(_charge_through_a_kill(trio, rng, round_), 120)
            assert await trio.drained(), await trio.pending()
            assert await trio.check() == [], f"after kill {round_ + 1}"
    except BaseException:
        print(trio.logs())
        raise
    assert sum(child.killed for child in trio.children) == KILLS


async def test_a_rolling_restart_under_payments_loses_nothing(trio: Trio) -> None:
    for index, charger_id in enumerate(CHARGERS):
        trio.connect(charger_id, index, speed=60.0)
    await trio.online_everywhere(CHARGERS)
    stop = asyncio.Event()
    done: list[str] = []

    async def payer(index: int) -> None:
        charger_id = CHARGERS[index]
        while not stop.is_set():
            # Pay where the load balancer sends the payer: the next process up.
            at = next(
                i for i in ((index + 1) % 3, (index + 2) % 3, index) if not trio.children[i].died()
            )
            driver = trio.driver(charger_id, at)
            try:
                await driver.story()
                done.append(charger_id)
            finally:
                await driver.aclose()

    payers = [asyncio.create_task(payer(i)) for i in range(3)]
    try:
        for child in trio.children:  # one after the other, as an upgrade does
            await asyncio.sleep(2)
            child.terminate()
            await child.revive()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*payers), 120)
    except BaseException:
        for task in payers:
            task.cancel()
        print(trio.logs())
        raise
    assert len(done) >= 3
    assert await trio.drained()
    assert await trio.check() == []


async def test_an_operator_dm_is_answered_once_by_the_process_running_the_agent(
    tmp_path: Path, cluster_url: str
) -> None:
    try:
        relay = relay_nostr_relay.start(tmp_path / "relay")
    except relay_nostr_relay.PeerUnavailable as exc:
        peer_missing(f"nostr-relay is not available: {exc}")
        raise
    admin_key = os.urandom(32)
    trio = Trio(tmp_path / "site", cluster_url, CHARGERS)
    trio.relay_url = relay.url
    trio.admin_npub = encode_npub(public_key_hex(admin_key))
    (tmp_path / "site").mkdir()
    trio.setup()
    admin = Person(admin_key, relay.url)
    try:
        await trio.start()
        for index, charger_id in enumerate(CHARGERS):
            trio.connect(charger_id, index)
        await trio.online_everywhere(CHARGERS)
        async with httpx.AsyncClient(timeout=10) as http:
            offer = (await http.get(f"{trio.configs[0].server.public_url}/lnurlp/cp-b/1")).json()
        agent = str(offer["nostrPubkey"])
        await admin.connect()
        # Every agent runs somewhere once the processes have shared them (fair share).
        await asyncio.sleep(2)
        await admin.publish(nip04_message(admin_key, agent, "help", created_at=int(time.time())))
        answer, _ = await admin.next_dm(30)
        assert "status" in answer  # the command list
        await admin.no_dm(3)  # one process runs cp-b's agent: no second answer
    except BaseException:
        print(trio.logs())
        raise
    finally:
        await admin.close()
        await trio.aclose()
        relay.stop()
