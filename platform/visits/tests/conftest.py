"""Fixtures of the visits tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stores.models import Store
from tenants.models import Tenant


@pytest.fixture
def bravo_store(make_store_with_layout: Callable[..., Store], tenant_b: Tenant) -> Store:
    """The other tenant's store B1, with the sample layout: what tenant A's people must never see."""
    return make_store_with_layout(tenant_b, code="B1")
