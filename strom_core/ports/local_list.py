"""The charger's local authorization list: the operator's cards kept on the charger itself.

A charger that holds a list of idTags may accept them without asking the central system:
while it is offline, and at once while it is online. Strom writes the operator's cards there
(:mod:`strom_services.local_list`): each card as accepted, and, in a differential update, each
card taken away without any status (the charger drops it).

The list has a version, a number the central system chooses with each update and the charger
keeps. A *full* update replaces the whole list; a *differential* update adds, changes and
removes single entries and only applies on top of an older version (a charger answers a
version mismatch otherwise). Version 0 is the empty list.

OCPP 1.6 calls this the LocalAuthListManagement profile (SendLocalList, GetLocalListVersion);
OCPP 2.0.1 has the same pair. The port is version-neutral: a version that does not implement
it answers ``NOT_SUPPORTED`` and sends nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from strom_core.ports.chargers import CommandResult

__all__ = ["ListEntry", "ListUpdate", "ListVersion", "LocalAuthList"]


class ListUpdate(enum.StrEnum):
    """How an update applies: replacing the list, or changing single entries of it."""

    FULL = "Full"
    DIFFERENTIAL = "Differential"


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One idTag in an update: ``accepted`` on the list, or (not accepted) removed from it.

    Only a differential update carries removals; a full update lists what stays.
    """

    id_tag: str
    accepted: bool = True


@dataclass(frozen=True, slots=True)
class ListVersion:
    """The version of a charger's list (None unless the command was ACCEPTED; 0: empty)."""

    result: CommandResult
    version: int | None = None


@runtime_checkable
class LocalAuthList(Protocol):
    """The local authorization lists of chargers, by charger id. No method raises."""

    async def local_list_version(self, charger_id: str) -> ListVersion:
        """The version of the list the charger holds."""
        ...

    async def send_local_list(
        self, charger_id: str, version: int, update: ListUpdate, entries: Sequence[ListEntry]
    ) -> CommandResult:
        """Send an update that makes the charger's list ``version``.

        A charger that refuses a differential update for its version answers ``REJECTED``
        with the detail ``VersionMismatch``; one that could not apply it ``Failed``.
        """
        ...
