"""A store's calibration page in a real browser: what its cameras' scores mean, the scale they are read on first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from ingest.models import Event
from stores.models import Store
from tests.browser.support import log_in
from visits.tests.support import stored_event

pytestmark = pytest.mark.browser

Screenshot = Callable[[str], Path]


def test_a_manager_sees_the_cameras_of_a_new_store_read_on_their_own_scale(
    page: Page,
    live_server,
    screenshot: Screenshot,
    manager_a: User,
    store_a: Store,
) -> None:
    now = timezone.now()
    Event.unscoped.bulk_create(
        stored_event(store_a, f"p{n}", "item.picked", now - timedelta(minutes=n), session="S", bin="B", confidence=c)
        for n, c in enumerate([0.84, 0.88, 0.86] * 12, start=1)
    )
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/visits/storecalibration/store/{store_a.pk}/", manager_a)

    scale = page.locator("#fact-scale")
    expect(scale).to_contain_text("Your cameras' scale")
    expect(scale).to_contain_text("0.90")
    expect(scale).to_contain_text("read as full confidence, from the first day")
    expect(page.locator("#fact-weighing")).to_contain_text("as the catalog says")
    expect(page.locator("#fact-learnt")).to_contain_text("nothing yet")
    expect(page.locator(".oa-cal-chart svg")).to_be_visible()
    screenshot("manager-calibration-scale")
