"""moto's S3 server, the object-store stand-in, run for tests and the demo: bound to 127.0.0.1 only, as localstripe is.

with LocalS3() as store:
    subprocess.run(command, env={**os.environ, **store.environment})   # S3_BUCKET, S3_ENDPOINT_URL, ...
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from config.settings import s3_storage
from core.ports import free_port

BUCKET = "openaisle-local"
REGION = "us-east-1"
PR_SET_PDEATHSIG = 1  # prctl(2)
KEY = SECRET = "local-standin"  # noqa: S105 — moto accepts any key; nothing leaves this machine


def _ended_with_its_parent() -> None:
    """In the child, before moto starts: the kernel ends it when the process that started it dies, even by SIGKILL
    (a test run killed by a timeout leaves no server behind)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalS3:
    """moto's S3 server in a child process with one empty bucket, for as long as the `with` block."""

    def __init__(self, *, port: int | None = None, bucket: str = BUCKET) -> None:
        self.port = port or free_port()
        self.bucket = bucket
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        """What a process started from here reads to keep its files in this bucket (platform/config/settings.py)."""
        return {
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_REGION": REGION,
            "S3_ACCESS_KEY_ID": KEY,
            "S3_SECRET_ACCESS_KEY": SECRET,
        }

    @property
    def storage(self) -> dict[str, Any]:
        """The STORAGES entry of this bucket."""
        return s3_storage(bucket=self.bucket, endpoint_url=self.endpoint_url, region=REGION, key=KEY, secret=SECRET)

    def client(self, **config: Any) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(**config) if config else None,
        )

    def __enter__(self) -> LocalS3:
        self._process = subprocess.Popen(  # noqa: S603 — moto's own server, fixed arguments
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_ended_with_its_parent if sys.platform == "linux" else None,
        )
        client = self.client(retries={"max_attempts": 1}, connect_timeout=1)  # asked again here, every 0.1 s
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                client.create_bucket(Bucket=self.bucket)
                return self
            except botocore.exceptions.EndpointConnectionError:
                if self._process.poll() is not None:
                    raise RuntimeError("moto's S3 server exited on start") from None
                time.sleep(0.1)
        self.__exit__(None, None, None)
        raise RuntimeError(f"moto's S3 server did not start on port {self.port}")

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def objects(self) -> list[str]:
        """The keys in the bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [stored["Key"] for page in pages for stored in page.get("Contents", [])]
