"""An independent OCPI 2.2.1 implementation for the tests: PyPI ``extrawest-ocpi`` (``py_ocpi``).

It builds an OCPI party (CPO or eMSP) on FastAPI with pydantic 1, so it cannot share Strom's
environment: ``install()`` makes its own virtualenv under ``.peers/ocpi`` in the repository
(once, a few seconds from a package index; later runs reuse it) and returns it. Tests run the
peer as a separate process with that venv's Python, or validate Strom's OCPI objects with the
peer's own pydantic models (``python()`` gives the interpreter).

Run ``python -m tests.peers.ocpi`` to install by hand.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

OCPI_PEER_VERSION = "2025.7.16"
REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT / ".peers"
VENV_DIR = PEERS_DIR / "ocpi"
_MARKER = VENV_DIR / ".strom-installed"
_PACKAGES = (f"extrawest-ocpi=={OCPI_PEER_VERSION}", "uvicorn")


class PeerUnavailable(RuntimeError):
    """The OCPI peer could not be installed here (the test then skips or fails)."""


def install(timeout_s: float = 600.0) -> Path:
    """Install ``extrawest-ocpi`` into ``.peers/ocpi`` unless it is there; return the venv."""
    PEERS_DIR.mkdir(exist_ok=True)
    with (PEERS_DIR / "ocpi.lock").open("w") as lock:
        # Another test process may be installing right now.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _MARKER.exists() and _MARKER.read_text().strip() == OCPI_PEER_VERSION:
            return VENV_DIR
        log = PEERS_DIR / "ocpi-install.log"
        try:
            with log.open("w") as out:
                subprocess.run(
                    [sys.executable, "-m", "venv", "--clear", str(VENV_DIR)],
                    check=True,
                    timeout=timeout_s,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                subprocess.run(
                    [
                        str(VENV_DIR / "bin" / "pip"),
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        *_PACKAGES,
                    ],
                    check=True,
                    timeout=timeout_s,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PeerUnavailable(
                f"could not install extrawest-ocpi {OCPI_PEER_VERSION} (see {log}): {exc}"
            ) from exc
        _MARKER.write_text(OCPI_PEER_VERSION + "\n")
    return VENV_DIR


def python() -> Path:
    """The peer venv's interpreter (installing the peer first if needed)."""
    return install() / "bin" / "python"


if __name__ == "__main__":
    print(python())
