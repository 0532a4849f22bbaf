"""The commands one Strom process may ask another to send to a charger, as JSON.

Theory of operation
-------------------
A command for a charger connected to another process crosses the bus as one JSON object
``{"m": <method>, "c": <charger id>, "a": {<argument>: <value>}}`` and its answer comes back
as ``{"r": <result>}``. :data:`METHODS` is the whole list of what may be asked: each entry names
the method of the owner's command set it runs (the version set of the charger's connection, or
its screen), a codec per argument, and the codec of its result. Anything else — an unknown
method, a missing, extra or mistyped argument — is refused before anything is sent to a
charger. Nothing is unpickled or looked up by a name from the wire.

Every result type has a *failed* form carrying only a :class:`CommandResult` (``OFFLINE``:
nothing was sent; ``TIMEOUT``: the outcome is unknown), so a caller gets the same type whether
the charger answered, was not connected, or its process did not reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ocpp_server.v16.commands import ConfigurationKey, DataTransferResult, GetConfigurationResult
from strom_core.errors import RemoteProtocolError
from strom_core.ports import CommandResult, CommandStatus, ScreenMessage
from strom_core.ports.certificates import InstalledCertificates
from strom_core.ports.device_model import VariableResult, VariableSetting, VariablesResult
from strom_core.ports.firmware import UploadResult
from strom_core.ports.local_list import ListEntry, ListUpdate, ListVersion
from strom_core.ports.power import CompositeSchedule, SchedulePeriod

__all__ = ["METHODS", "BadCall", "Method", "decode_result", "encode_result"]


class BadCall(RemoteProtocolError):
    """A remote call or its answer that is not what :data:`METHODS` says (nothing was sent)."""


# --- argument codecs: (to JSON, from JSON) ---------------------------------------------------

Json = Any
_Codec = tuple[Callable[[Any], Json], Callable[[Json], Any]]


def _typed(kind: type | tuple[type, ...]) -> Callable[[Json], Any]:
    def parse(value: Json) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise BadCall(f"expected {kind}, got a boolean")
        if not isinstance(value, kind):
            raise BadCall(f"expected {kind}, got {type(value).__name__}")
        return value

    return parse


def _optional(codec: _Codec) -> _Codec:
    encode, decode = codec
    return (
        lambda value: None if value is None else encode(value),
        lambda value: None if value is None else decode(value),
    )


def _same(value: Any) -> Json:
    return value


def _datetime(value: Json) -> datetime:
    try:
        parsed = datetime.fromisoformat(_typed(str)(value))
    except ValueError as exc:
        raise BadCall(f"not a time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise BadCall(f"a time without its zone: {value!r}")
    return parsed


def _decimal(value: Json) -> Decimal:
    try:
        return Decimal(_typed(str)(value))
    except InvalidOperation as exc:
        raise BadCall(f"not a decimal: {value!r}") from exc


def _list(item: Callable[[Json], Any]) -> Callable[[Json], tuple[Any, ...]]:
    return lambda value: tuple(item(each) for each in _typed(list)(value))


def _fields(value: Json, names: Mapping[str, Callable[[Json], Any]]) -> dict[str, Any]:
    got = _typed(dict)(value)
    if set(got) - set(names):
        raise BadCall(f"unexpected fields {sorted(set(got) - set(names))}")
    return {name: parse(got.get(name)) for name, parse in names.items()}


INT: Final[_Codec] = (_same, _typed(int))
STR: Final[_Codec] = (_same, _typed(str))
BOOL: Final[_Codec] = (_same, _typed(bool))
TIME: Final[_Codec] = (lambda value: value.isoformat(), _datetime)
DECIMAL: Final[_Codec] = (str, _decimal)
STRS: Final[_Codec] = (list, _list(_typed(str)))
STR_MAP: Final[_Codec] = (
    dict,
    lambda value: {
        _typed(str)(key): _typed(str)(item) for key, item in _typed(dict)(value).items()
    },
)
_OPT_INT = _optional(INT)
_OPT_STR = _optional(STR)

SCREEN_MESSAGE: Final[_Codec] = (
    lambda m: {
        "message_id": m.message_id,
        "connector_id": m.connector_id,
        "text": m.text,
        "uri": m.uri,
        "urgent": m.urgent,
    },
    lambda value: ScreenMessage(
        **_fields(
            value,
            {
                "message_id": INT[1],
                "connector_id": INT[1],
                "text": STR[1],
                "uri": BOOL[1],
                "urgent": BOOL[1],
            },
        )
    ),
)
PERIODS: Final[_Codec] = (
    lambda periods: [[p.start_s, p.limit_w] for p in periods],
    lambda value: tuple(
        SchedulePeriod(*_list(_typed(int))(pair)) for pair in _list(_typed(list))(value)
    ),
)


def _entry(value: Json) -> ListEntry:
    pair = _typed(list)(value)
    if len(pair) != 2:
        raise BadCall(f"a list entry is [idTag, accepted], got {pair!r}")
    return ListEntry(_typed(str)(pair[0]), _typed(bool)(pair[1]))


LIST_ENTRIES: Final[_Codec] = (
    lambda entries: [[e.id_tag, e.accepted] for e in entries],
    _list(_entry),
)
LIST_UPDATE: Final[_Codec] = (lambda update: update.value, lambda value: ListUpdate(value))
_SETTING_FIELDS: Final[Mapping[str, Callable[[Json], Any]]] = {
    "component": STR[1],
    "variable": STR[1],
    "value": STR[1],
    "component_instance": _OPT_STR[1],
    "variable_instance": _OPT_STR[1],
    "evse_id": _OPT_INT[1],
}
SETTINGS: Final[_Codec] = (
    lambda settings: [{name: getattr(s, name) for name in _SETTING_FIELDS} for s in settings],
    lambda value: tuple(
        VariableSetting(**_fields(each, _SETTING_FIELDS)) for each in _typed(list)(value)
    ),
)


# --- result codecs ---------------------------------------------------------------------------


def _command(result: CommandResult) -> Json:
    return [result.status.value, result.detail]


def _parse_command(value: Json) -> CommandResult:
    status, detail = _typed(list)(value)
    try:
        return CommandResult(CommandStatus(_typed(str)(status)), _typed(str)(detail))
    except ValueError as exc:
        raise BadCall(f"not a command status: {status!r}") from exc


@dataclass(frozen=True, slots=True)
class _Result:
    """How one result type crosses the bus, and its form for a command that did not run."""

    encode: Callable[[Any], Json]
    decode: Callable[[Json], Any]
    failed: Callable[[CommandResult, Mapping[str, Any]], Any]


COMMAND: Final = _Result(_command, _parse_command, lambda result, _args: result)
SCHEDULE: Final = _Result(
    lambda s: {
        "result": _command(s.result),
        "connector_id": s.connector_id,
        "start": s.start,
        "duration_s": s.duration_s,
        "periods": PERIODS[0](s.periods),
    },
    lambda value: CompositeSchedule(
        **_fields(
            value,
            {
                "result": _parse_command,
                "connector_id": INT[1],
                "start": _OPT_STR[1],
                "duration_s": _OPT_INT[1],
                "periods": PERIODS[1],
            },
        )
    ),
    lambda result, args: CompositeSchedule(result, args.get("connector_id", 0)),
)
LIST_VERSION: Final = _Result(
    lambda v: [_command(v.result), v.version],
    lambda value: ListVersion(_parse_command(value[0]), _OPT_INT[1](value[1])),
    lambda result, _args: ListVersion(result),
)
UPLOAD: Final = _Result(
    lambda u: [_command(u.result), u.file_name],
    lambda value: UploadResult(_parse_command(value[0]), _OPT_STR[1](value[1])),
    lambda result, _args: UploadResult(result),
)
CERTIFICATES: Final = _Result(
    lambda c: [_command(c.result), [dict(each) for each in c.certificates]],
    lambda value: InstalledCertificates(
        _parse_command(value[0]), tuple(STR_MAP[1](each) for each in _typed(list)(value[1]))
    ),
    lambda result, _args: InstalledCertificates(result),
)
VARIABLES: Final = _Result(
    lambda v: [
        _command(v.result),
        [[x.component, x.variable, x.status, x.value] for x in v.variables],
    ],
    lambda value: VariablesResult(
        _parse_command(value[0]),
        tuple(
            VariableResult(STR[1](c), STR[1](v), STR[1](s), _OPT_STR[1](x))
            for c, v, s, x in _typed(list)(value[1])
        ),
    ),
    lambda result, _args: VariablesResult(result),
)
CONFIGURATION: Final = _Result(
    lambda c: [
        _command(c.result),
        [[k.key, k.readonly, k.value] for k in c.keys],
        list(c.unknown_keys),
    ],
    lambda value: GetConfigurationResult(
        _parse_command(value[0]),
        tuple(
            ConfigurationKey(STR[1](k), BOOL[1](r), _OPT_STR[1](v))
            for k, r, v in _typed(list)(value[1])
        ),
        STRS[1](value[2]),
    ),
    lambda result, _args: GetConfigurationResult(result),
)
DATA_TRANSFER: Final = _Result(
    lambda d: [_command(d.result), d.data],
    lambda value: DataTransferResult(_parse_command(value[0]), _OPT_STR[1](value[1])),
    lambda result, _args: DataTransferResult(result),
)


# --- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Method:
    """One command another process may ask for.

    Attributes:
        name: the method of the owner's command set (or of its screen: ``screen``).
        args: each argument's codec, by name (all passed by keyword, after the charger id).
        result: the result's codec.
        screen: run on the connection's screen (:class:`strom_core.ports.ChargerDisplays`).
    """

    name: str
    args: Mapping[str, _Codec]
    result: _Result = COMMAND
    screen: bool = False

    def encode_args(self, args: Mapping[str, Any]) -> dict[str, Json]:
        """The arguments as JSON (a caller's mistake raises BadCall)."""
        if set(args) != set(self.args):
            raise BadCall(f"{self.name} takes {sorted(self.args)}, got {sorted(args)}")
        return {name: codec[0](args[name]) for name, codec in self.args.items()}

    def decode_args(self, args: Json) -> dict[str, Any]:
        """The arguments from JSON; anything else than the declared ones raises BadCall."""
        got = _typed(dict)(args)
        if set(got) != set(self.args):
            raise BadCall(f"{self.name} takes {sorted(self.args)}, got {sorted(got)}")
        try:
            return {name: codec[1](got[name]) for name, codec in self.args.items()}
        except (TypeError, ValueError, IndexError) as exc:
            raise BadCall(f"{self.name}: {exc}") from exc


def _method(
    name: str, result: _Result = COMMAND, *, screen: bool = False, **args: _Codec
) -> Method:
    return Method(name, args, result, screen)


_OPT_TIME = _optional(TIME)

METHODS: Final[Mapping[str, Method]] = {
    method.name: method
    for method in (
        # ChargerCommands
        _method("remote_start", connector_id=INT, id_tag=STR),
        _method("remote_stop", transaction=STR),
        _method("unlock", connector_id=INT),
        _method("change_availability", connector_id=INT, operative=BOOL),
        _method("reset", hard=BOOL),
        _method("trigger_status", connector_id=_OPT_INT),
        # ChargerDisplays
        _method("show", screen=True, message=SCREEN_MESSAGE),
        _method("clear", screen=True, message_id=INT),
        _method("show_cost", screen=True, connector_id=INT, total=DECIMAL),
        # PowerLimits
        _method("set_charger_limit", limit_w=_OPT_INT),
        _method("limit_session", connector_id=INT, transaction=_OPT_STR, limit_w=INT),
        _method("clear_session_limit", connector_id=INT),
        _method(
            "plan_session",
            connector_id=INT,
            transaction=STR,
            start=TIME,
            duration_s=INT,
            periods=PERIODS,
        ),
        _method("composite_schedule", SCHEDULE, connector_id=INT, duration_s=INT),
        # ReservationCommands
        _method("reserve_now", connector_id=INT, reservation_id=INT, expires_at=TIME, id_tag=STR),
        _method("cancel_reservation", reservation_id=INT),
        # FirmwareCommands
        _method(
            "update_firmware",
            location=STR,
            retrieve_at=TIME,
            retries=_OPT_INT,
            retry_interval_s=_OPT_INT,
        ),
        _method(
            "signed_update_firmware",
            location=STR,
            retrieve_at=TIME,
            request_id=INT,
            signing_certificate=STR,
            signature=STR,
            install_at=_OPT_TIME,
            retries=_OPT_INT,
            retry_interval_s=_OPT_INT,
        ),
        _method(
            "get_diagnostics",
            UPLOAD,
            location=STR,
            start=_OPT_TIME,
            stop=_OPT_TIME,
            retries=_OPT_INT,
            retry_interval_s=_OPT_INT,
        ),
        _method(
            "get_log",
            UPLOAD,
            location=STR,
            request_id=INT,
            security_log=BOOL,
            start=_OPT_TIME,
            stop=_OPT_TIME,
        ),
        # LocalAuthList
        _method("local_list_version", LIST_VERSION),
        _method("send_local_list", version=INT, update=LIST_UPDATE, entries=LIST_ENTRIES),
        # ChargerCertificates
        _method("install_certificate", certificate_pem=STR, certificate_type=STR),
        _method("get_installed_certificate_ids", CERTIFICATES, certificate_type=STR),
        _method("delete_certificate", hash_data=STR_MAP),
        _method("request_charger_certificate"),
        # DeviceModelCommands (OCPP 2.0.1)
        _method("get_variables", VARIABLES, variables=SETTINGS),
        _method("set_variables", VARIABLES, variables=SETTINGS),
        _method("get_base_report", report=STR),
        # OCPP 1.6 beyond the port
        _method("get_configuration", CONFIGURATION, keys=STRS),
        _method("change_configuration", key=STR, value=STR),
        _method("clear_cache"),
        _method("trigger_message", message=STR, connector_id=_OPT_INT),
        _method("data_transfer", DATA_TRANSFER, vendor_id=STR, message_id=_OPT_STR, data=_OPT_STR),
    )
}


def encode_result(method: Method, result: Any) -> Json:
    """A result as JSON."""
    return method.result.encode(result)


def decode_result(method: Method, value: Json) -> Any:
    """A result from JSON; an answer of the wrong shape raises BadCall."""
    try:
        return method.result.decode(value)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise BadCall(f"{method.name}: a malformed answer: {exc}") from exc
