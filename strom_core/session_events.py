"""What happens to a charging session: the events :func:`strom_core.session.apply` takes.

Each event is a frozen record of one fact (a payment settled, a meter reading, a stop asked
for). An event that can be delivered twice carries a ``key``; a session remembers the keys it
has applied, so a repeated delivery changes nothing (see :mod:`strom_core.session`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from strom_core.fiat import FiatRate

__all__ = [
    "LOST_KEY",
    "RESERVATION_END_KEY",
    "RESERVE_ANSWER_KEY",
    "STOP_KEY",
    "Event",
    "InvoiceExpired",
    "MeterReading",
    "PaymentSettled",
    "PowerLimited",
    "RefundClaimed",
    "RefundFailed",
    "RefundPaid",
    "RemoteStartAccepted",
    "RemoteStartRejected",
    "ReservationAccepted",
    "ReservationAuthorized",
    "ReservationExpired",
    "ReservationRejected",
    "StartAuthorized",
    "StartRequested",
    "StartTimedOut",
    "StopReason",
    "StopRequested",
    "TopUpSettled",
    "TransactionLost",
    "TransactionStarted",
    "TransactionStopped",
    "VehicleCharging",
    "VehicleIdle",
    "stop_reason_text",
]


class StopReason(enum.StrEnum):
    """Who or what asked a session to stop."""

    INITIATOR = "initiator"
    BUDGET = "budget"
    CHARGER = "charger"
    ADMIN = "admin"
    # The charger no longer has the transaction (it rebooted without it) and sent no
    # StopTransaction within the grace period: ended by Strom, billed up to the last reading.
    CHARGER_LOST = "charger_lost"
    # A roaming partner's streaming session: an interval invoice was not paid by its due time.
    INTERVAL_UNPAID = "interval_invoice_unpaid"


_STOP_REASON_TEXT: dict[str, str] = {
    StopReason.INITIATOR: "stopped by you",
    StopReason.BUDGET: "the budget was used up",
    StopReason.CHARGER: "stopped at the charger",
    StopReason.ADMIN: "stopped by the operator",
    StopReason.INTERVAL_UNPAID: "stopped: an interval invoice was unpaid at its due time",
    StopReason.CHARGER_LOST: (
        "the charger restarted and lost the session; billed up to its last reading"
    ),
}


def stop_reason_text(reason: str) -> str:
    """Why a session stopped, in words for its driver (a reason given by a charger as is)."""
    return _STOP_REASON_TEXT.get(reason, reason)


@dataclass(frozen=True, slots=True)
class PaymentSettled:
    """The session's first invoice was paid.

    ``at`` is when it settled (the shell's clock); a reservation runs from then.
    """

    payment_hash: str
    amount_msat: int
    at: datetime | None = None

    @property
    def key(self) -> str:
        return f"pay:{self.payment_hash}"


@dataclass(frozen=True, slots=True)
class TopUpSettled:
    """A further invoice for the same session was paid."""

    payment_hash: str
    amount_msat: int

    @property
    def key(self) -> str:
        return f"pay:{self.payment_hash}"


@dataclass(frozen=True, slots=True)
class InvoiceExpired:
    """The first invoice expired unpaid."""

    key: str = "invoice-expired"


@dataclass(frozen=True, slots=True)
class RemoteStartAccepted:
    """The charger accepted RemoteStartTransaction."""

    key: str = "remote-start-accepted"


@dataclass(frozen=True, slots=True)
class RemoteStartRejected:
    """The charger rejected RemoteStartTransaction, or was offline."""

    reason: str
    key: str = "remote-start-rejected"


@dataclass(frozen=True, slots=True)
class StartTimedOut:
    """No transaction started within the configured time (no vehicle plugged in)."""

    key: str = "start-timeout"


RESERVE_ANSWER_KEY = "reserve-answer"
RESERVATION_END_KEY = "reservation-end"


@dataclass(frozen=True, slots=True)
class ReservationAccepted:
    """The charger accepted ReserveNow: it holds the connector for the session's idTag."""

    key: str = RESERVE_ANSWER_KEY


@dataclass(frozen=True, slots=True)
class ReservationRejected:
    """The charger refused ReserveNow (Occupied, Faulted, Unavailable, Rejected) or was offline.

    Strom could not reserve, so nothing of the fee is kept. Shares its key with
    :class:`ReservationAccepted`: only the charger's first answer counts.
    """

    reason: str
    key: str = RESERVE_ANSWER_KEY


@dataclass(frozen=True, slots=True)
class ReservationExpired:
    """The reservation's time ran out before the payer started (the durable expiry timer)."""

    key: str = RESERVATION_END_KEY


@dataclass(frozen=True, slots=True)
class StartRequested:
    """The payer of a reserved session arrived and asks to start charging.

    ``id_tag``: the idTag the connector is reserved for when it is not the session's own (a
    roaming partner's token, :class:`ReservationAuthorized`); the RemoteStart carries it, so
    the charger lets the start through its reservation. Empty: the session's idTag.
    """

    id_tag: str = ""
    key: str = "start-request"


@dataclass(frozen=True, slots=True)
class ReservationAuthorized:
    """A post-paid reservation's payer asks Strom to hold the connector until ``until``.

    A roaming partner's reservation (OCPI RESERVE_NOW): its session is created ``PAID`` with
    the partner as payer and ``reserve_minutes``; this event makes it ``RESERVED`` until
    ``until`` (aware UTC) and sends ReserveNow for ``id_tag``, the idTag the driver will
    present (the partner's token uid), not the session's own. Applied once.
    """

    until: datetime
    id_tag: str
    key: str = "reservation-authorized"


@dataclass(frozen=True, slots=True)
class StartAuthorized:
    """A post-paid session's payer asks Strom to start it at the charger (RemoteStart).

    A roaming partner's remote start (OCPI START_SESSION): its session is created ``PAID``
    with the partner as payer, like a card's, and this event asks the charger to start, by the
    same RemoteStart and start timer as a paid session's first payment. Applied once.
    """

    key: str = "start-authorized"


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    """The charger started the session's transaction."""

    transaction_id: int
    meter_start_wh: int
    at: datetime

    @property
    def key(self) -> str:
        return f"tx-start:{self.transaction_id}"


@dataclass(frozen=True, slots=True)
class MeterReading:
    """An energy register sample for the session's transaction."""

    register_wh: int
    at: datetime
    key: None = None


@dataclass(frozen=True, slots=True)
class PowerLimited:
    """The charger accepted a lower power for the session (a limit it will not exceed).

    Only a limit the charger accepted is an event: the budget stop plans with the session's
    power, and a limit the charger ignores would make it stop too late. The session's power
    only ever goes down (the least of every limit), so a repeat changes nothing.
    """

    limit_w: int
    key: None = None


@dataclass(frozen=True, slots=True)
class VehicleIdle:
    """The charger reports the car finished but still plugged (the idle fee may run).

    OCPP 1.6 StatusNotification ``SuspendedEV`` or ``Finishing`` during the transaction;
    2.0.1 the same ``chargingState`` / connector status. A repeat changes nothing.
    """

    at: datetime
    key: None = None


@dataclass(frozen=True, slots=True)
class VehicleCharging:
    """The car draws again (status ``Charging``): a running idle period ends at ``at``."""

    at: datetime
    key: None = None


STOP_KEY = "stop"


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Someone asks the session to stop (the initiator, the budget, the operator)."""

    reason: StopReason
    key: str = STOP_KEY


@dataclass(frozen=True, slots=True)
class TransactionStopped:
    """The charger ended the transaction (StopTransaction)."""

    meter_stop_wh: int
    at: datetime
    reason: str = ""
    key: str = "tx-stop"
    # The fresh exchange rates at the stop, for a tariff converted at billing
    # (strom_core.fiat); empty: none fresh, or none needed.
    rates: tuple[FiatRate, ...] = ()


LOST_KEY = "tx-lost"


@dataclass(frozen=True, slots=True)
class TransactionLost:
    """The charger no longer has the session's transaction and sent no StopTransaction for it.

    Delivered by the orphan check (:mod:`strom_services.orphans`) when the charger showed no
    transaction on the connector for the whole grace period. The session ends billed up to
    the last register the charger reported, never more.
    """

    transaction_id: int
    key: str = LOST_KEY
    rates: tuple[FiatRate, ...] = ()  # as for TransactionStopped


@dataclass(frozen=True, slots=True)
class RefundClaimed:
    """The payer claimed ``amount_msat`` of the refundable balance; it is now in flight."""

    refund_id: str
    amount_msat: int

    @property
    def key(self) -> str:
        return f"refund-claim:{self.refund_id}"


@dataclass(frozen=True, slots=True)
class RefundPaid:
    """The refund payment definitely succeeded."""

    refund_id: str
    fee_msat: int = 0

    @property
    def key(self) -> str:
        return f"refund-paid:{self.refund_id}"


@dataclass(frozen=True, slots=True)
class RefundFailed:
    """The refund payment definitely failed; the amount becomes claimable again."""

    refund_id: str
    reason: str = ""

    @property
    def key(self) -> str:
        return f"refund-failed:{self.refund_id}"


Event = (
    PaymentSettled
    | TopUpSettled
    | InvoiceExpired
    | RemoteStartAccepted
    | RemoteStartRejected
    | ReservationAccepted
    | ReservationRejected
    | ReservationExpired
    | StartRequested
    | StartAuthorized
    | ReservationAuthorized
    | StartTimedOut
    | TransactionStarted
    | MeterReading
    | PowerLimited
    | VehicleIdle
    | VehicleCharging
    | StopRequested
    | TransactionStopped
    | TransactionLost
    | RefundClaimed
    | RefundPaid
    | RefundFailed
)
