"""Run the test eMSP (py_ocpi in its own venv and process) and drive it from the tests.

``OcpiEmspPeer.start(workdir)`` runs ``tests/peers/ocpi_emsp_app.py`` with the OCPI peer's
Python (:mod:`tests.peers.ocpi` installs it) on a free 127.0.0.1 port, in its own process
group, logging to ``workdir/<name>.log``; it waits until uvicorn says it listens (a port
taken meanwhile means another port) and ``stop()`` ends the group. Its async methods wrap the
eMSP's ``/control/`` API, each returning the JSON the peer answered:

* ``register(versions_url, token_a)``: the eMSP registers with a CPO (versions, details,
  POST credentials with a fresh token B); ``offer(token_a)`` lets a CPO register with it;
  ``rotate()`` (PUT credentials) and ``unregister()`` (DELETE);
* ``pull(module, **query)``: a CPO module's objects, every page (URL, status, ``Link``,
  ``X-Total-Count``, ``X-Limit``) and py_ocpi's schema errors;
* ``command(name, body)`` and ``command_results()``: commands with the eMSP's callback;
* ``received(module)``: what the CPO pushed, after py_ocpi validated and applied it, and the
  pushes py_ocpi refused; ``set_tokens(tokens)``: the tokens the CPO may fetch or authorize;
* ``log(since)``: every OCPI request the eMSP received and sent.

``OcpiCpoPeer`` runs ``ocpi_cpo_app.py`` (a py_ocpi CPO) the same way, to prove the eMSP.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx

from tests.peers.ocpi import PeerUnavailable, python
from tests.ports import unused_port

PEERS = Path(__file__).resolve().parent
_START_ATTEMPTS = 3


class _PortTaken(Exception):
    """uvicorn could not bind its port: another program took it after it was chosen."""


@dataclass
class _PeerProcess:
    """One py_ocpi party on 127.0.0.1 in a process group of its own."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_s: float = 0.0
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def _launch(
        cls,
        script: str,
        workdir: Path,
        extra_env: dict[str, str],
        startup_timeout_s: float,
    ) -> Self:
        interpreter = _interpreter()
        workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _START_ATTEMPTS + 1):
            began = time.monotonic()
            try:
                peer = cls._start_on(
                    unused_port(), interpreter, script, workdir, extra_env, startup_timeout_s
                )
            except _PortTaken:
                if attempt == _START_ATTEMPTS:
                    raise PeerUnavailable(f"{script}: every port tried was taken") from None
                continue
            peer.startup_s = time.monotonic() - began
            return peer
        raise AssertionError("unreachable")

    @classmethod
    def _start_on(
        cls,
        port: int,
        interpreter: Path,
        script: str,
        workdir: Path,
        extra_env: dict[str, str],
        startup_timeout_s: float,
    ) -> Self:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            # py_ocpi reads its settings from the environment when imported.
            "OCPI_HOST": f"127.0.0.1:{port}",
            "PROTOCOL": "http",
            "OCPI_PEER_PORT": str(port),
            **extra_env,
        }
        log_path = workdir / f"{Path(script).stem}.log"
        with log_path.open("wb") as log:
            # cwd: py_ocpi's settings also read a .env file from the working directory.
            process = subprocess.Popen(
                [str(interpreter), str(PEERS / script)],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        peer = cls(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        try:
            peer._wait_ready(startup_timeout_s)
        except BaseException:
            peer.stop()
            raise
        return peer

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait for uvicorn to say it listens (a port taken by another program answers too)."""
        listening = f"Uvicorn running on {self.url} "
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self._log_text()
            if "address already in use" in log:
                raise _PortTaken
            if listening in log:
                return
            if self.process.poll() is not None:
                raise PeerUnavailable(f"OCPI peer exited early:\n{self.log_tail()}")
            time.sleep(0.05)
        raise PeerUnavailable(f"OCPI peer did not start in {timeout_s} s:\n{self.log_tail()}")

    def _log_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:]) or "(no log)"

    @property
    def versions_url(self) -> str:
        return f"{self.url}/ocpi/versions"

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=60.0) as client:
            response = await client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ControlError(method, path, response.status_code, response.text)
        return response.json()

    async def log(self, since: int = 0) -> list[dict[str, Any]]:
        """Every OCPI request the peer received (``direction: in``) and sent (``out``)."""
        entries: list[dict[str, Any]] = await self._call(
            "GET", "/control/log", params={"since": since}
        )
        return entries

    async def offer(self, token_a: str) -> dict[str, Any]:
        """Accept a registration started by the other party with ``token_a``."""
        answer: dict[str, Any] = await self._call(
            "POST", "/control/offer", json={"token_a": token_a}
        )
        return answer

    async def register(self, versions_url: str, token_a: str) -> dict[str, Any]:
        """Register with the other party: versions, details, POST credentials.

        Returns ``token_b`` (ours, which the other party now uses), ``token_c`` (theirs) and
        their 2.2.1 ``endpoints``. Raises :class:`ControlError` (502, with the failed step)
        when the other party refused a step.
        """
        answer: dict[str, Any] = await self._call(
            "POST", "/control/register", json={"versions_url": versions_url, "token_a": token_a}
        )
        return answer

    async def partner(self) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call("GET", "/control/partner")
        return answer


class ControlError(RuntimeError):
    """A control route of the peer answered with an error (status and body kept)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body}")
        self.status = status
        self.body = body


def _interpreter() -> Path:
    try:
        return python()
    except PeerUnavailable:
        raise
    except OSError as exc:
        raise PeerUnavailable(f"the OCPI peer's Python is not usable: {exc}") from exc


@dataclass
class OcpiEmspPeer(_PeerProcess):
    """The test eMSP (py_ocpi, roles EMSP) and its control API."""

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        country_code: str = "NL",
        party_id: str = "EMP",
        startup_timeout_s: float = 60.0,
    ) -> OcpiEmspPeer:
        return cls._launch(
            "ocpi_emsp_app.py",
            workdir,
            {"COUNTRY_CODE": country_code, "PARTY_ID": party_id},
            startup_timeout_s,
        )

    async def rotate(self) -> dict[str, Any]:
        """Update the credentials (PUT): new token B for the CPO, new token C for us."""
        answer: dict[str, Any] = await self._call("POST", "/control/rotate")
        return answer

    async def unregister(self) -> dict[str, Any]:
        """DELETE our credentials at the CPO; returns the CPO's ``status`` and ``body``."""
        answer: dict[str, Any] = await self._call("DELETE", "/control/register")
        return answer

    async def pull(self, module: str, **query: str | int) -> dict[str, Any]:
        """All of a CPO module's objects, following ``Link`` next; ``objects``, ``pages``,
        ``errors``."""
        answer: dict[str, Any] = await self._call(
            "GET", f"/control/pull/{module}", params={k: str(v) for k, v in query.items()}
        )
        return answer

    async def command(
        self, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        """Send a command (``START_SESSION`` ...); ``response_url`` is the eMSP's own unless
        given. Returns ``uid``, ``response_url``, the CPO's ``status`` and ``body``, and
        ``errors`` (the CommandResponse against py_ocpi's schema)."""
        answer: dict[str, Any] = await self._call(
            "POST",
            f"/control/command/{name}",
            json=body,
            params={} if validate else {"raw": "1"},
        )
        return answer

    async def command_results(self) -> list[dict[str, Any]]:
        """The CommandResults the CPO posted to our callbacks: ``uid``, ``known``, ``result``."""
        results: list[dict[str, Any]] = await self._call("GET", "/control/command-results")
        return results

    async def received(self, module: str) -> dict[str, Any]:
        """``objects`` the CPO pushed to ``module`` as stored, and ``errors``: each push py_ocpi
        refused or failed on (its log entry, with the validation detail)."""
        answer: dict[str, Any] = await self._call("GET", f"/control/received/{module}")
        return answer

    async def set_tokens(self, tokens: list[dict[str, Any]]) -> None:
        """The tokens the CPO can GET (paginated) and authorize in real time."""
        await self._call("PUT", "/control/tokens", json=tokens)


@dataclass
class OcpiCpoPeer(_PeerProcess):
    """A small py_ocpi CPO (``ocpi_cpo_app.py``), only to prove the test eMSP."""

    @classmethod
    def start(cls, workdir: Path, *, locations: int = 1, startup_timeout_s: float = 60.0) -> Self:
        return cls._launch(
            "ocpi_cpo_app.py",
            workdir,
            {"COUNTRY_CODE": "NL", "PARTY_ID": "CPO", "OCPI_CPO_LOCATIONS": str(locations)},
            startup_timeout_s,
        )

    async def set_evse_status(self, location_id: str, evse_uid: str, status: str) -> None:
        await self._call(
            "POST",
            "/control/evse-status",
            json={"location_id": location_id, "evse_uid": evse_uid, "status": status},
        )

    async def patch_evse(self, location_id: str, evse_uid: str, status: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(
            "POST",
            "/control/patch-evse",
            json={"location_id": location_id, "evse_uid": evse_uid, "status": status},
        )
        return answer
