"""One HTTP POST to a licensee's endpoint, with hard limits, returning what happened as plain data.

Limits: connect 3 s, 10 s in all (urllib3's `total`: what connecting used is taken from the time left to
read), no redirects followed (a 3xx is not a delivery), at most RESPONSE_READ_BYTES of the answer read.
No environment proxies or ~/.netrc credentials are picked up (`trust_env` off): a licensee's URL never gets
anything but our request. Unless WEBHOOKS_ALLOW_PRIVATE_NETWORKS is on (it is off in production), a URL whose
host resolves to a loopback, private, link-local or otherwise non-public address is refused before connecting.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from urllib3.util import Timeout

CONNECT_TIMEOUT_SECONDS = 3.0
TOTAL_TIMEOUT_SECONDS = 10.0
RESPONSE_READ_BYTES = 4096
USER_AGENT = "OpenAisle-Webhooks/1.0"


@dataclass(frozen=True)
class PostResult:
    status_code: int | None
    body_excerpt: str
    error: str

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class DestinationRefused(Exception):
    """The URL's host is not a public internet address, and private networks are not allowed."""


def allow_private_networks() -> bool:
    return bool(getattr(settings, "WEBHOOKS_ALLOW_PRIVATE_NETWORKS", False))


def is_public_address(address: str) -> bool:
    return ipaddress.ip_address(address.split("%", 1)[0]).is_global


def check_destination(url: str) -> None:
    """Refuse a host that resolves to a non-public address (the receiving end of a server-side request forgery)."""
    if allow_private_networks():
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except socket.gaierror as error:
        raise DestinationRefused(f"The host {host!r} does not resolve ({error.strerror}).") from error
    for info in infos:
        address = str(info[4][0])
        if not is_public_address(address):
            raise DestinationRefused(f"The host {host!r} resolves to {address}, which is not a public address.")


def post(*, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
    """POST `body` to `url`; never raises for anything the network or the receiver does."""
    started = time.monotonic()
    try:
        check_destination(url)
        with requests.Session() as session:
            session.trust_env = False
            response = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers},
                # requests passes a urllib3 Timeout through as is (its stubs only know floats and tuples).
                timeout=Timeout(connect=CONNECT_TIMEOUT_SECONDS, total=TOTAL_TIMEOUT_SECONDS),  # type: ignore[arg-type]
                allow_redirects=False,
                stream=True,
            )
            with response:
                excerpt = _read_excerpt(response, deadline=started + TOTAL_TIMEOUT_SECONDS)
            return PostResult(status_code=response.status_code, body_excerpt=excerpt, error="")
    except DestinationRefused as error:
        return PostResult(status_code=None, body_excerpt="", error=str(error))
    except requests.Timeout:
        return PostResult(
            status_code=None, body_excerpt="", error=f"Timed out after {time.monotonic() - started:.1f} s."
        )
    except requests.RequestException as error:
        return PostResult(status_code=None, body_excerpt="", error=f"{type(error).__name__}: {error}"[:500])


def _read_excerpt(response: requests.Response, *, deadline: float) -> str:
    """The start of the answer, for the delivery log; stop at RESPONSE_READ_BYTES or the deadline."""
    received = b""
    try:
        for chunk in response.iter_content(chunk_size=1024):
            received += chunk
            if len(received) >= RESPONSE_READ_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass  # the status line came; an answer cut short still tells us whether it was delivered
    return received[:RESPONSE_READ_BYTES].decode("utf-8", errors="replace")
