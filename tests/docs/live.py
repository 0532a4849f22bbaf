"""A live Strom installed the way README.md says, for the doc examples to run against.

The README's install block (``strom init /srv/strom``, ``strom run``, ``strom token create``)
is run in a bash session, command by command, with ``/srv/strom`` standing for a temporary
folder and port 0 (``STROM_SERVER__PORT=0``): ``strom run`` binds free ports and logs them.
Then, as an operator would next: a simulated charger connects to the URL README names with
the password ``strom init`` printed (``strom simulate``, docs/ocpp.md), a driver pays the
charger's LNURL with the fake
backend (``strom fake pay``, README.md) and the session charges. Examples that name
``cp-1`` or a session id get that charger and that session.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from strom_nostr.keys import encode_npub, encode_nsec, public_key_hex
from tests.docs.examples import ROOT, Block
from tests.docs.shell import Background, Result, Shell
from tests.lightning.lnd_stub import LndStub
from tests.lightning.tls import TlsPair

CHARGER = "example-1"  # the charger `strom init` writes; the docs' `cp-1`
ADMIN_SECRET = bytes.fromhex("33" * 32)  # the reader's admin key ($NSEC)
SERVING = re.compile(r"serving HTTP on [^ ]+:(\d+) \(public URL ([^)]+)\), OCPP on [^ ]+:(\d+);")
PASSWORD = re.compile(r"user = charger id\):\n  (\S+)\n")
DOC_SESSION_ID = re.compile(r"(?<=/sessions/)[0-9a-f]{16}(?=/)")


def wait_for(condition: Any, what: str, within_s: float = 30) -> Any:
    """Return ``condition()`` once it is truthy (checked every 50 ms); fail after ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s:g} s: {what}")
        time.sleep(0.05)


@dataclass
class Live:
    """The running installation and what a reader of the docs would have at hand."""

    folder: Path  # the test's temporary folder
    home: Path  # the reader's working directory: .venv and tests/ of this clone linked in
    srv: Path  # stands for /srv/strom
    env: dict[str, str]
    install: list[Result] = field(default_factory=list)
    server: Background | None = None
    public_url: str = ""
    ocpp_port: int = 0
    token: str = ""
    password: str = ""
    session_id: str = ""
    simulator: subprocess.Popen[bytes] | None = None
    shells: list[Shell] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"{self.public_url}/api/v1"

    def get(self, path: str) -> Any:
        """``GET /api/v1<path>`` with the admin token; the JSON answer."""
        response = httpx.get(
            self.api + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def shell(self, cwd: Path | None = None) -> Shell:
        """A new bash session with the reader's environment ($TOKEN, $NSEC, strom on PATH)."""
        env = {**self.env, "TOKEN": self.token, "NSEC": encode_nsec(ADMIN_SECRET)}
        scratch = self.folder / "shells" / str(len(self.shells))
        shell = Shell(cwd or self.home, env, scratch)
        self.shells.append(shell)
        return shell

    def substitute(self, text: str, srv: Path | None = None) -> str:
        """The docs' placeholders replaced by this installation's values."""
        text = text.replace("https://charge.example.org", self.public_url)
        text = text.replace("/srv/strom", str(srv or self.srv))
        text = text.replace("strom_…", self.token)
        text = re.sub(r"\bcp-1\b", CHARGER, text)
        return DOC_SESSION_ID.sub(self.session_id, text)

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.terminate()
            self.simulator.wait(10)
        if self.server is not None and self.server.running():
            self.server.kill()
        for shell in self.shells:
            shell.close()


def reader_environment(folder: Path) -> dict[str, str]:
    """The environment of the reader's terminal: this clone's strom first on PATH, ``nak``
    (the stand-in, tests/docs/nak.py), and Strom on port 0 with an admin npub."""
    tools = folder / "bin"
    tools.mkdir()
    nak = tools / "nak"
    nak.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m tests.docs.nak "$@"\n'
    )
    nak.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("STROM_")}
    env.update(
        PATH=os.pathsep.join([str(tools), str(Path(sys.prefix) / "bin"), env.get("PATH", "")]),
        STROM_SERVER__PORT="0",
        STROM_OCPP__PORT="0",
        STROM_OCPP__HOST='"127.0.0.1"',
        STROM_NOSTR__ADMIN_NPUBS=f'["{encode_npub(public_key_hex(ADMIN_SECRET))}"]',
    )
    return env


def reader_home(folder: Path) -> Path:
    """A working directory like a clone's: ``.venv`` and ``tests/`` are this clone's."""
    home = folder / "home"
    home.mkdir()
    (home / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (home / "tests").symlink_to(ROOT / "tests", target_is_directory=True)
    return home


def install(folder: Path, block: Block, *, ocpp_url: str, pay: str) -> Live:
    """Follow README's install block, then connect a charger to ``ocpp_url`` (README's
    ``ws://<host>:9000/ocpp/``) and start a session paid with ``pay`` (README's
    ``strom fake pay <invoice> -c demo-data/strom.toml``)."""
    home = reader_home(folder)
    live = Live(folder, home, folder / "srv" / "strom", reader_environment(folder))
    try:
        shell = live.shell()
        for command in block.commands():
            command = live.substitute(command)
            if re.search(r"\bstrom run\b", command):
                live.server = shell.start(f"exec {command}")
                _wait_serving(live)
            else:
                result = shell.run(command)
                live.install.append(result)
                assert result.status == 0, result.describe()
                if "token create" in command:
                    live.token = result.out.strip()
        init = next(r for r in live.install if "strom init" in r.command)
        found = PASSWORD.search(init.out)
        assert found, f"strom init printed no OCPP password:\n{init.out}"
        live.password = found.group(1)
        assert live.token.startswith("strom_"), live.install
        _charge(live, ocpp_url, pay)
    except BaseException:
        live.close()
        raise
    return live


def _wait_serving(live: Live) -> None:
    server = live.server
    assert server is not None

    def serving() -> re.Match[str] | None:
        assert server.running(), f"strom run ended:\n{server.log()}"
        return SERVING.search(server.log())

    found = wait_for(serving, "strom run logs where it serves")
    live.public_url, live.ocpp_port = found.group(2), int(found.group(3))


def _charge(live: Live, ocpp_url: str, pay: str) -> None:
    """A charger online (``strom simulate``) and a paid session charging on it."""
    url = re.sub(r"<host>:\d+", f"127.0.0.1:{live.ocpp_port}", ocpp_url)
    live.simulator = subprocess.Popen(
        [
            str(Path(sys.prefix) / "bin" / "strom"),
            *("simulate", "--url", url, "--id", CHARGER, "--plug", "1"),
        ],
        env={**live.env, "STROM_SIMULATE_PASSWORD": live.password},
        stdout=(live.folder / "simulator.log").open("wb"),
        stderr=subprocess.STDOUT,
    )

    def online() -> bool:
        [charger] = [c for c in live.get("/chargers")["items"] if c["charger_id"] == CHARGER]
        return bool(charger["online"]) and charger["connectors"][0]["status"] == "Preparing"

    wait_for(online, "the simulated charger is online with a vehicle plugged in")
    offer = httpx.get(f"{live.public_url}/lnurlp/{CHARGER}/1", timeout=10).json()
    invoice = httpx.get(offer["callback"], params={"amount": 2_000_000}, timeout=10).json()
    assert "pr" in invoice, invoice
    pay = pay.replace("<invoice>", invoice["pr"]).replace("demo-data", str(live.srv))
    paid = live.shell().run(pay)
    assert paid.status == 0, paid.describe()
    page = httpx.URL(invoice["successAction"]["url"])
    live.session_id = page.path.rsplit("/", 1)[1]
    status = page.copy_with(path=page.path + ".json")
    wait_for(
        lambda: httpx.get(status, timeout=10).json()["state"] == "charging",
        "the paid session charges",
    )


@contextmanager
def lnd_stub(presents: TlsPair) -> Iterator[LndStub]:
    """The LND stub (tests/lightning) on 127.0.0.1, presenting ``presents``, in a thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stub = LndStub(macaroon=secrets.token_bytes(72), cert=presents.cert, key=presents.key)
    try:
        asyncio.run_coroutine_threadsafe(stub.start(), loop).result(10)
        yield stub
    finally:
        asyncio.run_coroutine_threadsafe(stub.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def lnd_installation(folder: Path, stub: LndStub, pinned: TlsPair) -> Path:
    """A Strom folder on LND (the stub), with ``pinned`` as the certificate it trusts."""
    from strom.cli import main

    assert main(["init", str(folder)]) == 0
    (folder / "admin.macaroon").write_bytes(bytes.fromhex(stub.macaroon_hex))
    shutil.copy(pinned.cert, folder / "tls.cert")
    lightning = "\n".join(
        [
            'backend = "lnd"',
            'network = "bcrt"',
            f'rest_host = "{stub.url}"',
            f'macaroon_path = "{folder / "admin.macaroon"}"',
            f'tls_cert_path = "{folder / "tls.cert"}"',
        ]
    )
    toml = folder / "strom.toml"
    toml.write_text(toml.read_text().replace('backend = "fake"', lightning))
    return folder
