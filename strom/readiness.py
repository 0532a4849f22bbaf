"""``/readyz``: is this Strom ready to take payments? A list of named checks, each answered.

``/healthz`` says the process is alive; ``/readyz`` says whether it can do its work, for
compose health checks, orchestrators and monitoring. Each check is a name and an async
callable that returns a short detail when it passes and raises (any exception, its message
the reason) when it fails; a check that takes longer than :attr:`Readiness.timeout_s` fails.
The answer is 200 when every check passes and 503 otherwise, as JSON naming each check::

    {"status": "not ready", "failing": ["lightning"],
     "checks": {"database": {"ok": true, "detail": "reachable"},
                "lightning": {"ok": false, "detail": "the lightning node does not answer"}}}

The standard checks (:func:`standard_checks`): Strom has started, the database answers, the
lightning backend is up, at least one nostr relay is connected (when relays are configured),
and every configured TLS certificate is valid for more than :data:`CERT_MIN_DAYS` days.
Another part adds its own with :meth:`Readiness.add`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509

from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = [
    "CERT_MIN_DAYS",
    "Check",
    "CheckResult",
    "NamedCheck",
    "NotReady",
    "Readiness",
    "certificate_check",
    "managed_certificate_check",
    "standard_checks",
]

log = logging.getLogger(__name__)

CERT_MIN_DAYS = 7
"""A certificate with fewer days left than this makes Strom not ready (renew it now)."""

Check = Callable[[], Awaitable[str]]
"""A readiness check: returns a short detail when it passes, raises when it fails."""


class NotReady(Exception):
    """A check's failure, in words an operator understands."""


@dataclass(frozen=True, slots=True)
class NamedCheck:
    """A check and the name it is reported under."""

    name: str
    run: Check


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's answer."""

    name: str
    ok: bool
    detail: str


@dataclass
class Readiness:
    """The named checks behind ``/readyz``.

    Args:
        checks: the checks, run concurrently and reported in this order.
        timeout_s: how long one check may take before it counts as failed.
    """

    checks: list[NamedCheck] = field(default_factory=list)
    timeout_s: float = 5.0

    def add(self, name: str, check: Check) -> None:
        """Add a check (a name not yet used).

        Raises:
            ValueError: a check with this name exists already.
        """
        if any(existing.name == name for existing in self.checks):
            raise ValueError(f"a readiness check named {name!r} exists already")
        self.checks.append(NamedCheck(name, check))

    async def _one(self, check: NamedCheck) -> CheckResult:
        try:
            detail = await asyncio.wait_for(check.run(), self.timeout_s)
        except TimeoutError:
            return CheckResult(check.name, False, f"no answer within {self.timeout_s:g} s")
        except Exception as exc:  # any failure of a check is its answer
            return CheckResult(check.name, False, str(exc) or type(exc).__name__)
        return CheckResult(check.name, True, detail)

    async def evaluate(self) -> list[CheckResult]:
        """Run every check; their results in the order of the checks."""
        return list(await asyncio.gather(*(self._one(check) for check in self.checks)))

    async def handle(self, request: web.Request) -> web.Response:
        """The ``/readyz`` handler: 200 when every check passes, else 503; JSON either way."""
        results = await self.evaluate()
        failing = [result.name for result in results if not result.ok]
        if failing:
            log.info(
                "readiness: not ready (%s)",
                "; ".join(f"{r.name}: {r.detail}" for r in results if not r.ok),
            )
        body: dict[str, Any] = {
            "status": "not ready" if failing else "ready",
            "failing": failing,
            "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
        }
        return web.json_response(
            body, status=503 if failing else 200, headers={"Cache-Control": "no-store"}
        )


def certificate_check(
    path: Path, *, min_days: int = CERT_MIN_DAYS, clock: Clock = SYSTEM_CLOCK
) -> Check:
    """A check that the PEM certificate at ``path`` (its first, the leaf) is valid long enough.

    The file is read at each check, so a renewed certificate is seen at once.
    """

    async def check() -> str:
        try:
            pem = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise NotReady(f"{path}: cannot read: {exc.strerror or exc}") from None
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise NotReady(f"{path}: not a PEM certificate") from None
        now = clock.now().astimezone(UTC)
        not_after = cert.not_valid_after_utc
        if now < cert.not_valid_before_utc:
            raise NotReady(f"{path}: not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z")
        if now >= not_after:
            raise NotReady(f"{path}: expired on {not_after:%Y-%m-%d %H:%M}Z")
        left = not_after - now
        if left < timedelta(days=min_days):
            raise NotReady(
                f"{path}: expires on {not_after:%Y-%m-%d %H:%M}Z, in less than {min_days} days"
            )
        return f"valid until {not_after:%Y-%m-%d}, {left.days} days left"

    return check


def managed_certificate_check(
    domain: str,
    problem: Callable[[], str | None],
    not_after: Callable[[], datetime],
    *,
    min_days: int = CERT_MIN_DAYS,
    clock: Clock = SYSTEM_CLOCK,
) -> Check:
    """A check of the certificate Strom obtains itself (``[tls] acme_domain``).

    Not ready while it has none from the CA yet (the placeholder serves meanwhile), when it
    has expired, and when fewer than ``min_days`` are left: renewal starts at two thirds of
    the lifetime, so that means renewals have been failing.

    Args:
        domain: the certificate's domain, for the detail.
        problem: the manager's own verdict (None: issued and within its dates).
        not_after: the end of the certificate in use.
        min_days: fewer days left than this is not ready.
        clock: the time the certificate is checked against.
    """

    async def check() -> str:
        if (why := problem()) is not None:
            raise NotReady(why)
        left = not_after() - clock.now()
        if left < timedelta(days=min_days):
            raise NotReady(
                f"the certificate for {domain} expires on {not_after():%Y-%m-%d %H:%M}Z, in "
                f"less than {min_days} days, and has not been renewed (see the log)"
            )
        return f"{domain}: valid until {not_after():%Y-%m-%d}, {left.days} days left"

    return check


def _relays_check(
    configured: Sequence[str], states: Callable[[], Awaitable[Mapping[str, str]]]
) -> Check:
    async def check() -> str:
        try:
            now = await states()
        except Exception as exc:  # the pool not started yet reads as none connected
            raise NotReady(f"the relay pool is not running ({exc})") from None
        connected = sorted(url for url, state in now.items() if state.lower() == "connected")
        if not connected:
            raise NotReady(f"none of {len(configured)} relay(s) is connected")
        return f"{len(connected)} of {len(now)} relay(s) connected"

    return check


def standard_checks(
    *,
    started: Callable[[], bool],
    database: Callable[[], Awaitable[None]],
    lightning_up: Callable[[], bool],
    relays: Sequence[str],
    relay_states: Callable[[], Awaitable[Mapping[str, str]]],
    certificates: Mapping[str, Path],
    clock: Clock = SYSTEM_CLOCK,
) -> list[NamedCheck]:
    """Strom's own checks.

    Args:
        started: whether Strom has finished starting (its servers and agents run).
        database: connects to the database once; raises when it cannot.
        lightning_up: whether the lightning node answered its last probe.
        relays: the configured relays (none: no relay check).
        relay_states: each relay's connection state.
        certificates: the configured TLS certificates by what they serve (``"server"``,
            ``"ocpp"``); one check each, named ``tls_<what>``.
        clock: the time certificates are checked against.
    """

    async def started_check() -> str:
        if not started():
            raise NotReady("Strom is still starting")
        return "serving"

    async def database_check() -> str:
        await database()
        return "reachable"

    async def lightning_check() -> str:
        if not lightning_up():
            raise NotReady("the lightning node does not answer (payments are refused)")
        return "up"

    checks = [
        NamedCheck("started", started_check),
        NamedCheck("database", database_check),
        NamedCheck("lightning", lightning_check),
    ]
    if relays:
        checks.append(NamedCheck("relays", _relays_check(relays, relay_states)))
    for what, path in certificates.items():
        checks.append(NamedCheck(f"tls_{what}", certificate_check(path, clock=clock)))
    return checks
