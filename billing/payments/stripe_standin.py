"""localstripe, the Stripe stand-in, run for tests, the demo and benchmarks: bound to 127.0.0.1 only.

The stock CLI listens on every interface and pickles its whole store to /tmp on every write (slow, and shared
between runs); here it listens on loopback and keeps its store in memory.

    python -m billing.payments.stripe_standin --port 8420
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

import requests

from core.standin import StandinServer

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


class LocalStripe(StandinServer):
    """localstripe in a child process, for as long as the `with` block."""

    name = "localstripe"

    def __init__(self, *, port: int | None = None, state: Path | None = None) -> None:
        super().__init__(port=port)
        self.state = state

    def command(self) -> list[str]:
        state = ["--state", str(self.state)] if self.state else []
        return [sys.executable, "-m", "billing.payments.stripe_standin", "--port", str(self.port), *state]

    def command_environment(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), str(PROJECT_ROOT / "platform")])}

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def pid(self) -> int:
        """Its process (0 when not running): benchmarks time and classify it."""
        return self._process.pid if self._process is not None else 0

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
