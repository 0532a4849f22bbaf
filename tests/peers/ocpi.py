"""An independent OCPI 2.2.1 implementation for the tests: PyPI ``extrawest-ocpi`` (``py_ocpi``).

It builds an OCPI party (CPO or eMSP) on FastAPI with pydantic 1, so it cannot share Strom's
environment: ``install()`` makes its own virtualenv under ``.peers/ocpi`` in the repository
(once, a few seconds from a package index; later runs reuse it) and returns it. Tests run the
peer as a separate process with that venv's Python, or validate Strom's OCPI objects with the
peer's own pydantic models (``python()`` gives the interpreter).

Run ``python -m tests.peers.ocpi`` to install by hand.
"""

from __future__ import annotations

from pathlib import Path

from tests.peers.venv import InstallFailed, install_venv

OCPI_PEER_VERSION = "2025.7.16"
_PACKAGES = (f"extrawest-ocpi=={OCPI_PEER_VERSION}", "uvicorn")


class PeerUnavailable(RuntimeError):
    """The OCPI peer could not be installed here (the test then skips or fails)."""


def install(timeout_s: float = 600.0) -> Path:
    """Install ``extrawest-ocpi`` into ``.peers/ocpi`` unless it is there; return the venv."""
    try:
        return install_venv("ocpi", OCPI_PEER_VERSION, _PACKAGES, timeout_s)
    except InstallFailed as exc:
        raise PeerUnavailable(
            f"could not install extrawest-ocpi {OCPI_PEER_VERSION}: {exc}"
        ) from exc


def python() -> Path:
    """The peer venv's interpreter (installing the peer first if needed)."""
    return install() / "bin" / "python"


if __name__ == "__main__":
    print(python())
