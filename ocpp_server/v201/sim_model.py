"""What the simulated OCPP 2.0.1 charge point keeps: its EVSEs and its device model.

:class:`EvseState` is one EVSE (with its one connector) as the charger keeps it: the connector
status it reports (Available, Occupied, Unavailable, Faulted), and for a transaction its own
``transactionId``, the next ``seqNo``, the ``chargingState`` and the ``remoteStartId`` it
echoes. :class:`DeviceModel` is the small device model GetVariables, SetVariables and
GetBaseReport work on: components and variables with a value, a mutability and a data type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ocpp_server.sim_model import ConnectorState

__all__ = ["DeviceModel", "EvseState", "Variable", "VariableKey"]

VariableKey = tuple[str, str]
"""(component name, variable name)."""


@dataclass(slots=True)
class EvseState(ConnectorState):
    """One EVSE of the simulated 2.0.1 charger (``connector_id`` is its evseId).

    Attributes:
        token_type: the type of ``id_tag`` (or ``waiting_tag``) as an IdTokenType says it.
        charging_state: the ``transactionInfo.chargingState`` of its transaction.
        seq_no: the ``seqNo`` of the next TransactionEvent of its transaction.
        remote_start_id: the ``remoteStartId`` the transaction was started with.
        waiting_remote_start_id: a RequestStartTransaction waiting for the plug.
        waiting_deadline: when that wait ends (monotonic seconds).
    """

    token_type: str = "Central"  # noqa: S105 - an IdTokenType, no secret
    charging_state: str = "Idle"
    seq_no: int = 0
    remote_start_id: int | None = None
    waiting_remote_start_id: int | None = None
    waiting_deadline: float = 0.0

    @property
    def charging(self) -> bool:
        """Whether energy flows: a transaction runs and its chargingState is Charging."""
        return self.transaction_id is not None and self.charging_state == "Charging"


@dataclass(slots=True)
class Variable:
    """One variable of the device model (its Actual attribute).

    Attributes:
        value: the value, as OCPP 2.0.1 writes it (a string).
        mutability: ReadOnly, ReadWrite or WriteOnly.
        data_type: integer, boolean, string, MemberList, OptionList, ...
        values_list: the allowed members (MemberList, OptionList).
    """

    value: str
    mutability: str = "ReadWrite"
    data_type: str = "string"
    values_list: tuple[str, ...] = ()

    def accepts(self, value: str) -> bool:
        """Whether ``value`` fits the variable's data type."""
        if self.data_type == "integer":
            return value.lstrip("-").isdigit()
        if self.data_type == "boolean":
            return value in ("true", "false")
        if self.data_type == "OptionList":
            return value in self.values_list
        if self.data_type == "MemberList":
            return all(member in self.values_list for member in value.split(",") if member)
        return len(value) <= 2500


MEASURANDS: Final = (
    "Energy.Active.Import.Register",
    "Power.Active.Import",
)


@dataclass(slots=True)
class DeviceModel:
    """The charger's device model: (component, variable) to :class:`Variable`."""

    variables: dict[VariableKey, Variable] = field(default_factory=dict)

    @classmethod
    def of_charger(cls, charger_id: str, vendor: str, model: str, evses: int) -> DeviceModel:
        """The device model of a simulated charger with ``evses`` EVSEs."""
        measurands = ("MemberList", MEASURANDS)
        variables: dict[VariableKey, Variable] = {
            ("ChargingStation", "Model"): Variable(model, "ReadOnly"),
            ("ChargingStation", "VendorName"): Variable(vendor, "ReadOnly"),
            ("ChargingStation", "AvailabilityState"): Variable("Available", "ReadOnly"),
            ("EVSE", "Count"): Variable(str(evses), "ReadOnly", "integer"),
            ("OCPPCommCtrlr", "HeartbeatInterval"): Variable("300", data_type="integer"),
            ("OCPPCommCtrlr", "NetworkProfileConnectionAttempts"): Variable("3", "ReadOnly"),
            ("SampledDataCtrlr", "TxUpdatedInterval"): Variable("60", data_type="integer"),
            ("SampledDataCtrlr", "TxUpdatedMeasurands"): Variable(
                MEASURANDS[0], "ReadWrite", *measurands
            ),
            ("SampledDataCtrlr", "TxEndedMeasurands"): Variable(
                MEASURANDS[0], "ReadWrite", *measurands
            ),
            ("TxCtrlr", "EVConnectionTimeOut"): Variable("60", data_type="integer"),
            ("TxCtrlr", "TxStartPoint"): Variable("PowerPathClosed", "ReadOnly", "MemberList"),
            ("TxCtrlr", "TxStopPoint"): Variable(
                "EVConnected,Authorized", "ReadOnly", "MemberList"
            ),
            ("AuthCtrlr", "AuthorizeRemoteStart"): Variable("false", "ReadOnly", "boolean"),
            ("DisplayMessageCtrlr", "Available"): Variable("true", "ReadOnly", "boolean"),
            ("DisplayMessageCtrlr", "DisplayMessages"): Variable("10", "ReadOnly", "integer"),
            ("SecurityCtrlr", "Identity"): Variable(charger_id, "ReadOnly"),
            ("SecurityCtrlr", "SecurityProfile"): Variable("1", "ReadOnly", "integer"),
            ("SecurityCtrlr", "BasicAuthPassword"): Variable("", "WriteOnly"),
        }
        return cls(variables)

    def get(self, component: str, variable: str) -> str:
        """A variable's value.

        Raises:
            KeyError: the device model has no such variable.
        """
        return self.variables[(component, variable)].value

    def set(self, component: str, variable: str, value: str) -> None:
        """Set a variable's value (whatever its mutability: the charger's own doing)."""
        self.variables[(component, variable)].value = value

    def knows_component(self, component: str) -> bool:
        """Whether any variable belongs to ``component``."""
        return any(name == component for name, _ in self.variables)
