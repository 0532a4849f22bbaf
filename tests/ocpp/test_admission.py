"""Who gets in: path, subprotocol, HTTP Basic auth (profile 1), TLS (profile 2), approval."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_server import ChargerAuth, hash_password
from strom_core.ports import ChargerOnline, CommandStatus
from tests.ocpp.conftest import (
    FAST_HASH,
    PASSWORD,
    DriverFactory,
    Harness,
    HarnessFactory,
    boot,
)
from tests.ocpp.drivers import (
    CallErrorReceived,
    ChargePointDriver,
    HandshakeRefused,
    PythonDriver,
)


async def test_right_password_is_admitted(harness: Harness, driver: ChargePointDriver) -> None:
    await boot(driver, harness)
    assert (await harness.sink.wait_for(ChargerOnline)).charger_id == "cp-1"


@pytest.mark.parametrize(
    ("identity", "password"),
    [
        ("cp-1", "wrong-password-123456"),  # wrong password
        ("cp-1", None),  # a charger with a password that sends no credentials
        ("cp-unknown", PASSWORD),  # not configured, auto-registration off
    ],
)
async def test_refused_chargers_get_401(
    harness: Harness, driver: ChargePointDriver, identity: str, password: str | None
) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        await driver.connect(harness.url, identity, password)
    assert refused.value.status == 401
    assert harness.server.online_chargers() == []
    assert harness.sink.events == []


async def test_401_says_nothing_about_why_but_the_log_does(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = set()
    cases = [
        ("cp-1", {}, "no Basic credentials"),
        ("cp-1", {"Authorization": "Basic Y3AtMTp3cm9uZw=="}, "wrong password"),  # cp-1:wrong
        ("cp-unknown", {}, "unknown charger 'cp-unknown'"),
        ("cp-1", {"Authorization": "Bearer something"}, "no Basic credentials"),
        # cp-2:<password>: a wrong user name is not "no credentials"
        ("cp-1", {"Authorization": "Basic Y3AtMjpwYXNzd29yZA=="}, "user name 'cp-2' is not"),
    ]
    for identity, header, logged in cases:
        caplog.clear()
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                f"{harness.url}/{identity}",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=header,
            )
        response = refused.value.response
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        bodies.add(bytes(response.body))
        assert logged in caplog.text, (identity, header)
    assert bodies == {b"Unauthorized\n"}


async def test_user_name_must_be_the_charger_id(harness: Harness) -> None:
    import base64

    token = base64.b64encode(f"cp-open:{PASSWORD}".encode()).decode()
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{harness.url}/cp-1",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
        )
    assert refused.value.response.status_code == 401


async def test_password_check_is_cached_per_hash_and_a_new_hash_wins(
    harness: Harness, new_driver: DriverFactory
) -> None:
    for _ in range(2):
        driver = await new_driver()
        await driver.connect(harness.url, "cp-1", PASSWORD)
        await driver.close()
    # The operator rotates the key: the old one no longer opens the door.
    new_key = "another-key-0123456789"
    harness.chargers.add(
        ChargerAuth("cp-1", hash_password(new_key, log2_n=FAST_HASH), connectors=2)
    )
    stale = await new_driver()
    with pytest.raises(HandshakeRefused):
        await stale.connect(harness.url, "cp-1", PASSWORD)
    fresh = await new_driver()
    await fresh.connect(harness.url, "cp-1", new_key)


@pytest.mark.parametrize("protocols", [(), ("ocpp2.1",)])
async def test_missing_or_other_subprotocol_is_refused_with_a_reason(
    harness: Harness, protocols: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{harness.url}/cp-open",
            subprotocols=list(protocols) or None,  # type: ignore[arg-type]
        )
    response = refused.value.response
    assert response.status_code == 400
    assert b"ocpp1.6" in response.body
    assert b"ocpp2.0.1" in response.body


async def test_the_independent_client_is_refused_without_a_served_version(
    harness: Harness, driver: ChargePointDriver
) -> None:
    with pytest.raises(HandshakeRefused) as refused:
        await driver.connect(harness.url, "cp-open", protocols=("ocpp2.1",))
    assert refused.value.status == 400


@pytest.mark.parametrize("path", ["/", "/ocpp/", "/ocpp/a/b", "/other/cp-open", "/ocpp/%00x"])
async def test_paths_outside_the_endpoint_are_not_found(harness: Harness, path: str) -> None:
    base = harness.url.removesuffix("/ocpp")
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{base}{path}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
    assert refused.value.response.status_code == 404


async def test_profile_2_tls_with_basic_auth(
    start_harness: HarnessFactory,
    new_driver: DriverFactory,
    tls_files: tuple[Path, Path],
) -> None:
    cert, key = tls_files
    harness = await start_harness(tls_cert=cert, tls_key=key)
    assert harness.url.startswith("wss://")
    driver = await new_driver()
    await driver.connect(harness.url, "cp-1", PASSWORD, ca=cert)
    answer = await driver.call(
        "BootNotification", {"chargePointVendor": "Test", "chargePointModel": "TLS"}
    )
    assert answer["status"] == "Accepted"
    assert driver.validation_failures == []
    wrong = await new_driver()
    with pytest.raises(HandshakeRefused) as refused:
        await wrong.connect(harness.url, "cp-1", "wrong-password-123456", ca=cert)
    assert refused.value.status == 401


async def test_profile_2_tls_with_basic_auth_for_an_ocpp_201_station(
    start_harness: HarnessFactory, tls_files: tuple[Path, Path]
) -> None:
    """Security profile 2 in OCPP 2.0.1: wss:// with the BasicAuthPassword."""
    cert, key = tls_files
    harness = await start_harness(tls_cert=cert, tls_key=key)
    driver = PythonDriver("ocpp2.0.1")
    try:
        await driver.connect(harness.url, "cp-1", PASSWORD, ca=cert)
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "Test", "model": "TLS"}}
        assert (await driver.call("BootNotification", boot))["status"] == "Accepted"
        assert driver.validation_failures == []
    finally:
        await driver.close()
    wrong = PythonDriver("ocpp2.0.1")
    with pytest.raises(HandshakeRefused) as refused:
        await wrong.connect(harness.url, "cp-1", "wrong-password-123456", ca=cert)
    assert refused.value.status == 401


async def test_unknown_charger_is_held_for_approval_then_admitted(
    start_harness: HarnessFactory, new_driver: DriverFactory
) -> None:
    harness = await start_harness(auto_register=True, pending_retry_interval_s=30)
    driver = await new_driver()
    await driver.connect(harness.url, "cp-new", "a-key-the-operator-will-set")
    boot_payload = {"chargePointVendor": "Acme", "chargePointModel": "W1"}
    answer = await driver.call("BootNotification", boot_payload)
    assert (answer["status"], answer["interval"]) == ("Pending", 30)
    assert "currentTime" in await driver.call("Heartbeat", {})
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    with pytest.raises(CallErrorReceived) as refused:
        await driver.call("StatusNotification", status)
    assert refused.value.code == "SecurityError"

    [pending] = harness.server.pending_chargers()
    assert pending.charger_id == "cp-new"
    assert pending.presented_credentials
    assert pending.boot is not None
    assert pending.boot.vendor == "Acme"
    assert harness.server.online_chargers() == []
    assert harness.sink.events == []
    offline = await harness.server.commands.reset("cp-new", hard=False)
    assert offline.status is CommandStatus.OFFLINE

    # The operator configures it; at its next boot it is sent away to come back with auth.
    key = "a-key-the-operator-will-set"
    harness.chargers.add(ChargerAuth("cp-new", hash_password(key, log2_n=FAST_HASH)))
    await driver.call("BootNotification", boot_payload)
    await driver.closed()
    again = await new_driver()
    await again.connect(harness.url, "cp-new", key)
    assert (await again.call("BootNotification", boot_payload))["status"] == "Accepted"
    assert harness.server.online_chargers() == ["cp-new"]
    assert harness.server.forget_pending("cp-new")
    assert harness.server.pending_chargers() == []


async def test_the_pending_list_is_bounded(start_harness: HarnessFactory) -> None:
    harness = await start_harness(auto_register=True, max_pending_chargers=1)
    async with connect(f"{harness.url}/cp-a", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{harness.url}/cp-b", subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        assert refused.value.response.status_code == 401
    assert [p.charger_id for p in harness.server.pending_chargers()] == ["cp-a"]
