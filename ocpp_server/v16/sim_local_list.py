"""The simulated OCPP 1.6 charge point's local authorization list.

It keeps the list (idTag, by its case-folded form, to its status) and its version across
reboots, as a charger keeps it in flash. SendLocalList answers, in this order: ``NotSupported``
when ``LocalAuthListEnabled`` is not ``true``; ``Failed`` when the update has more entries than
``SendLocalListMaxLength`` or the list would grow beyond ``LocalAuthListMaxLength``;
``VersionMismatch`` for a differential update not newer than the list; else ``Accepted``. A
full update replaces the list; a differential one sets the entries with ``idTagInfo`` and drops
those without. GetLocalListVersion answers the version (0: empty), or -1 when the list is
disabled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from ocpp_server.client import Answer

__all__ = ["LOCAL_LIST_CONFIGURATION", "SimulatedLocalList"]

LOCAL_LIST_CONFIGURATION: Final = {
    "LocalAuthListEnabled": "true",
    "LocalAuthListMaxLength": "100",
    "SendLocalListMaxLength": "50",
}


class SimulatedLocalList:
    """The local authorization list of a simulated 1.6 charge point.

    Args:
        configuration: the charge point's configuration keys (read at each CALL).
    """

    def __init__(self, configuration: MutableMapping[str, str]) -> None:
        self._configuration = configuration
        self.version = 0
        self.entries: dict[str, tuple[str, str]] = {}  # folded idTag -> (idTag, status)

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "SendLocalList": self.on_send_local_list,
            "GetLocalListVersion": self.on_get_local_list_version,
        }

    def _enabled(self) -> bool:
        return self._configuration.get("LocalAuthListEnabled", "false").lower() == "true"

    def _limit(self, key: str) -> int:
        return int(self._configuration.get(key, "0"))

    def tags(self) -> list[str]:
        """The idTags on the list, as sent."""
        return sorted(tag for tag, _status in self.entries.values())

    def on_send_local_list(self, payload: Mapping[str, Any]) -> Answer:
        """Replace or change the list (see the module docstring)."""
        if not self._enabled():
            return Answer({"status": "NotSupported"})
        listed = list(payload.get("localAuthorizationList", []))
        if len(listed) > self._limit("SendLocalListMaxLength"):
            return Answer({"status": "Failed"})
        version = int(payload["listVersion"])
        full = payload["updateType"] == "Full"
        if not full and version <= self.version:
            return Answer({"status": "VersionMismatch"})
        entries = {} if full else dict(self.entries)
        for item in listed:
            key = str(item["idTag"]).casefold()
            info = item.get("idTagInfo")
            if info is None:
                entries.pop(key, None)
            else:
                entries[key] = (str(item["idTag"]), str(info["status"]))
        if len(entries) > self._limit("LocalAuthListMaxLength"):
            return Answer({"status": "Failed"})
        self.entries = entries
        self.version = version
        return Answer({"status": "Accepted"})

    def on_get_local_list_version(self, payload: Mapping[str, Any]) -> Answer:
        """The list's version (-1: the list is disabled)."""
        return Answer({"listVersion": self.version if self._enabled() else -1})
