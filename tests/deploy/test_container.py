"""The image's entry command, run as the container runs it, on a fresh folder, reaches /readyz.

No container engine: the command of the Dockerfile's ``CMD`` runs here with the environment the
image (``ENV``), ``.env.example`` (copied to ``.env``) and the compose file's ``strom`` service
give it. Changed, and only these: the folder (a fresh one for ``/srv/strom``), the two ports
(free ones), and the database (SQLite in the folder: there is no ``postgres`` service here).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.deploy.compose import (
    COMPOSE,
    ENV_EXAMPLE,
    dockerfile_cmd,
    dockerfile_env,
    dockerfile_healthcheck,
    env_file,
    service_environment,
)
from tests.ports import unused_port

BIN = Path(sys.executable).parent


def container_environment(home: Path, http_port: int, ocpp_port: int) -> dict[str, str]:
    dotenv = env_file(ENV_EXAMPLE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STROM_", "APP_"))}
    env.update(dockerfile_env())
    env.update(dotenv)  # env_file: .env
    env.update(service_environment(COMPOSE, "strom", dotenv))
    env.update(
        STROM_HOME=str(home),
        STROM_SERVER__PORT=str(http_port),
        STROM_OCPP__PORT=str(ocpp_port),
        STROM_STORAGE__DATABASE_URL="",
    )
    return env


def start(home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    http_port, ocpp_port = unused_port(), unused_port()
    command = dockerfile_cmd()
    assert command[0] == "strom"
    env = container_environment(home, http_port, ocpp_port)
    with log.open("ab") as out:
        proc = subprocess.Popen(  # the image's own command, from the Dockerfile
            [str(BIN / command[0]), *command[1:]],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, f"http://127.0.0.1:{http_port}", env


def healthcheck(env: dict[str, str]) -> int:
    """The image's HEALTHCHECK command, run with the container's environment."""
    command = dockerfile_healthcheck()
    assert command[0] == "python"
    return subprocess.run([sys.executable, *command[1:]], env=env, timeout=10).returncode


def wait_ready(proc: subprocess.Popen[bytes], base: str, log: Path, within_s: float = 60) -> dict:
    deadline = time.monotonic() + within_s
    last = "no answer"
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            response = httpx.get(f"{base}/readyz", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
            last = response.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.3)
    raise AssertionError(f"/readyz not 200 within {within_s} s: {last}\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)  # what `docker stop` sends (STOPSIGNAL)
    return proc.wait(timeout=30)


def test_the_entry_command_initialises_an_empty_folder_and_becomes_ready(tmp_path: Path) -> None:
    home = tmp_path / "srv-strom"  # the empty volume
    log = tmp_path / "container.log"
    proc, base, env = start(home, log)
    try:
        body = wait_ready(proc, base, log)
        assert healthcheck(env) == 0
        assert body["status"] == "ready"
        assert set(body["checks"]) >= {"started", "database", "lightning", "relays"}
        assert (home / "strom.toml").is_file()
        assert (home / "relay_config" / "relays.toml").is_file()
        assert (home / "data" / "keys").is_dir()  # the server key was made
        assert list((home / "profiles").glob("*.toml")) == []  # chargers come from the owner
        assert (home / "data").stat().st_mode & 0o077 == 0
    finally:
        assert stop(proc) == 0
    first = log.read_text()
    assert "first start: initialised" in first
    assert "setup password" in first  # the owner's first sign-in

    config = (home / "strom.toml").read_text()
    proc, base, env = start(home, log)  # the container restarts on its volume
    try:
        wait_ready(proc, base, log)
    finally:
        assert stop(proc) == 0
    assert healthcheck(env) != 0  # stopped: the engine would see it unhealthy
    assert (home / "strom.toml").read_text() == config
    assert log.read_text().count("first start: initialised") == 1
