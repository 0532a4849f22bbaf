"""OCPP 1.6 LocalAuthListManagement: SendLocalList and GetLocalListVersion.

An accepted entry goes with ``idTagInfo`` status ``Accepted``; a removed one (differential
updates only) goes without ``idTagInfo``, which is how OCPP 1.6 says "drop this idTag". A
charger answering ``listVersion`` -1 has the local list disabled (``NOT_SUPPORTED``). The
answer statuses map as every command's do: ``Failed`` and ``VersionMismatch`` are ``REJECTED``
with that detail, ``NotSupported`` is ``NOT_SUPPORTED``.

:class:`LocalList16` is a part of :class:`~ocpp_server.v16.commands.Ocpp16Commands` and
implements :class:`strom_core.ports.local_list.LocalAuthList`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ocpp_server._connection import OutcomeKind
from ocpp_server.commands import VersionCommands, command_result
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.local_list import ListEntry, ListUpdate, ListVersion

__all__ = ["LocalList16", "send_local_list_payload"]

_DISABLED = -1


def send_local_list_payload(
    version: int, update: ListUpdate, entries: Sequence[ListEntry]
) -> dict[str, Any]:
    """SendLocalList.req for an update.

    Raises:
        ValueError: a removal in a full update (a full list only lists what stays).
    """
    listed: list[dict[str, Any]] = []
    for entry in entries:
        if entry.accepted:
            listed.append({"idTag": entry.id_tag, "idTagInfo": {"status": "Accepted"}})
        elif update is ListUpdate.FULL:
            raise ValueError(f"a full list cannot remove {entry.id_tag!r}")
        else:
            listed.append({"idTag": entry.id_tag})
    payload: dict[str, Any] = {"listVersion": version, "updateType": update.value}
    if listed:
        payload["localAuthorizationList"] = listed
    return payload


class LocalList16(VersionCommands):
    """The LocalAuthListManagement commands of the OCPP 1.6 command set."""

    async def local_list_version(self, charger_id: str) -> ListVersion:
        """GetLocalListVersion (-1, a disabled list, is ``NOT_SUPPORTED``)."""
        outcome = await self._call(charger_id, "GetLocalListVersion", {})
        if outcome.kind != OutcomeKind.ANSWERED:
            return ListVersion(command_result(outcome))
        version = int(outcome.payload["listVersion"])
        if version <= _DISABLED:
            return ListVersion(CommandResult(CommandStatus.NOT_SUPPORTED, "local list disabled"))
        return ListVersion(CommandResult(CommandStatus.ACCEPTED), version)

    async def send_local_list(
        self, charger_id: str, version: int, update: ListUpdate, entries: Sequence[ListEntry]
    ) -> CommandResult:
        """SendLocalList (a removal in a full update is ``REJECTED``, nothing sent)."""
        try:
            payload = send_local_list_payload(version, update, entries)
        except ValueError as exc:
            return CommandResult(CommandStatus.REJECTED, str(exc))
        return await self._command(charger_id, "SendLocalList", payload)
