"""Local authorization lists routed by the OCPP version a charger speaks (``LocalAuthList``).

A charger's list commands go to the command set of its live connection when that set carries
them (OCPP 1.6: :mod:`ocpp_server.v16.local_list`); a version whose set does not answers
``NOT_SUPPORTED`` and nothing is sent, and a charger without a live connection ``OFFLINE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ocpp_server.commands import OcppCommands
from strom_core.ports import CommandResult
from strom_core.ports.local_list import ListEntry, ListUpdate, ListVersion, LocalAuthList

__all__ = ["OcppLocalList"]


class OcppLocalList:
    """Local authorization lists of connected chargers, by charger id.

    Args:
        commands: the server's commands, routed by each connection's version.
    """

    def __init__(self, commands: OcppCommands) -> None:
        self._commands = commands

    def _lists(self, charger_id: str) -> LocalAuthList | CommandResult:
        return self._commands.live_capable(charger_id, LocalAuthList, "local list")

    async def local_list_version(self, charger_id: str) -> ListVersion:
        """The version of the list the charger holds."""
        target = self._lists(charger_id)
        if isinstance(target, CommandResult):
            return ListVersion(target)
        return await target.local_list_version(charger_id)

    async def send_local_list(
        self, charger_id: str, version: int, update: ListUpdate, entries: Sequence[ListEntry]
    ) -> CommandResult:
        """Send an update that makes the charger's list ``version``."""
        target = self._lists(charger_id)
        if isinstance(target, CommandResult):
            return target
        return await target.send_local_list(charger_id, version, update, entries)


if TYPE_CHECKING:
    _IS_LOCAL_AUTH_LIST: type[LocalAuthList] = OcppLocalList
