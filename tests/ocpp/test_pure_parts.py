"""The connection state table, meter normalisation, passwords and settings, without sockets."""

from __future__ import annotations

import ast
import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocpp_server.connection_state import (
    TRANSITIONS,
    ConnectionEvent,
    ConnectionState,
    Effect,
    may_handle,
    transition,
)
from ocpp_server.passwords import (
    ScryptHash,
    hash_password,
    parse_basic_auth,
    validate_authorization_key,
    verify_password,
)
from ocpp_server.settings import ChargerAuth, OcppServerSettings, Quirk, parse_quirks
from ocpp_server.v16.messages import AUTHORIZATION_STATUS, transaction_id, transaction_reference
from ocpp_server.v16.meter import register_readings
from strom_core.errors import IllegalTransition
from strom_core.ports import Authorization

S, E, F = ConnectionState, ConnectionEvent, Effect

# --- connection state table -------------------------------------------------------------------


def test_a_known_charger_goes_online_boots_and_is_configured() -> None:
    state, effects = transition(S.DISCONNECTED, E.OPENED)
    assert (state, effects) == (S.CONNECTED, (F.PUBLISH_ONLINE,))
    state, effects = transition(state, E.BOOT_ACCEPTED)
    assert (state, effects) == (S.ACCEPTED, (F.CONFIGURE,))
    assert transition(state, E.BOOT_ACCEPTED) == (S.ACCEPTED, (F.CONFIGURE,))


def test_backstop_asks_for_a_boot_once() -> None:
    state, effects = transition(S.CONNECTED, E.BACKSTOP_DUE)
    assert (state, effects) == (S.BOOT_REQUESTED, (F.TRIGGER_BOOT,))
    with pytest.raises(IllegalTransition):
        transition(state, E.BACKSTOP_DUE)
    assert transition(state, E.BOOT_ACCEPTED)[0] is S.ACCEPTED


@pytest.mark.parametrize("state", [S.CONNECTED, S.BOOT_REQUESTED, S.ACCEPTED])
def test_leaving_a_live_state(state: ConnectionState) -> None:
    assert transition(state, E.CLOSED) == (
        S.DISCONNECTED,
        (F.FAIL_PENDING_CALLS, F.PUBLISH_OFFLINE_CLOSED),
    )
    assert transition(state, E.SILENT) == (
        S.DISCONNECTED,
        (F.FAIL_PENDING_CALLS, F.PUBLISH_OFFLINE_SILENT, F.CLOSE_SOCKET),
    )
    # Replaced by a newer connection: no offline event, the charger is still there.
    assert transition(state, E.REPLACED) == (
        S.DISCONNECTED,
        (F.FAIL_PENDING_CALLS, F.CLOSE_SOCKET),
    )


def test_pending_chargers_never_publish_and_only_boot_or_beat() -> None:
    state, effects = transition(S.DISCONNECTED, E.OPENED_UNREGISTERED)
    assert (state, effects) == (S.PENDING_APPROVAL, ())
    assert may_handle(state, "BootNotification")
    assert may_handle(state, "Heartbeat")
    assert not may_handle(state, "StartTransaction")
    with pytest.raises(IllegalTransition):
        transition(state, E.BOOT_ACCEPTED)
    assert transition(state, E.APPROVED)[0] is S.DISCONNECTED
    for effects in (transition(state, e)[1] for e in (E.CLOSED, E.SILENT, E.APPROVED)):
        assert not {F.PUBLISH_ONLINE, F.PUBLISH_OFFLINE_CLOSED, F.PUBLISH_OFFLINE_SILENT} & set(
            effects
        )


@given(st.sampled_from(list(ConnectionState)), st.sampled_from(list(ConnectionEvent)))
def test_every_pair_is_either_in_the_table_or_raises(
    state: ConnectionState, event: ConnectionEvent
) -> None:
    if (state, event) in TRANSITIONS:
        assert transition(state, event) == TRANSITIONS[(state, event)]
    else:
        with pytest.raises(IllegalTransition):
            transition(state, event)


@given(st.lists(st.sampled_from(list(ConnectionEvent)), max_size=12))
def test_one_connection_publishes_online_and_offline_at_most_once(
    events: list[ConnectionEvent],
) -> None:
    # A connection starts DISCONNECTED and is finished when it gets back there.
    state, online, offline = S.DISCONNECTED, 0, 0
    for event in events:
        try:
            state, effects = transition(state, event)
        except IllegalTransition:
            continue
        online += effects.count(F.PUBLISH_ONLINE)
        offline += effects.count(F.PUBLISH_OFFLINE_CLOSED) + effects.count(F.PUBLISH_OFFLINE_SILENT)
        assert offline <= online <= 1
        if state is S.DISCONNECTED:
            break


def test_pure_modules_import_no_io() -> None:
    banned = {"asyncio", "websockets", "aiohttp", "httpx", "sqlalchemy", "socket"}
    package = Path(__file__).resolve().parents[2] / "ocpp_server"
    pure = (
        "ocppj",
        "peer",
        "connection_state",
        "schemas",
        "v16/schemas",
        "v201/schemas",
        "v16/messages",
        "v16/meter",
        "passwords",
        "settings",
    )
    for name in pure:
        tree = ast.parse((package / f"{name}.py").read_text())
        for node in ast.walk(tree):
            modules: list[str] = []
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            for module in modules:
                assert module.split(".")[0] not in banned, f"{name} imports {module}"


# --- meter values ---------------------------------------------------------------------------

T = "2030-01-01T10:00:00Z"


def entry(*sampled: dict[str, str], at: str = T) -> dict[str, object]:
    return {"timestamp": at, "sampledValue": list(sampled)}


def test_register_in_wh_and_kwh_is_exact() -> None:
    readings, notes = register_readings(
        [
            entry({"value": "1234.5", "unit": "Wh"}),  # measurand defaults to the register
            entry(
                {"value": "12.3456", "unit": "kWh", "measurand": "Energy.Active.Import.Register"}
            ),
            entry({"value": "77"}),  # unit defaults to Wh
        ]
    )
    assert [r.register_wh for r in readings] == [1235, 12346, 77]
    assert notes == []
    assert readings[0].timestamp == datetime(2030, 1, 1, 10, tzinfo=UTC)


def test_one_reading_per_meter_value_preferring_the_fresh_total() -> None:
    # A Growatt-style entry: the stale Transaction.Begin copy next to the periodic value,
    # plus per-phase values and an inlet register.
    readings, _ = register_readings(
        [
            entry(
                {"value": "163630", "unit": "Wh", "context": "Sample.Periodic"},
                {"value": "157440", "unit": "Wh", "context": "Transaction.Begin"},
                {"value": "90000", "unit": "Wh", "phase": "L1"},
                {"value": "999999", "unit": "Wh", "location": "Inlet"},
                {"value": "7000", "unit": "W", "measurand": "Power.Active.Import"},
            ),
            entry({"value": "157440", "unit": "Wh", "context": "Transaction.Begin"}),
        ]
    )
    assert [(r.register_wh, r.context) for r in readings] == [
        (163630, "Sample.Periodic"),
        (157440, "Transaction.Begin"),
    ]


def test_unusable_registers_are_skipped_with_a_note() -> None:
    readings, notes = register_readings(
        [
            entry({"value": "abc", "unit": "Wh"}),
            entry({"value": "-5", "unit": "Wh"}),
            entry({"value": "5", "unit": "varh"}),
            entry({"value": "AB12", "format": "SignedData"}),
            {"timestamp": "later", "sampledValue": [{"value": "5"}]},
            {"timestamp": T},
        ]
    )
    assert readings == []
    assert len(notes) == 5


def test_kwh_labelled_wh_quirk() -> None:
    # OpenEVSE 4.2.x: 361 kWh arrives as "361" labelled Wh.
    readings, _ = register_readings([entry({"value": "361", "unit": "Wh"})], kwh_labelled_wh=True)
    assert readings[0].register_wh == 361_000
    explicit, _ = register_readings([entry({"value": "1.5", "unit": "kWh"})], kwh_labelled_wh=True)
    assert explicit[0].register_wh == 1500


@given(st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False))
def test_kwh_and_wh_agree(kwh: object) -> None:
    as_kwh, _ = register_readings([entry({"value": str(kwh), "unit": "kWh"})])
    wh = format(kwh * 1000, "f")  # type: ignore[operator]
    as_wh, _ = register_readings([entry({"value": wh, "unit": "Wh"})])
    assert as_kwh[0].register_wh == as_wh[0].register_wh


# --- passwords --------------------------------------------------------------------------------


def test_authorization_key_length_rule() -> None:
    assert validate_authorization_key("x" * 16) == b"x" * 16
    assert validate_authorization_key("x" * 40) == b"x" * 40
    for bad in ("x" * 15, "x" * 41, b"\x00" * 8):
        with pytest.raises(ValueError, match="16 to 40"):
            validate_authorization_key(bad)


def test_hash_and_verify() -> None:
    stored = hash_password("a-long-enough-key", log2_n=10)
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("a-long-enough-key", stored)
    assert verify_password(b"a-long-enough-key", stored)
    assert not verify_password("a-long-enough-kez", stored)
    assert stored != hash_password("a-long-enough-key", log2_n=10)  # salted


@pytest.mark.parametrize(
    "stored", ["", "md5$x", "scrypt$10$8$1$!!$!!", "scrypt$30$8$1$AAAA$AAAA", "scrypt$a$b$c$d$e"]
)
def test_malformed_hashes_are_configuration_errors(stored: str) -> None:
    with pytest.raises(ValueError, match="scrypt"):
        ScryptHash.parse(stored)
    with pytest.raises(ValueError, match="scrypt"):
        ChargerAuth("cp", stored)


def test_basic_auth_header_parsing() -> None:
    def header(raw: bytes) -> str:
        return "Basic " + base64.b64encode(raw).decode()

    assert parse_basic_auth(header(b"cp-1:secret:with:colons")) == ("cp-1", b"secret:with:colons")
    assert parse_basic_auth(header(b"cp-1:\xff\x00binary")) == ("cp-1", b"\xff\x00binary")
    assert parse_basic_auth(header(b"no-colon")) is None
    assert parse_basic_auth("Bearer abc") is None
    assert parse_basic_auth("Basic ***") is None


# --- settings ---------------------------------------------------------------------------------


def test_quirks_by_name() -> None:
    assert parse_quirks(["lenient_string_lengths"]) == {Quirk.LENIENT_STRING_LENGTHS}
    with pytest.raises(ValueError, match="known quirks"):
        parse_quirks(["be_nice"])


def test_settings_are_checked() -> None:
    assert OcppServerSettings().offline_after_s == 750
    with pytest.raises(ValueError, match="together"):
        OcppServerSettings(tls_cert=Path("cert.pem"))
    with pytest.raises(ValueError, match="positive"):
        OcppServerSettings(heartbeat_interval_s=0)
    with pytest.raises(ValueError, match=r"Energy\.Active\.Import\.Register"):
        OcppServerSettings(measurands=("Power.Active.Import",))
    with pytest.raises(ValueError, match="charger id"):
        ChargerAuth("has space")
    with pytest.raises(ValueError, match="connectors"):
        ChargerAuth("cp", connectors=0)


# --- the OCPP 1.6 edge of the core's port -----------------------------------------------------


def test_ocpp16_ids_and_references_map_one_to_one() -> None:
    assert transaction_reference(17) == "17"
    assert transaction_id("17") == 17
    for not_an_id in ("0", "017", "+17", "-1", "17.0", "", "abc", str(2**31), "\u0661\u0667"):
        with pytest.raises(ValueError, match=r"not an OCPP 1\.6 transaction id"):
            transaction_id(not_an_id)
    assert {status: AUTHORIZATION_STATUS[status] for status in Authorization} == {
        Authorization.ACCEPTED: "Accepted",
        Authorization.BLOCKED: "Blocked",
        Authorization.EXPIRED: "Expired",
        Authorization.INVALID: "Invalid",
        Authorization.IN_USE: "ConcurrentTx",
    }
