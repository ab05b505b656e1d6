"""Child processes of the interop harness: one process group each, output to a file, stopped by PID.

Every tool a test starts (minicc, sipp, baresip) runs through :class:`ManagedProcess`, so they
all share the same rules: no stdin, stdout and stderr in one log file the test can show when it
fails, and a stop that sends SIGTERM to that PID, waits, then SIGKILLs the process group the
child leads (and nothing else).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

log = logging.getLogger(__name__)


class ManagedProcess:
    """A child process started in its own session, with its output captured to ``log_path``.

    Args:
        argv: the command line.
        log_path: file that receives stdout and stderr (appended to across restarts).
        cwd: working directory.
        env: full environment for the child (default: this process's).
        name: short label for log messages.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.name = name or Path(self.argv[0]).name
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """PID of the running (or last) child, or None before start."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has ended (negative: killed by that signal)."""
        return self._proc.poll() if self._proc is not None else None

    def running(self) -> bool:
        """Return True while the child is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the child.

        Raises:
            RuntimeError: it is already running.
            FileNotFoundError: the program does not exist.
        """
        if self.running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log_file.flush()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                # Own session and process group: a signal the test runner gets is not
                # forwarded to the child, and the child's own helpers can be killed with it.
                start_new_session=True,
            )
        except BaseException:
            self._close_log()
            raise
        log.info("started %s pid=%s: %s", self.name, self._proc.pid, " ".join(self.argv))

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to exit and return its status.

        Raises:
            subprocess.TimeoutExpired: still running after ``timeout`` seconds.
        """
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        code = self._proc.wait(timeout=timeout)
        self._close_log()
        return code

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the child itself (by PID), if it is still running."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, sig)

    def stop(self, grace: float = 5.0, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Stop the child: ``sig`` to its PID, wait ``grace`` seconds, then SIGKILL its group.

        Returns:
            The exit status, or None if it was never started.
        """
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self.send_signal(sig)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log.warning("%s pid=%s ignored %s; killing", self.name, self._proc.pid, sig.name)
                # The group id is the child's PID (start_new_session), and the child is not
                # reaped yet, so the id cannot have been reused: this reaches the child and any
                # helper it forked, and nothing this harness did not start.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
        code = self._proc.wait()
        self._close_log()
        log.info("%s pid=%s ended with %s", self.name, self._proc.pid, code)
        return code

    def read_log(self, tail: int | None = None) -> str:
        """Return the captured output (the last ``tail`` characters if given)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-tail:] if tail is not None else text

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
