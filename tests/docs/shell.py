"""One bash session per example block, fed one command at a time like a reader pasting lines.

Variables a command sets stay for the next ones (``API=…`` then ``curl "$API/…"``); each
command's stdout, stderr and exit status are kept apart so that the test can check what each
one printed. ``curl`` runs with ``--fail-with-body --silent --show-error``: an HTTP error is a
failing command, and the doc stays as a person types it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

PRELUDE = """\
set -o pipefail
curl() { command curl --fail-with-body --silent --show-error "$@"; }
"""


@dataclass(frozen=True)
class Result:
    """What one command did."""

    command: str
    status: int
    out: str
    err: str

    def describe(self) -> str:
        return f"$ {self.command}\n[exit {self.status}]\n{self.out}\n{self.err}".rstrip()


class Shell:
    """A bash process in ``cwd`` with ``env``; see the module docstring."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        bash = shutil.which("bash")
        assert bash is not None, "the examples are bash"
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self._count = 0
        self._proc = subprocess.Popen(
            [bash, "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._send(PRELUDE)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(text)
        self._proc.stdin.flush()

    def _files(self) -> tuple[int, Path, Path]:
        self._count += 1
        n = self._count
        return n, self.scratch / f"{n}.out", self.scratch / f"{n}.err"

    def _await(self, tag: str, timeout_s: float) -> int:
        """Wait for ``@@<tag> <value>`` from the session; return the value."""
        seen = []
        while True:
            try:
                line = self._lines.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(
                    f"no answer within {timeout_s:g} s; the session said:\n" + "".join(seen)
                ) from None
            if line is None:
                raise AssertionError("the shell ended:\n" + "".join(seen))
            if line.startswith(f"@@{tag} "):
                return int(line.split()[1])
            seen.append(line)

    def run(self, command: str, *, timeout_s: float = 60, stdin: str = "/dev/null") -> Result:
        """Run ``command`` to its end (its stdin is the file ``stdin``)."""
        n, out, err = self._files()
        self._send(f'{{ {command}\n}} <"{stdin}" >"{out}" 2>"{err}"\nprintf "\\n@@{n} %d\\n" $?\n')
        status = self._await(str(n), timeout_s)
        return Result(command, status, out.read_text(), err.read_text())

    def start(self, command: str) -> Background:
        """Start ``command`` in the background (a server); see :class:`Background`."""
        n, out, err = self._files()
        self._send(
            f'{{ {command}\n}} </dev/null >"{out}" 2>"{err}" &\nprintf "\\n@@{n} %d\\n" $!\n'
        )
        return Background(self, command, self._await(str(n), 10), out, err)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._send("exit\n")
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, 9)
                self._proc.wait()


@dataclass
class Background:
    """A command the session runs in the background."""

    shell: Shell
    command: str
    pid: int
    out: Path
    err: Path

    def log(self) -> str:
        """What it printed so far (nothing before the shell has opened its files)."""
        return "".join(path.read_text() for path in (self.out, self.err) if path.exists())

    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def stop(self, signal_name: str = "TERM", *, within_s: float = 20) -> int:
        """Send the signal, as Ctrl-C or a service manager would; return its exit status."""
        self.shell.run(f"kill -{signal_name} {self.pid}")
        return self.shell.run(f"wait {self.pid}", timeout_s=within_s).status
