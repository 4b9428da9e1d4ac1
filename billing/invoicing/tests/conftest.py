from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import tenancy


@pytest.fixture
def platform_wide() -> Iterator[None]:
    """Read rows (and their related managers) as the operator site and the billing jobs do."""
    with tenancy.platform_wide_scope():
        yield
