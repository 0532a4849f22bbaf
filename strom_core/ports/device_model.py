"""The OCPP 2.0.1 device model as the cockpit sees it: variables read, set and reported.

An OCPP 2.0.1 station describes itself as components (``OCPPCommCtrlr``, ``EVSE`` ...) holding
variables (``HeartbeatInterval`` ...); GetVariables and SetVariables address one by component
and variable (with optional instances and EVSE), and every variable gets its own status
(``Accepted``, ``Rejected``, ``UnknownComponent``, ``UnknownVariable``,
``NotSupportedAttributeType``, ``RebootRequired``). GetBaseReport asks for the whole inventory,
which arrives in NotifyReport messages the OCPP server keeps per charger. OCPP 1.6 has no such
model (its configuration is flat keys).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from strom_core.ports.chargers import CommandResult

__all__ = [
    "BASE_REPORTS",
    "DeviceModelCommands",
    "VariableResult",
    "VariableSetting",
    "VariablesResult",
]

BASE_REPORTS: Final = frozenset({"ConfigurationInventory", "FullInventory", "SummaryInventory"})


@dataclass(frozen=True, slots=True)
class VariableSetting:
    """A device-model variable to read or set: component, variable, and a value to set."""

    component: str
    variable: str
    value: str = ""
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None

    def address(self) -> dict[str, Any]:
        """The ``component`` and ``variable`` objects of the request."""
        component: dict[str, Any] = {"name": self.component}
        if self.component_instance is not None:
            component["instance"] = self.component_instance
        if self.evse_id is not None:
            component["evse"] = {"id": self.evse_id}
        variable: dict[str, Any] = {"name": self.variable}
        if self.variable_instance is not None:
            variable["instance"] = self.variable_instance
        return {"component": component, "variable": variable}


@dataclass(frozen=True, slots=True)
class VariableResult:
    """One variable's answer: its status (``Accepted``, ``UnknownVariable``...) and value."""

    component: str
    variable: str
    status: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class VariablesResult:
    """GetVariables/SetVariables: the command result and one result per variable."""

    result: CommandResult
    variables: tuple[VariableResult, ...] = ()


class DeviceModelCommands(Protocol):
    """GetVariables, SetVariables and GetBaseReport to a charger speaking OCPP 2.0.1."""

    async def get_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """GetVariables (Actual values) for some variables."""
        ...

    async def set_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """SetVariables (Actual values); each variable's status says whether it was taken."""
        ...

    async def get_base_report(
        self, charger_id: str, report: str = "FullInventory"
    ) -> CommandResult:
        """GetBaseReport; the answers arrive as NotifyReport and are kept per charger.

        Raises:
            ValueError: for a report base OCPP 2.0.1 does not define.
        """
        ...
