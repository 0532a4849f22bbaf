"""A peer's own virtualenv under ``.peers/<name>``: made once, reused while its version holds.

Independent programs that cannot share Strom's environment (LNbits, the OCPI peer with pydantic
1) are installed here by the tests themselves. A lock file keeps two test processes from
installing at once; a marker with the version says the venv is complete.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT / ".peers"


class InstallFailed(RuntimeError):
    """The venv could not be made or the packages not installed (the log file says why)."""


def install_venv(name: str, version: str, packages: Sequence[str], timeout_s: float) -> Path:
    """Make ``.peers/<name>`` with ``packages`` unless it holds ``version`` already; the venv.

    Raises:
        InstallFailed: venv or pip failed or timed out (their output is in
            ``.peers/<name>-install.log``).
    """
    venv = PEERS_DIR / name
    marker = venv / ".strom-installed"
    PEERS_DIR.mkdir(exist_ok=True)
    with (PEERS_DIR / f"{name}.lock").open("w") as lock:
        # Another test process (or another engineer's suite) may be installing right now.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == version:
            return venv
        log = PEERS_DIR / f"{name}-install.log"
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        try:
            with log.open("w") as out:
                for command in (
                    [sys.executable, "-m", "venv", "--clear", str(venv)],
                    [*pip, *packages],
                ):
                    subprocess.run(
                        command, check=True, timeout=timeout_s, stdout=out, stderr=subprocess.STDOUT
                    )
        except (OSError, subprocess.SubprocessError) as exc:
            raise InstallFailed(f"{exc} (see {log})") from exc
        marker.write_text(version + "\n")
    return venv
