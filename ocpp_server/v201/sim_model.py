"""What the simulated OCPP 2.0.1 charge point keeps: its EVSEs and its device model.

:class:`EvseState` is one EVSE (with its one connector) as the charger keeps it: the connector
status it reports (Available, Occupied, Unavailable, Faulted), and for a transaction its own
``transactionId``, the next ``seqNo``, the ``chargingState`` and the ``remoteStartId`` it
echoes. :class:`DeviceModel` is the small device model GetVariables, SetVariables and
GetBaseReport work on: components and variables with a value, a mutability and a data type.
A variable with an instance (``TariffCostCtrlr.Available[Cost]``) is kept under the name
``Available[Cost]`` (:func:`variable_name`). What the screen offers follows the options:
``DisplayMessageCtrlr`` (with ``SupportedFormats``, URI among them for QR codes) and
``TariffCostCtrlr`` (running cost, in its ``Currency``) are reported only when enabled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from ocpp_server.sim_model import ConnectorState

__all__ = [
    "DeviceModel",
    "EvseState",
    "Variable",
    "VariableKey",
    "split_variable_name",
    "variable_name",
]

VariableKey = tuple[str, str]
"""(component name, variable name); an instance is part of the name (:func:`variable_name`)."""


def variable_name(name: str, instance: str | None = None) -> str:
    """The device model's key name of a variable and its instance (``Available[Cost]``)."""
    return name if instance is None else f"{name}[{instance}]"


def split_variable_name(key_name: str) -> tuple[str, str | None]:
    """The variable name and instance of a key name (the inverse of :func:`variable_name`)."""
    name, bracket, instance = key_name.partition("[")
    return (name, instance.rstrip("]")) if bracket else (name, None)


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
    def of_charger(
        cls,
        charger_id: str,
        vendor: str,
        model: str,
        evses: int,
        *,
        screen: bool = True,
        qr_codes: bool = True,
        running_cost: bool = True,
    ) -> DeviceModel:
        """The device model of a simulated charger with ``evses`` EVSEs.

        Args:
            charger_id: its identity (SecurityCtrlr.Identity).
            vendor: ChargingStation.VendorName.
            model: ChargingStation.Model.
            evses: EVSE.Count.
            screen: it has a screen for display messages (DisplayMessageCtrlr).
            qr_codes: the screen shows URI messages as QR codes (``URI`` in SupportedFormats).
            running_cost: it shows the cost the central system tells (TariffCostCtrlr, in
                the currency ``EUR`` until set otherwise).
        """
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
            ("SecurityCtrlr", "Identity"): Variable(charger_id, "ReadOnly"),
            ("SecurityCtrlr", "SecurityProfile"): Variable("1", "ReadOnly", "integer"),
            ("SecurityCtrlr", "BasicAuthPassword"): Variable("", "WriteOnly"),
        }
        if screen:
            formats = ("ASCII", "UTF8", "URI") if qr_codes else ("ASCII", "UTF8")
            variables |= {
                ("DisplayMessageCtrlr", "Available"): Variable("true", "ReadOnly", "boolean"),
                ("DisplayMessageCtrlr", "Enabled"): Variable("true", "ReadOnly", "boolean"),
                ("DisplayMessageCtrlr", "DisplayMessages"): Variable("10", "ReadOnly", "integer"),
                ("DisplayMessageCtrlr", "SupportedFormats"): Variable(
                    ",".join(formats), "ReadOnly", "MemberList", formats
                ),
            }
        if running_cost:
            variables |= {
                ("TariffCostCtrlr", variable_name("Available", "Cost")): Variable(
                    "true", "ReadOnly", "boolean"
                ),
                ("TariffCostCtrlr", variable_name("Enabled", "Cost")): Variable(
                    "true", data_type="boolean"
                ),
                ("TariffCostCtrlr", "Currency"): Variable("EUR"),
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
