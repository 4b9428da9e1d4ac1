"""A group's visit in review, in a real browser: the payer's page names the companion, says who took each line,
puts the companion in the timeline and labels the bins each member took from on the floor plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from stores.models import Store
from tests.browser.support import log_in
from visits.models import Visit
from visits.tests.support import push, settle
from visits.tests.test_groups import _unsure_with_a_stranger, store  # noqa: F401 — fixture

pytestmark = [pytest.mark.browser]


def test_a_reviewer_sees_the_groups_members_on_the_payers_page(
    live_server,
    page: Page,
    screenshot: Callable[[str], Path],
    manager_a: User,
    store: Store,  # noqa: F811
) -> None:
    day = _unsure_with_a_stranger(store)
    push(store, day)
    settle(store, day)
    payer = Visit.unscoped.get(store=store, session="P")
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/visits/visit/{payer.pk}/change/", manager_a)
    expect(page.locator("#visit-group")).to_contain_text("pays for 1 companion: K")
    expect(page.locator(".oa-taken-by").first).to_contain_text("taken by K")
    expect(page.locator("#review-timeline")).to_contain_text("K entered as a companion of P")
    expect(page.locator("#floor-plan text.taker").first).to_be_attached()
    expect(page.locator("#review-plan")).to_contain_text("F01-B01 holds SKU-001")
    expect(page.locator(".oa-bin-takers").first).to_contain_text("taken by K")
    screenshot("review-group-payer")
    page.locator("#visit-group a", has_text="K").click()
    page.wait_for_load_state()
    expect(page.locator("#visit-group")).to_contain_text("companion of P")
    screenshot("review-group-companion")
