"""Named places where a test can make Strom die, as a power cut or ``kill -9`` would.

The crash harness (``tests/crash/``) starts ``strom run`` with ``STROM_CRASH_AT=<name>[:<n>]``;
the process then kills itself with SIGKILL the *n*-th time (default: the first) it passes that
point, without running any cleanup. Unset, a crash point is one dictionary-free comparison.

The generic points ``db.before_commit`` and ``db.after_commit`` sit in every write transaction,
so ``db.before_commit:7`` dies with the 7th write of the run open (it is rolled back) and
``db.after_commit:7`` dies just after it is durable, before anything acts on it. The others name
the moments the money rules are about.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crashpoint"]

POINTS = (
    "db.before_commit",  # a write transaction is about to commit
    "db.after_commit",  # a write transaction has committed; nothing has acted on it yet
    "session.after_open",  # a new session and its invoice are committed; nothing answered yet
    "effect.before_done",  # an outbox effect ran; it is not yet marked done
    "refund.before_pay",  # the refund is debited and marked paying; pay_invoice not called
    "refund.after_pay",  # pay_invoice answered; the answer is not yet recorded
    "ocpp.before_reply",  # a charger's CALL is recorded; the answer is not yet sent
    "orphan.armed",  # a lost-transaction check is queued (with the status that raised it)
    "orphan.before_end",  # the check found the transaction lost; the session is not yet ended
    "reservation.after_reserved",  # a reservation's payment is committed RESERVED; nothing ran
    "reservation.before_reserve_now",  # ReserveNow is about to be sent
    "reservation.after_reserve_now",  # the charger answered ReserveNow; the answer not recorded
    "reservation.after_expiry",  # the expiry is committed; CancelReservation not yet sent
    "reservation.before_cancel",  # CancelReservation is about to be sent
    "reservation.after_cancel",  # the charger answered CancelReservation; not marked done
)


def _target(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    name, _, nth = value.partition(":")
    if name not in POINTS:
        raise ValueError(f"STROM_CRASH_AT: unknown crash point {name!r}; known: {POINTS}")
    return name, int(nth or 1)


_TARGET = _target(os.environ.get("STROM_CRASH_AT"))
_TRACE = os.environ.get("STROM_CRASH_TRACE")  # a file: every pass is appended (calibration)
_hits = 0


def crashpoint(name: str) -> None:
    """Die here (SIGKILL) if this is the configured point and its n-th pass."""
    global _hits
    if _TRACE:
        with open(_TRACE, "a") as trace:
            trace.write(name + "\n")
    if _TARGET is None or _TARGET[0] != name:
        return
    _hits += 1
    if _hits == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
