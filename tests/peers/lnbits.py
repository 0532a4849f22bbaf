"""A real LNbits 1.6.2 (FakeWallet funding source) for the tests, run on loopback.

``install()`` makes a virtualenv under ``.peers/lnbits`` in the repository (once: 50 to 75 s and
275 MB; later runs reuse it). ``LNbitsPeer.start(workdir)`` starts LNbits on a free 127.0.0.1
port (outside the ephemeral range, see :mod:`tests.ports`; another one if it was taken anyway)
in its own process group, waits until it answers, does the first-install dance (superuser
name and password, then a bearer token), and creates two wallets: Strom's, and a driver's that
is funded so it can pay. ``stop()`` ends the whole process group (LNbits forks a child).

FakeWallet only pays invoices created by the same LNbits process, so the driver wallet and
Strom's wallet live in one LNbits: the driver pays Strom's invoice, Strom refunds the driver.

Run ``python -m tests.peers.lnbits`` to install and smoke-test by hand.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers.venv import PEERS_DIR, InstallFailed, install_venv
from tests.ports import unused_port

LNBITS_VERSION = "1.6.2"
VENV_DIR = PEERS_DIR / "lnbits"
DRIVER_FUNDING_SAT = 1_000_000
STROM_FUNDING_SAT = 100_000  # so refunds can be paid before any driver has paid Strom


_START_ATTEMPTS = 3


class PeerUnavailable(RuntimeError):
    """LNbits could not be installed or started here (the test then skips or fails)."""


class _PortTaken(Exception):
    """LNbits could not bind its port: another program took it after it was chosen."""


def site_packages() -> Path:
    return (
        VENV_DIR
        / "lib"
        / f"python{sys.version_info.major}.{sys.version_info.minor}"
        / ("site-packages")
    )


def install(timeout_s: float = 900.0) -> Path:
    """Install LNbits into ``.peers/lnbits`` unless it is already there; return the venv."""
    try:
        return install_venv(
            "lnbits", LNBITS_VERSION, [f"lnbits=={LNBITS_VERSION}", "bitstring<5"], timeout_s
        )
    except InstallFailed as exc:
        raise PeerUnavailable(f"could not install lnbits {LNBITS_VERSION}: {exc}") from exc


@dataclass(frozen=True)
class LNbitsWallet:
    id: str
    inkey: str
    adminkey: str


@dataclass
class LNbitsPeer:
    """One running LNbits with a Strom wallet and a funded driver wallet."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    token: str = ""
    strom: LNbitsWallet | None = None
    driver: LNbitsWallet | None = None
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, workdir: Path, *, startup_timeout_s: float = 90.0) -> LNbitsPeer:
        """Start LNbits on a port nothing else uses; a new port if it was taken meanwhile."""
        venv = install()
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                return cls._start_on(unused_port(), venv, workdir, startup_timeout_s)
            except _PortTaken:
                if attempt == _START_ATTEMPTS:
                    raise PeerUnavailable("lnbits: every port tried was taken") from None
        raise AssertionError("unreachable")

    @classmethod
    def _start_on(
        cls, port: int, venv: Path, workdir: Path, startup_timeout_s: float
    ) -> LNbitsPeer:
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        (workdir / "ext").mkdir(exist_ok=True)
        url = f"http://127.0.0.1:{port}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LNBITS_DATA_FOLDER": str(data),
            "LNBITS_BACKEND_WALLET_CLASS": "FakeWallet",
            "FAKE_WALLET_SECRET": secrets.token_hex(16),
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "LNBITS_BASEURL": url + "/",
            "LNBITS_ADMIN_UI": "true",
            "AUTH_HTTPS_ONLY": "false",
            "LNBITS_EXTENSIONS_PATH": str(workdir / "ext"),
            # The next five keep it offline.
            "LNBITS_EXTENSIONS_MANIFESTS": "[]",
            "LNBITS_WASM_EXTENSIONS_MANIFESTS": "[]",
            "LNBITS_EXTENSIONS_DEFAULT_INSTALL": "[]",
            "LNBITS_PRICE_AGGREGATOR_ENABLED": "false",
            "LNBITS_EXCHANGE_RATE_PROVIDERS": "[]",
        }
        log_path = workdir / "lnbits.log"
        with log_path.open("wb") as log:
            # LNbits finds lnbits/static relative to the working directory, and forks a child:
            # its own session lets stop() end the whole group.
            process = subprocess.Popen(
                [str(venv / "bin" / "lnbits")],
                cwd=site_packages(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        peer = cls(url=url, process=process, log_path=log_path)
        try:
            peer._wait_ready(startup_timeout_s)
            peer._bootstrap()
        except BaseException:
            peer.stop()
            raise
        return peer

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait for LNbits to say it listens on its port (not merely for something to answer
        there: a port taken by another program answers too, while LNbits logs that the
        address is in use and never serves)."""
        listening = f"Uvicorn running on {self.url} "
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self._log_text()
            if "address already in use" in log:
                raise _PortTaken
            if listening in log:
                return
            if self.process.poll() is not None:
                raise PeerUnavailable(f"lnbits exited early:\n{self.log_tail()}")
            time.sleep(0.2)
        raise PeerUnavailable(f"lnbits did not start within {timeout_s} s:\n{self.log_tail()}")

    def _log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def _bootstrap(self) -> None:
        password = secrets.token_urlsafe(16)
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            response = client.put(
                "/api/v1/auth/first_install",
                json={"username": "strom", "password": password, "password_repeat": password},
            )
            response.raise_for_status()
            response = client.post("/api/v1/auth", json={"username": "strom", "password": password})
            response.raise_for_status()
            self.token = response.json()["access_token"]
            headers = {"Authorization": f"Bearer {self.token}"}
            self.strom = self._create_wallet(client, headers, "strom")
            self.driver = self._create_wallet(client, headers, "driver")
            for wallet, amount in (
                (self.driver, DRIVER_FUNDING_SAT),
                (self.strom, STROM_FUNDING_SAT),
            ):
                response = client.put(
                    "/users/api/v1/balance",
                    json={"id": wallet.id, "amount": amount},
                    headers=headers,
                )
                response.raise_for_status()

    @staticmethod
    def _create_wallet(client: httpx.Client, headers: dict[str, str], name: str) -> LNbitsWallet:
        response = client.post("/api/v1/wallet", json={"name": name}, headers=headers)
        response.raise_for_status()
        body = response.json()
        return LNbitsWallet(id=body["id"], inkey=body["inkey"], adminkey=body["adminkey"])

    def balance_msat(self, wallet: LNbitsWallet) -> int:
        response = httpx.get(
            self.url + "/api/v1/wallet", headers={"X-Api-Key": wallet.inkey}, timeout=10.0
        )
        response.raise_for_status()
        balance: int = response.json()["balance"]
        return balance

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:]) or "(no log)"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        # The forked child may outlive the parent by a moment: make sure the group is gone.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        peer = LNbitsPeer.start(Path(tmp))
        try:
            print(f"LNbits {LNBITS_VERSION} up at {peer.url} in {time.monotonic() - started:.1f} s")
            assert peer.driver is not None
            print("driver balance msat:", peer.balance_msat(peer.driver))
        finally:
            peer.stop()
