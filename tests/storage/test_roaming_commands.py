"""Partners' commands: each ends once, its result is queued once, a timer ends it otherwise."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import select, update

from strom_core.ports.chargers import CommandResult, CommandStatus
from strom_core.roaming_commands import (
    CommandKind,
    CommandOutcome,
    Outcome,
    session_outcome,
    state_outcome,
    unlock_outcome,
)
from strom_core.session import State
from strom_core.session_events import (
    RemoteStartAccepted,
    RemoteStartRejected,
    StartTimedOut,
    StopRequested,
    TransactionStarted,
)
from strom_storage.db import Database
from strom_storage.roaming_commands import (
    RESULT_KIND,
    TIMEOUT_KIND,
    UNLOCK_KIND,
    end_command,
    end_session_commands,
    load_command,
    open_command,
    record_token_pull,
    token_pulled_at,
)
from strom_storage.schema import outbox, roaming_commands

NOW = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)
START, STOP = CommandKind.START, CommandKind.STOP


@pytest.mark.parametrize(
    ("kind", "old", "new", "event", "result"),
    [
        (START, State.PAID, State.STARTING, RemoteStartAccepted(), CommandOutcome.ACCEPTED),
        (
            START,
            State.PAID,
            State.CHARGING,
            TransactionStarted(7, 0, NOW),
            CommandOutcome.ACCEPTED,
        ),
        (START, State.PAID, State.START_FAILED, RemoteStartRejected("Rejected"), "REJECTED"),
        (START, State.PAID, State.START_FAILED, StartTimedOut(), CommandOutcome.TIMEOUT),
        (START, State.STARTING, State.START_FAILED, StartTimedOut(), CommandOutcome.FAILED),
        (START, State.PAID, State.START_FAILED, StopRequested("initiator"), "FAILED"),
        (START, State.CHARGING, State.STOPPING, StopRequested("initiator"), None),
        (STOP, State.CHARGING, State.STOPPING, StopRequested("initiator"), None),
        (STOP, State.STOPPING, State.CLOSED, RemoteStartAccepted(), CommandOutcome.ACCEPTED),
        (STOP, State.PAID, State.START_FAILED, StopRequested("initiator"), "ACCEPTED"),
    ],
)
def test_which_transition_ends_which_command(
    kind: CommandKind, old: State, new: State, event: object, result: str | None
) -> None:
    outcome = session_outcome(kind, old, new, event)  # type: ignore[arg-type]
    assert (None if outcome is None else outcome.result) == result


def test_a_command_recorded_late_reads_its_outcome_from_the_state() -> None:
    assert state_outcome(START, State.PAID) is None
    started = state_outcome(START, State.CLOSED)
    assert started is not None
    assert started.result is CommandOutcome.ACCEPTED
    assert state_outcome(STOP, State.STOPPING) is None
    assert unlock_outcome(CommandResult(CommandStatus.OFFLINE)) is None
    refused = unlock_outcome(CommandResult(CommandStatus.REJECTED, "UnlockFailed"))
    assert refused == Outcome(CommandOutcome.REJECTED, "UnlockFailed")


async def kinds(db: Database) -> list[str]:
    query = select(outbox.c.kind).order_by(outbox.c.id)
    return list(await db.read(lambda conn: conn.execute(query).scalars().all()))


async def test_a_command_ends_once_and_its_result_is_queued_once(db: Database) -> None:
    work = partial(
        open_command,
        partner_id="3",
        kind=CommandKind.UNLOCK,
        response_url="https://e.example/cb/1",
        timeout_s=60,
        now=NOW,
        charger_id="cp-1",
        connector_id=1,
    )
    command_id = await db.write(work)
    assert await kinds(db) == [TIMEOUT_KIND, UNLOCK_KIND]
    ended = Outcome(CommandOutcome.ACCEPTED, "unlocked")
    assert await db.write(partial(end_command, command_id=command_id, outcome=ended, now=NOW))
    late = Outcome(CommandOutcome.TIMEOUT)
    assert not await db.write(partial(end_command, command_id=command_id, outcome=late, now=NOW))
    assert await kinds(db) == [TIMEOUT_KIND, UNLOCK_KIND, RESULT_KIND]
    stored = await db.read(partial(load_command, command_id=command_id))
    assert stored is not None
    assert (stored.ended, stored.result, stored.message) == (
        True,
        CommandOutcome.ACCEPTED,
        "unlocked",
    )


async def test_only_the_sessions_open_commands_end_with_its_transition(db: Database) -> None:
    def open_for(kind: CommandKind) -> partial[int]:
        return partial(
            open_command,
            partner_id="3",
            kind=kind,
            response_url="https://e.example/cb",
            timeout_s=60,
            now=NOW,
        )

    start = await db.write(open_for(START))
    stop = await db.write(open_for(STOP))

    # Both on session s1 (open_command with a session would read the session's state).
    await db.write(lambda conn: conn.execute(update(roaming_commands).values(session_id="s1")))
    work = partial(
        end_session_commands,
        session_id="s1",
        old=State.PAID,
        new=State.STARTING,
        event=RemoteStartAccepted(),
        now=NOW,
    )
    await db.write(work)
    started = await db.read(partial(load_command, command_id=start))
    stopped = await db.read(partial(load_command, command_id=stop))
    assert started is not None
    assert stopped is not None
    assert started.result is CommandOutcome.ACCEPTED
    assert not stopped.ended
    assert (await kinds(db)).count(RESULT_KIND) == 1


async def test_the_last_token_pull_is_remembered(db: Database) -> None:
    assert await db.read(partial(token_pulled_at, partner_id=4)) is None
    await db.write(partial(record_token_pull, partner_id=4, began_at=NOW))
    await db.write(partial(record_token_pull, partner_id=4, began_at=NOW.replace(hour=11)))
    assert await db.read(partial(token_pulled_at, partner_id=4)) == NOW.replace(hour=11)
