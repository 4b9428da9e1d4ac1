"""moto's S3 server, the object-store stand-in, run for tests and the demo: bound to 127.0.0.1 only, as localstripe is.

with LocalS3() as store:
    subprocess.run(command, env={**os.environ, **store.environment})   # S3_BUCKET, S3_ENDPOINT_URL, ...
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from config.settings import s3_storage
from core.standin import StandinServer

BUCKET = "openaisle-local"
REGION = "us-east-1"
KEY = SECRET = "local-standin"  # noqa: S105 — moto accepts any key; nothing leaves this machine


class LocalS3(StandinServer):
    """moto's S3 server in a child process with one empty bucket, for as long as the `with` block."""

    name = "moto's S3 server"
    start_timeout = 30.0
    ends_with_its_parent = True

    def __init__(self, *, port: int | None = None, bucket: str = BUCKET) -> None:
        super().__init__(port=port)
        self.bucket = bucket
        self.endpoint_url = self.base_url

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

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def answers(self) -> bool:
        """Makes the bucket: it answers once that works."""
        try:
            self._probe.create_bucket(Bucket=self.bucket)
        except botocore.exceptions.EndpointConnectionError:
            return False
        return True

    @functools.cached_property
    def _probe(self) -> Any:
        return self.client(retries={"max_attempts": 1}, connect_timeout=1)  # asked again every 0.1 s on start

    def objects(self) -> list[str]:
        """The keys in the bucket."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [stored["Key"] for page in pages for stored in page.get("Contents", [])]
