from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.utils import timezone

from billing.invoicing.calculations import previous_month
from core import tenancy


@pytest.fixture
def platform_wide() -> Iterator[None]:
    """Read rows (and their related managers) as the operator site and the billing jobs do."""
    with tenancy.platform_wide_scope():
        yield


@pytest.fixture
def last_month() -> date:
    """The first day of the month before this one: the month a close bills."""
    return previous_month(timezone.localdate())[0]
