"""Context variables set for the length of a block (the tenant scope, the consoles' replica reads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


@contextlib.contextmanager
def set_within(variable: ContextVar[T], value: T) -> Iterator[None]:
    """`variable` holds `value` inside the block, and again what it held before once the block is left."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)
