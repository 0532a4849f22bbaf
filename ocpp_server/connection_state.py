"""The lifecycle of one charger connection, as a single transition table.

Theory of operation: each websocket connection of a charger has a state. The async shell
(``ocpp_server._connection``) feeds it events and executes the effects the table returns, in
order; nothing else changes the state. An event that is not in the table for the current state
raises :class:`strom_core.errors.IllegalTransition` and changes nothing.

::

    DISCONNECTED --opened--> CONNECTED --boot accepted--> ACCEPTED --boot accepted--> ACCEPTED
         |                     |                              ^   (a reboot: configure again)
         |                     +--backstop due--> BOOT_REQUESTED --boot accepted--+
         +--opened unregistered--> PENDING_APPROVAL --boot pending--> PENDING_APPROVAL
    any open state --closed | silent | replaced | approved | lease lost--> DISCONNECTED

* CONNECTED: a configured charger opened a websocket. It may not have rebooted (a charger that
  only lost its network resumes without BootNotification), so every message is served. If no
  BootNotification arrives within the backstop delay the shell asks for one
  (TriggerMessage BootNotification), to learn the firmware and to configure the charger.
* ACCEPTED: BootNotification answered Accepted; the charger is configured (meter sampling) and
  asked for its connector status and meter values.
* PENDING_APPROVAL: an unknown charger, admitted only because auto-registration is on. It gets
  BootNotification Pending and nothing else: every other request is refused with SecurityError
  until an operator configures it; it is then disconnected to come back with credentials.
* DISCONNECTED: final for this connection. ``replaced`` (a newer connection of the same charger
  won), ``lease lost`` (in a cluster, this process no longer holds the charger's lease: another
  process took it over, or it could not be renewed) and ``silent`` close the socket; only a
  known charger going away publishes ChargerOffline, once (not on ``replaced`` nor ``lease
  lost``: the charger is, or is about to be, online through another connection).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

from strom_core.errors import IllegalTransition

__all__ = [
    "ConnectionEvent",
    "ConnectionState",
    "Effect",
    "may_handle",
    "transition",
]


class ConnectionState(enum.Enum):
    """Where one charger connection is in its lifecycle."""

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    BOOT_REQUESTED = "boot_requested"
    ACCEPTED = "accepted"
    PENDING_APPROVAL = "pending_approval"


class ConnectionEvent(enum.Enum):
    """What happens to a connection."""

    OPENED = "opened"  # a configured charger authenticated
    OPENED_UNREGISTERED = "opened_unregistered"  # an unknown charger, auto-registration on
    BOOT_ACCEPTED = "boot_accepted"
    BOOT_PENDING = "boot_pending"
    BACKSTOP_DUE = "backstop_due"  # connected for the backstop delay without BootNotification
    SILENT = "silent"  # nothing received for 2.5 heartbeat intervals
    CLOSED = "closed"  # the socket closed (either side)
    REPLACED = "replaced"  # a newer connection of the same charger won
    APPROVED = "approved"  # a pending charger is now configured: it must reconnect with auth
    LEASE_LOST = "lease_lost"  # a cluster: another process holds the charger now


class Effect(enum.Enum):
    """What the shell must do after a transition, in the order given."""

    PUBLISH_ONLINE = "publish_online"
    CONFIGURE = "configure"  # ChangeConfiguration sampling, then TriggerMessage status/meter
    TRIGGER_BOOT = "trigger_boot"  # TriggerMessage BootNotification
    FAIL_PENDING_CALLS = "fail_pending_calls"  # commands awaiting an answer end now
    PUBLISH_OFFLINE_CLOSED = "publish_offline_closed"
    PUBLISH_OFFLINE_SILENT = "publish_offline_silent"
    CLOSE_SOCKET = "close_socket"


_S = ConnectionState
_E = ConnectionEvent
_F = Effect

_LIVE_KNOWN: Final = (_S.CONNECTED, _S.BOOT_REQUESTED, _S.ACCEPTED)

_TABLE: dict[tuple[ConnectionState, ConnectionEvent], tuple[ConnectionState, tuple[Effect, ...]]]
_TABLE = {
    (_S.DISCONNECTED, _E.OPENED): (_S.CONNECTED, (_F.PUBLISH_ONLINE,)),
    (_S.DISCONNECTED, _E.OPENED_UNREGISTERED): (_S.PENDING_APPROVAL, ()),
    (_S.CONNECTED, _E.BACKSTOP_DUE): (_S.BOOT_REQUESTED, (_F.TRIGGER_BOOT,)),
    (_S.PENDING_APPROVAL, _E.BOOT_PENDING): (_S.PENDING_APPROVAL, ()),
    (_S.PENDING_APPROVAL, _E.APPROVED): (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.CLOSE_SOCKET),
    ),
    (_S.PENDING_APPROVAL, _E.SILENT): (_S.DISCONNECTED, (_F.FAIL_PENDING_CALLS, _F.CLOSE_SOCKET)),
    (_S.PENDING_APPROVAL, _E.CLOSED): (_S.DISCONNECTED, (_F.FAIL_PENDING_CALLS,)),
    (_S.PENDING_APPROVAL, _E.REPLACED): (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.CLOSE_SOCKET),
    ),
    # After a silent/replaced/approved disconnect the socket still reports its closing.
    (_S.DISCONNECTED, _E.CLOSED): (_S.DISCONNECTED, ()),
}
for _state in _LIVE_KNOWN:
    _TABLE[(_state, _E.BOOT_ACCEPTED)] = (_S.ACCEPTED, (_F.CONFIGURE,))
    _TABLE[(_state, _E.SILENT)] = (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.PUBLISH_OFFLINE_SILENT, _F.CLOSE_SOCKET),
    )
    _TABLE[(_state, _E.CLOSED)] = (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.PUBLISH_OFFLINE_CLOSED),
    )
    # The charger is still online through its newer connection: no ChargerOffline.
    _TABLE[(_state, _E.REPLACED)] = (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.CLOSE_SOCKET),
    )
    # Another process holds the charger (or will, once it reconnects): no ChargerOffline from
    # here, which could land after that process's ChargerOnline.
    _TABLE[(_state, _E.LEASE_LOST)] = (
        _S.DISCONNECTED,
        (_F.FAIL_PENDING_CALLS, _F.CLOSE_SOCKET),
    )

TRANSITIONS: Final[
    Mapping[tuple[ConnectionState, ConnectionEvent], tuple[ConnectionState, tuple[Effect, ...]]]
] = _TABLE


def transition(
    state: ConnectionState, event: ConnectionEvent
) -> tuple[ConnectionState, tuple[Effect, ...]]:
    """Apply ``event`` to ``state``.

    Returns:
        The new state and the effects to execute, in order.

    Raises:
        IllegalTransition: the event is not allowed in ``state``.
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state.value, event.value) from None


# Requests a charger held for approval may send (OCPP 1.6 BootNotification: while Pending a charge
# point sends BootNotification again after the interval and nothing else on its own).
_PENDING_ALLOWED: Final = frozenset({"BootNotification", "Heartbeat"})


def may_handle(state: ConnectionState, action: str) -> bool:
    """Whether a request ``action`` from the charger is served in ``state``."""
    if state is ConnectionState.PENDING_APPROVAL:
        return action in _PENDING_ALLOWED
    return state is not ConnectionState.DISCONNECTED
