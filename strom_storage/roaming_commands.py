"""Roaming partners' commands: stored until the charger's outcome is known, then posted once.

The SQL of :mod:`strom_core.roaming_commands`. Every function runs in the caller's
transaction. A command ends exactly once (:func:`end_command` updates only an open row), and
the same transaction queues the outbox row that posts the outcome to the partner
(kind :data:`RESULT_KIND`), so an outcome is never lost nor posted for a command that did
not end. Each command also has a timer row (:data:`TIMEOUT_KIND`) that ends it ``TIMEOUT``
if nothing else did first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from strom_core.roaming_commands import (
    CommandKind,
    CommandOutcome,
    Outcome,
    PartnerCommand,
    session_outcome,
    state_outcome,
)
from strom_core.session import State
from strom_core.session_events import Event
from strom_storage.outbox import queue_effect
from strom_storage.schema import ocpi_token_pulls, roaming_commands, sessions

__all__ = [
    "RESULT_KIND",
    "TIMEOUT_KIND",
    "UNLOCK_KIND",
    "end_command",
    "end_session_commands",
    "load_command",
    "open_command",
    "record_token_pull",
    "token_pulled_at",
]

RESULT_KIND = "partner_command_result"  # post the outcome to the partner
TIMEOUT_KIND = "partner_command_timeout"  # end the command TIMEOUT unless it ended
UNLOCK_KIND = "partner_unlock"  # send UnlockConnector (where the charger is connected)


def _command(row: Any) -> PartnerCommand:
    return PartnerCommand(
        id=int(row.id),
        partner_id=row.partner_id,
        kind=CommandKind(row.kind),
        response_url=row.response_url,
        created_at=row.created_at,
        session_id=row.session_id,
        charger_id=row.charger_id,
        connector_id=row.connector_id,
        ended=bool(row.ended),
        result=None if row.result is None else CommandOutcome(row.result),
        message=row.message,
    )


def open_command(
    conn: Connection,
    *,
    partner_id: str,
    kind: CommandKind,
    response_url: str,
    timeout_s: int,
    now: datetime,
    session_id: str | None = None,
    charger_id: str | None = None,
    connector_id: int | None = None,
) -> int:
    """Record a command Strom accepted, arm its timer; for an unlock, queue the unlock.

    A command on a session is recorded just after the session was asked to act, so the
    session's row is locked here and, if it moved already (a fast charger), the command ends
    at once with what its state says (:func:`~strom_core.roaming_commands.state_outcome`).

    Returns:
        The command's id.
    """
    result = conn.execute(
        insert(roaming_commands).values(
            partner_id=partner_id,
            kind=kind.value,
            response_url=response_url,
            session_id=session_id,
            charger_id=charger_id,
            connector_id=connector_id,
            ended=False,
            message="",
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    command_id = int(key[0])
    queue_effect(
        conn,
        key=f"partner-command:{command_id}:timeout",
        kind=TIMEOUT_KIND,
        payload={"command_id": command_id},
        session_id=None,
        now=now,
        delay_s=timeout_s,
    )
    if kind is CommandKind.UNLOCK and charger_id is not None:
        queue_effect(
            conn,
            key=f"partner-command:{command_id}:unlock",
            kind=UNLOCK_KIND,
            payload={"command_id": command_id},
            session_id=None,
            now=now,
            charger_id=charger_id,
        )
    if session_id is not None:
        state = _locked_state(conn, session_id)
        outcome = None if state is None else state_outcome(kind, state)
        if outcome is not None:
            end_command(conn, command_id, outcome, now)
    return command_id


def _locked_state(conn: Connection, session_id: str) -> State | None:
    query = select(sessions.c.state).where(sessions.c.id == session_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).scalar()
    return None if found is None else State(found)


def load_command(conn: Connection, command_id: int) -> PartnerCommand | None:
    """One command, or None."""
    row = conn.execute(select(roaming_commands).where(roaming_commands.c.id == command_id)).first()
    return None if row is None else _command(row)


def end_command(conn: Connection, command_id: int, outcome: Outcome, now: datetime) -> bool:
    """End an open command with ``outcome`` and queue posting it; False if it had ended.

    Returns:
        Whether this call ended it (only then is the post queued).
    """
    changed = conn.execute(
        update(roaming_commands)
        .where(roaming_commands.c.id == command_id, roaming_commands.c.ended.is_(False))
        .values(
            ended=True, result=outcome.result.value, message=outcome.message[:200], ended_at=now
        )
    )
    if not changed.rowcount:
        return False
    queue_effect(
        conn,
        key=f"partner-command:{command_id}:result",
        kind=RESULT_KIND,
        payload={"command_id": command_id},
        session_id=None,
        now=now,
    )
    return True


def end_session_commands(
    conn: Connection, session_id: str, old: State, new: State, event: Event, now: datetime
) -> None:
    """End the session's open commands that this transition answers (in its transaction)."""
    query = select(roaming_commands).where(
        roaming_commands.c.session_id == session_id, roaming_commands.c.ended.is_(False)
    )
    for row in conn.execute(query).all():
        command = _command(row)
        outcome = session_outcome(command.kind, old, new, event)
        if outcome is not None:
            end_command(conn, command.id, outcome, now)


# --- token pulls -----------------------------------------------------------------------------


def token_pulled_at(conn: Connection, partner_id: int) -> datetime | None:
    """When the partner's tokens were last pulled in full (None: never)."""
    query = select(ocpi_token_pulls.c.pulled_at).where(ocpi_token_pulls.c.partner_id == partner_id)
    found: datetime | None = conn.execute(query).scalar()
    return found


def record_token_pull(conn: Connection, partner_id: int, began_at: datetime) -> None:
    """Record a complete pull of the partner's tokens that began at ``began_at``."""
    table = ocpi_token_pulls
    changed = conn.execute(
        update(table).where(table.c.partner_id == partner_id).values(pulled_at=began_at)
    )
    if not changed.rowcount:
        conn.execute(insert(table).values(partner_id=partner_id, pulled_at=began_at))
