"""A free TCP port on 127.0.0.1, for the stand-ins and servers the tests, the demo and the benchmarks start."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
