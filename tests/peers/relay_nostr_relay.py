"""Start and stop nostr-relay (Python, PyPI), a relay that shares no code with nostr-sdk.

``tests/peers/relay_nostr_relay.sh`` installs it under ``.peers/nostr-relay``; this module
writes its configuration (SQLite in a temporary folder, every event kind accepted, no age
limit on events, since NIP-59 gift wraps are dated up to two days back) and runs it on a free
127.0.0.1 port in its own process group, stopped by the PID it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.ports import unused_port

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "tests" / "peers" / "relay_nostr_relay.sh"

CONFIG = """\
DEBUG: false
relay_name: strom test relay
storage:
  sqlalchemy.url: sqlite+aiosqlite:///{db}
  num_concurrent_reqs: 10
  num_concurrent_adds: 2
  validators:
    - nostr_relay.validators.is_signed
gunicorn:
  bind: 127.0.0.1:{port}
  workers: 1
  loglevel: warning
  reload: false
authentication:
  enabled: false
message_timeout: 1800
subscription_limit: 256
max_event_size: 262144
oldest_event: 315360000
max_limit: 6000
hellthread_limit: 100000
"""


class PeerUnavailable(RuntimeError):
    """nostr-relay could not be installed or started."""


@dataclass
class RunningRelay:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def install() -> Path:
    result = subprocess.run(
        ["bash", str(INSTALL)], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise PeerUnavailable(f"nostr-relay install failed: {result.stderr.strip()[-400:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def start(folder: Path, timeout_s: float = 30.0) -> RunningRelay:
    venv = install()
    port = unused_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(CONFIG.format(db=folder / "relay.sqlite3", port=port))
    log = folder / "relay.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(venv / "bin" / "nostr-relay"), "-c", str(config), "serve", "--use-uvicorn"],
            cwd=folder,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    relay = RunningRelay(f"ws://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PeerUnavailable(f"nostr-relay exited: {log.read_text()[-400:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return relay
        except OSError:
            time.sleep(0.1)
    relay.stop()
    raise PeerUnavailable("nostr-relay did not start listening in time")
