"""localstripe, the Stripe stand-in, run for tests, the demo and benchmarks: bound to 127.0.0.1 only.

The stock CLI listens on every interface and pickles its whole store to /tmp on every write (slow, and shared
between runs); here it listens on loopback and keeps its store in memory.

    python -m billing.payments.stripe_standin --port 8420
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import requests

from core.ports import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def serve(*, port: int, state: Path | None = None) -> None:
    """Serve until stopped; with `state`, load the store from that file at start and save it there at exit."""
    import pickle

    from aiohttp import web
    from localstripe import resources, server

    resources.store.dump_to_disk = lambda: None
    if state is not None and state.exists():
        with state.open("rb") as saved:
            resources.store.update(pickle.load(saved))  # noqa: S301 — our own file, written below

    async def save(_: web.Application) -> None:
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
            with state.open("wb") as target:
                pickle.dump(dict(resources.store), target, protocol=pickle.HIGHEST_PROTOCOL)

    server.app.on_cleanup.append(save)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


class LocalStripe:
    """localstripe in a child process, for as long as the `with` block."""

    def __init__(self, *, port: int | None = None, state: Path | None = None) -> None:
        self.port = port or free_port()
        self.state = state
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalStripe:
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "platform")])}
        self._process = subprocess.Popen(  # noqa: S603 — our own module, fixed arguments
            [
                sys.executable,
                "-m",
                "billing.payments.stripe_standin",
                "--port",
                str(self.port),
                *(["--state", str(self.state)] if self.state else []),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self._process.poll() is not None:
                    raise RuntimeError("localstripe exited on start") from None
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"localstripe did not start on port {self.port}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def reset(self) -> None:
        """Forget every customer, card and payment (localstripe's own flush)."""
        requests.delete(f"{self.base_url}/_config/data", timeout=5).raise_for_status()

    def send_webhooks_to(self, *, url: str, secret: str, name: str = "openaisle") -> None:
        """Have localstripe post its events, signed with `secret`, to our webhook endpoint."""
        answer = requests.post(
            f"{self.base_url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=5
        )
        answer.raise_for_status()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1, store in memory")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--state", type=Path, help="Keep customers and payments in this file between runs.")
    arguments = parser.parse_args()
    serve(port=arguments.port, state=arguments.state)
