"""A bounded stop: once asked to stop, Strom finishes within a time limit, whatever hangs.

Theory of operation: every part of Strom ends when the stop event is set or when it is
cancelled, and :meth:`strom.app.Strom.serve` waits for them, so that the database is closed
and the outbox is consistent. A part that does not end — a handler waiting on a charger or
relay that never answers, a library call that swallows its cancellation, a ``finally`` that
waits on such a thing — would keep ``strom run`` from exiting (until systemd or Docker kills
it) and leave no clue. :func:`run_until_stopped` gives the parts ``within_s`` seconds after
the stop event; then it logs each task still alive at WARNING, with the chain of awaits it is
suspended in, and cancels it. The parts then finish their clean-up (closing the database);
if even that does not end within a short grace, the stop completes without them.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Coroutine
from types import FrameType
from typing import Any

__all__ = ["GRACE_S", "describe_task", "run_until_stopped"]

log = logging.getLogger(__name__)

GRACE_S = 2.0  # after cancelling what hung: time for the parts' own clean-up, twice at most
_MAX_DEPTH = 40


def describe_task(task: asyncio.Task[Any]) -> str:
    """Where a task is suspended: its chain of awaits, outermost first, with source lines.

    ``Task.get_stack()`` shows only the outermost coroutine; this follows each coroutine's
    ``cr_await`` down to the future or task it waits on, which is what tells a person why
    it has not finished.
    """
    frames: list[tuple[FrameType, int]] = []
    awaited: object = task.get_coro()
    waits_on: object = None
    for _ in range(_MAX_DEPTH):
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        frame = frame or getattr(awaited, "ag_frame", None)
        if frame is None:
            waits_on = awaited
            break
        frames.append((frame, frame.f_lineno))
        inner = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        inner = inner or getattr(awaited, "ag_await", None)
        if inner is None:
            break
        awaited = inner
    lines = traceback.StackSummary.extract(iter(frames)).format()
    text = "".join(lines).rstrip("\n")
    if isinstance(waits_on, asyncio.Future):  # a task or future says what it is; iterators not
        text += f"\n  waiting on {_short_repr(waits_on)}"
    return text or "  (not started)"


def _short_repr(value: object, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


async def run_until_stopped(
    main: Coroutine[Any, Any, None],
    stop: asyncio.Event,
    *,
    within_s: float,
    grace_s: float = GRACE_S,
) -> None:
    """Run ``main``, which ends by itself once ``stop`` is set; bound how long that takes.

    ``within_s`` after ``stop`` is set, every task started since this call that is still
    alive is logged at WARNING (name and where it waits) and cancelled; ``main`` then has
    ``grace_s`` to finish its clean-up, is cancelled itself if it has not, and after another
    ``grace_s`` the call returns regardless. So it returns at most ``within_s + 2 * grace_s``
    after ``stop``. Cancelling this call cancels ``main`` and waits for it the same way.

    Raises:
        Exception: whatever ``main`` raised (a part that failed while serving).
    """
    before = asyncio.all_tasks()
    runner = asyncio.create_task(main, name="strom")
    stopping = asyncio.create_task(stop.wait(), name="strom-stop-event")
    try:
        await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        runner.cancel()
        await _finish(runner, before, within_s=within_s, grace_s=grace_s)
        raise
    finally:
        stopping.cancel()
    if not runner.done():
        await _finish(runner, before, within_s=within_s, grace_s=grace_s)
    if runner.done() and not runner.cancelled():
        runner.result()  # re-raise a part's failure


async def _finish(
    runner: asyncio.Task[None], before: set[asyncio.Task[Any]], *, within_s: float, grace_s: float
) -> None:
    done, _ = await asyncio.wait({runner}, timeout=within_s)
    if done:
        return
    current = asyncio.current_task()
    stuck = sorted(
        (t for t in asyncio.all_tasks() - before if t is not current and not t.done()),
        key=lambda t: t.get_name(),
    )
    for task in stuck:
        log.warning(
            "stop: task %r still running %.1f s after the stop, cancelling it; it waits in:\n%s",
            task.get_name(),
            within_s,
            describe_task(task),
        )
    for task in stuck:
        if task is not runner:
            task.cancel()
    done, _ = await asyncio.wait({runner}, timeout=grace_s)
    if done:
        return
    runner.cancel()
    done, _ = await asyncio.wait({runner}, timeout=grace_s)
    if not done:
        left = sorted(t.get_name() for t in asyncio.all_tasks() - before if not t.done())
        log.warning(
            "stop: %d task(s) ignore cancellation (%s); stopped without waiting for them",
            len(left),
            ", ".join(left),
        )
