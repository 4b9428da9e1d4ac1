"""A store manager's first hour, in a real browser: a store onboarded from templates, with no JSON written.

Issue 17: create the store, import the catalog from the example file the import page offers, start the
layout from a template, then read the layout, the floor plan and the devices it brought.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from catalog.models import Product
from core import tenancy
from stores.models import Device, LayoutVersion, Store
from tenants.models import Tenant
from tests.browser.support import log_in

pytestmark = pytest.mark.browser

Screenshot = Callable[[str], Path]


def test_a_manager_onboards_a_store_from_templates_without_writing_json(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, tenant_a: Tenant, tmp_path: Path
) -> None:
    base = live_server.url
    log_in(page, f"{base}/admin/login/?next=/admin/stores/store/add/", manager_a)

    # 1. The store: money typed in dollars.
    expect(page).to_have_url(f"{base}/admin/stores/store/add/")
    page.fill('input[name="code"]', "HB-01")
    page.fill('input[name="name"]', "Harbour Express")
    page.select_option('select[name="currency"]', "USD")
    expect(page.locator('input[name="preauth_amount"]')).to_have_value("50.00")
    page.fill('input[name="preauth_amount"]', "40.00")
    screenshot("manager-store-form")
    page.locator('button[name="_save"], input[name="_save"]').first.click()
    expect(page.locator("#result_list")).to_contain_text("HB-01")
    expect(page.locator("#result_list")).to_contain_text("no devices yet")
    with tenancy.tenant_scope(tenant_a.pk):
        store = Store.objects.get(code="HB-01")
    assert store.preauth_amount == 4000

    # 2. The catalog, from the example file the import page offers.
    page.goto(f"{base}/admin/catalog/product/import/")
    expect(page.locator("#format-help").get_by_role("link", name="the catalog row (docs/catalog.md)")).to_be_visible()
    screenshot("manager-catalog-import")
    with page.expect_download() as waiting:
        page.get_by_role("link", name=re.compile("Download an example file")).click()
    example = tmp_path / "catalog-example.csv"
    waiting.value.save_as(example)
    page.set_input_files('input[name="file"]', str(example))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-created")).to_have_text("60")
    with tenancy.tenant_scope(tenant_a.pk):
        assert Product.objects.count() == 60

    # 3. The layout, from a template: no JSON written.
    page.goto(f"{base}/admin/stores/store/{store.pk}/change/")
    page.get_by_role("link", name=re.compile("Upload layout")).first.click()
    expect(page).to_have_url(f"{base}/admin/stores/store/{store.pk}/layout/upload/")
    expect(page.locator("#format-help")).to_contain_text("Grocery aisle (JSON)")
    page.select_option('select[name="template"]', "aisle")
    screenshot("manager-layout-from-template")
    page.get_by_role("button", name="Validate and publish").click()

    expect(page.get_by_text("Layout v1 published for HB-01.")).to_be_visible()
    counts = page.locator("#layout-counts")
    expect(counts).to_contain_text(re.compile(r"2\s+zones,\s+6\s+fixtures,\s+56\s+bins"))
    expect(counts).to_contain_text(re.compile(r"5\s+cameras"))
    expect(page.locator("#layout-zones")).to_contain_text("Drinks")
    plan = page.locator(".floor-plan svg")
    expect(plan.locator("rect.bin")).to_have_count(56)
    assert (plan.bounding_box() or {"width": 0})["width"] > 900, "a floor plan large enough to read"
    screenshot("manager-layout-readout")
    with page.expect_download() as waiting:
        page.get_by_role("link", name="Download the layout document (JSON)").click()
    assert waiting.value.suggested_filename == "HB-01-layout-v1.json"
    with tenancy.tenant_scope(tenant_a.pk):
        assert LayoutVersion.objects.filter(store=store).count() == 1

    # 4. The devices the layout brought, explained, with one reading of their health.
    page.goto(f"{base}/admin/stores/device/")
    expect(page.locator("#devices-from-layout")).to_contain_text("Devices come from each store's layout")
    expect(page.locator("#devices-from-layout").get_by_role("link", name="HB-01")).to_be_visible()
    with tenancy.tenant_scope(tenant_a.pk):
        devices = Device.objects.filter(store=store).count()
    expect(page.get_by_text(re.compile(rf"\b{devices}\s+devices\b")).filter(visible=True).first).to_be_visible()
    expect(page.locator("#result_list")).to_contain_text("Not heard from yet")
    screenshot("manager-devices")
    page.locator("#result_list").get_by_role("link", name="CAM-01").click()
    expect(page.get_by_text("No event from this device has arrived yet.")).to_be_visible()
    expect(page.locator('button[name="_save"], input[name="_save"]')).to_have_count(0)
    screenshot("manager-device-page")

    page.goto(f"{base}/admin/stores/store/")
    expect(page.locator("#result_list")).to_contain_text(f"{devices} not heard from yet")
    page.goto(f"{base}/admin/stores/store/{store.pk}/change/")
    expect(page.locator("#floor-plan-section")).to_contain_text("Floor plan in force (layout v1)")
    expect(page.locator('#floor-plan-section circle.camera[data-code="CAM-01"] title')).to_have_text(
        "Camera CAM-01: not heard from yet · covers Z-DRINKS"
    )
    screenshot("manager-store-page")

    # 5. The events upload names its format and offers example events for the new store.
    page.goto(f"{base}/admin/ingest/eventstream/upload/")
    expect(page.locator("#format-help").get_by_role("link", name="JSON Schema")).to_be_visible()
    expect(page.locator("#format-help")).to_contain_text("Example events for HB-01 (NDJSON)")
    screenshot("manager-event-upload")
