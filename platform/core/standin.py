"""A stand-in server (localstripe, moto's S3) in a child process bound to 127.0.0.1, for as long as a `with` block:
started, waited for until it answers, stopped again."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Self

from core.ports import free_port

PR_SET_PDEATHSIG = 1  # prctl(2)


def _ended_with_its_parent() -> None:
    """In the child, before the server starts: the kernel ends it when the process that started it dies, even by
    SIGKILL (a test run killed by a timeout leaves no server behind)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class StandinServer:
    """Subclasses say how the server is started (`command`), how to tell that it answers (`answers`) and its name."""

    name = "the stand-in server"
    start_timeout = 20.0  # seconds
    ends_with_its_parent = False  # on Linux: the kernel ends the server when the process that started it dies

    def __init__(self, *, port: int | None = None) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def command_environment(self) -> dict[str, str] | None:
        """The server's environment (None: this process's)."""
        return None

    def answers(self) -> bool:
        """One look: does the server answer yet?"""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(  # noqa: S603 — the subclasses' fixed commands
            self.command(),
            env=self.command_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_ended_with_its_parent if self.ends_with_its_parent and sys.platform == "linux" else None,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.answers():
                return self
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.name} exited on start")
            time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.name} did not start on port {self.port}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
