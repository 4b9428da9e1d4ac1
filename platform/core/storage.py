"""Reading part of a stored file through the storage API: a byte range, never the whole file, never a local path.

On the local disk (the embedded default) the file is opened and read from `start`; on S3 (`S3_BUCKET`, django-
storages) one ranged GET fetches exactly `[start, end)` — django-storages' own file object would download the
whole object first, and an ingest worker reads one 1 MiB chunk of a stream of gigabytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

from django.conf import settings
from django.core.files.storage import default_storage, storages
from django.utils.functional import empty
from storages.utils import clean_name


class _RangeBody:
    """The body of a ranged GET, readable as the file it is part of: positioned at `start`."""

    def __init__(self, body: Any, start: int) -> None:
        self._body, self._start = body, start

    def seek(self, offset: int) -> int:
        if offset != self._start:
            raise ValueError(f"This part of the file starts at byte {self._start}, not {offset}.")
        return offset

    def read(self, size: int = -1) -> bytes:
        return bytes(self._body.read(None if size < 0 else size))

    def close(self) -> None:
        self._body.close()


@contextmanager
def open_range(name: str, *, start: int, end: int) -> Iterator[BinaryIO]:
    """The stored file `name`, to be read from `start` (seek there first) up to `end` (exclusive)."""
    bucket = getattr(default_storage, "bucket", None)
    if bucket is None or end <= start:
        with default_storage.open(name, "rb") as file:
            yield cast(BinaryIO, file)
        return
    key = cast(Any, default_storage)._normalize_name(clean_name(name))
    body = _RangeBody(bucket.Object(key).get(Range=f"bytes={start}-{end - 1}")["Body"], start)
    try:
        yield cast(BinaryIO, body)
    finally:
        body.close()


def default_storage_replaced(backend: dict[str, Any], *, bucket: str) -> None:
    """From now on this process keeps its files in `backend` (an entry of STORAGES; on S3, `bucket`): the demo moves
    to the S3 stand-in it has just started, after the settings were read."""
    settings.STORAGES = {**settings.STORAGES, "default": backend}
    settings.S3_BUCKET = bucket
    handler = cast(Any, storages)
    handler.__dict__.pop("backends", None)  # a cached_property
    handler._backends = None
    handler._storages = {}
    cast(Any, default_storage)._wrapped = empty
