"""``strom run`` as a child process on a folder, killed with SIGKILL and started again on it.

Shared by the crash harness (``tests/crash/``: one kill at a chosen point of a story) and the
soak (``tests/soak/``: random kills of Strom and of chargers over many sessions). The folder
comes from ``strom init`` (:func:`write_scaffold`) with one profile per charger; the ports are
fixed (:func:`strom_environment`), because a restarted Strom must be found where the chargers
and the drivers knew it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from strom.app import write_charger_password
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.config import StromConfig
from strom_storage.db import Database
from strom_storage.outbox import OutboxStore
from tests.ports import unused_port

STROM = Path(sys.executable).with_name("strom")


class StromChild:
    """``strom run`` in a child process; restarted without the crash point when it dies."""

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        base: str,
        *,
        args: tuple[str, ...] = (),
        log_name: str = "strom.log",
    ) -> None:
        self.folder = folder
        self.env = env
        self.base = base
        self.args = args  # more arguments of `strom run` (``--cluster``)
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed = 0
        self.log = (folder / log_name).open("ab")

    def start(self, crash_at: str | None = None) -> None:
        """Start ``strom run`` (with ``STROM_CRASH_AT=crash_at`` when given)."""
        env = {**os.environ, **self.env}
        env.pop("STROM_CRASH_AT", None)
        if crash_at:
            env["STROM_CRASH_AT"] = crash_at
        self.proc = subprocess.Popen(
            [str(STROM), "run", "-c", str(self.folder / "strom.toml"), *self.args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def died(self) -> bool:
        """Whether no child runs now (never started, exited or killed)."""
        return self.proc is None or self.proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL the child, if it runs, and reap it (:meth:`revive` counts it in ``killed``)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    async def revive(self) -> None:
        """Restart Strom if it died (recording a SIGKILL).

        Raises:
            RuntimeError: it exited by itself with an error.
        """
        if not self.died():
            return
        assert self.proc is not None
        if self.proc.returncode == -signal.SIGKILL:
            self.killed += 1
        elif self.proc.returncode not in (0, None):
            raise RuntimeError(f"strom exited with {self.proc.returncode}; see {self.log.name}")
        self.start(None)
        await self.wait_ready()

    async def wait_ready(self, within_s: float = 30) -> None:
        """Return once ``/healthz`` answers, or as soon as the child died.

        Raises:
            TimeoutError: it neither answered nor died within ``within_s``.
        """
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.died():
                    return  # died during start-up (a crash point there): the caller revives
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.base}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise TimeoutError("strom did not become ready")

    def terminate(self) -> None:
        """Stop the child as an operator does (SIGTERM) and wait; the log stays open."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        """Stop the child as an operator does (SIGTERM; SIGKILL after 30 s) and close the log."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def write_site(folder: Path, charger_ids: list[str]) -> dict[str, str]:
    """``strom init`` in ``folder`` with a profile per charger; returns each one's password.

    The first charger is the scaffold's example profile; the others are copies of it.
    """
    first, *others = charger_ids
    write_scaffold(folder, charger_id=first)
    template = (folder / "profiles" / f"{first}.toml").read_text()
    for charger_id in others:
        profile = template.replace(f'id = "{first}"', f'id = "{charger_id}"')
        (folder / "profiles" / f"{charger_id}.toml").write_text(profile)
    config = load_config(folder / "strom.toml", environ={})
    return {
        charger_id: write_charger_password(config, charger_id).key for charger_id in charger_ids
    }


def strom_environment(**extra: str) -> dict[str, str]:
    """Fixed free ports on 127.0.0.1 and a 1-s meter interval, plus ``extra`` (``STROM_*``)."""
    http_port, ocpp_port = unused_port(), unused_port()
    return {
        "STROM_SERVER__PORT": str(http_port),
        "STROM_SERVER__PUBLIC_URL": f'"http://127.0.0.1:{http_port}"',
        "STROM_OCPP__HOST": '"127.0.0.1"',
        "STROM_OCPP__PORT": str(ocpp_port),
        "STROM_OCPP__METER_INTERVAL_S": "1",
        "STROM_SESSIONS__START_TIMEOUT_S": "10",
        "STROM_LOGGING__LEVEL": '"INFO"',
        **extra,
    }


async def outbox_drained(config: StromConfig, strom: StromChild, within_s: float = 30) -> bool:
    """Wait for the outbox to empty (timers included), reviving Strom if a kill lands now.

    Returns:
        Whether it emptied within ``within_s``.
    """
    db = Database.from_url(config.storage.url())
    try:
        deadline = time.monotonic() + within_s
        while True:
            await strom.revive()
            if not (await OutboxStore(db).counts()).get("pending", 0):
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
    finally:
        await db.close()
