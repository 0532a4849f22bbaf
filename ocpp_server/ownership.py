"""Which Strom process owns a charger: the seams the OCPP server offers a cluster.

Theory of operation
-------------------
One Strom process has every charger it has: :data:`SOLE_OWNER` (the default) claims nothing and
routes nothing, so a charger without a connection here is simply not connected.

Several processes on one PostgreSQL (:mod:`ocpp_server.cluster`) each hold the websockets of
some chargers. A process that admits a charger's connection *claims* it (takes the charger's
lease over, whoever held it) before serving it, and *releases* it when that connection ends;
when it learns it lost the lease (the heartbeat could not renew it, or another process took it
over) it is told through the listener given to :meth:`ChargerOwnership.on_lost`, and the server
closes that connection at once: a process never commands a charger whose lease it lost.

A command for a charger without a live connection here goes to :class:`Elsewhere`, which finds
the process holding it and sends the command there; no owner anywhere is ``OFFLINE``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from strom_core.ports import NO_SCREEN, ScreenCapabilities

__all__ = [
    "SOLE_OWNER",
    "ChargerOwnership",
    "Elsewhere",
    "Located",
    "SoleOwner",
]


class ChargerOwnership(Protocol):
    """Claims and releases chargers as their connections come and go in this process."""

    async def claim(self, charger_id: str, subprotocol: str) -> None:
        """A connection of ``charger_id`` speaking ``subprotocol`` was admitted here.

        Raises:
            Exception: the claim could not be recorded (the database is down); the server
                closes the connection and the charger connects again.
        """
        ...

    async def release(self, charger_id: str) -> None:
        """The connection that claimed ``charger_id`` ended; never raises."""
        ...

    def on_lost(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the charger id of every charger whose claim was lost."""
        ...


class SoleOwner:
    """One process: every charger connected here is its own, nothing is ever lost."""

    async def claim(self, charger_id: str, subprotocol: str) -> None:
        """Nothing to record."""

    async def release(self, charger_id: str) -> None:
        """Nothing to release."""

    def on_lost(self, listener: Callable[[str], None]) -> None:
        """No claim is ever lost."""


SOLE_OWNER: Final = SoleOwner()


@dataclass(frozen=True, slots=True)
class Located:
    """What this process knows of a charger connected to another one.

    Attributes:
        owner: the process id holding it.
        subprotocol: the OCPP version its connection speaks, if known yet.
        screen: what its screen can show (nothing when unknown).
        lacking: the 1.6 feature profiles it reported without (empty when unknown).
    """

    owner: str
    subprotocol: str | None = None
    screen: ScreenCapabilities = NO_SCREEN
    lacking: frozenset[str] = frozenset()


class Elsewhere(Protocol):
    """Chargers connected to other processes, and commands to them."""

    def located(self, charger_id: str) -> Located | None:
        """Where the charger is connected, as last heard (None: nowhere else, as known)."""
        ...

    def proxy(self, charger_id: str) -> object:
        """An object with every command method of every port, sent to the charger's owner.

        It finds the owner afresh when needed and answers ``OFFLINE`` when there is none.
        """
        ...
