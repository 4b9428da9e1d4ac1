"""Store onboarding and event upload in a real browser, as a store manager of Alpha Markets would do them.

Issue 3: create a store, import the catalog, upload the layout, see the drawn floor plan (and a broken
layout refused whole). Issue 4: upload a file of store events and watch the stream page finish.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from catalog.importing import COLUMNS
from catalog.models import Product
from catalog.sample import sample_catalog_rows
from core import tenancy
from ingest.models import EventStream
from ingest.sample import sample_events
from stores.models import LayoutVersion, Store
from stores.sample import sample_bin_count, sample_layout
from stores.sample_store import SAMPLE_SKUS
from tenants.models import Tenant
from tests.browser.support import log_in

pytestmark = pytest.mark.browser

Screenshot = Callable[[str], Path]
CATALOG_SIZE = 60
CSV_COLUMNS = ["sku", "name", "price", "currency", "tax_rate", "weight_g", "barcode"]  # the import columns
assert set(CSV_COLUMNS) <= set(COLUMNS)
STREAM_TIMEOUT_MS = 90_000  # a real worker on PostgreSQL: queueing, chunking, bulk writes, page reloads


def catalog_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: row[column] for column in CSV_COLUMNS} for row in rows)
    return buffer.getvalue().encode()


def json_file(name: str, document: Any) -> dict[str, Any]:
    return {"name": name, "mimeType": "application/json", "buffer": json.dumps(document, indent=2).encode()}


def layout_versions(store: Store) -> list[int]:
    with tenancy.tenant_scope(store.tenant_id):
        return list(LayoutVersion.objects.filter(store=store).order_by("number").values_list("number", flat=True))


@pytest.mark.browser
def test_manager_onboards_a_store_catalog_layout_and_floor_plan(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, tenant_a: Tenant
) -> None:
    base = live_server.url
    log_in(page, f"{base}/admin/login/?next=/admin/stores/store/", manager_a)
    expect(page).to_have_url(f"{base}/admin/stores/store/")

    # 1. The store, from the Stores page.
    page.locator('a[href="/admin/stores/store/add/"]').first.click()
    expect(page).to_have_url(f"{base}/admin/stores/store/add/")
    page.fill('input[name="code"]', "DT-01")
    page.fill('input[name="name"]', "Downtown Express")
    page.fill('textarea[name="address"]', "12 Market Street\nSpringfield")
    page.select_option('select[name="timezone"]', "America/New_York")
    page.select_option('select[name="currency"]', "USD")
    page.select_option('select[name="status"]', "onboarding")
    page.fill('input[name="preauth_amount"]', "75.00")
    expect(page.locator('input[name="overcharge_risk"]')).to_have_value("0.5")
    page.fill('input[name="overcharge_risk"]', "0.25")
    page.fill('input[name="settling_window_seconds"]', "180")
    screenshot("onboarding-store-form")
    page.locator('button[name="_save"], input[name="_save"]').first.click()

    expect(page).to_have_url(f"{base}/admin/stores/store/")
    expect(page.locator("#result_list")).to_contain_text("DT-01")
    expect(page.locator("#result_list")).to_contain_text("Downtown Express")
    with tenancy.tenant_scope(tenant_a.pk):
        store = Store.objects.get(code="DT-01")
    assert (store.tenant_id, store.timezone, store.currency) == (tenant_a.pk, "America/New_York", "USD")
    assert (store.preauth_amount, store.overcharge_risk, store.settling_window_seconds) == (
        7500,
        Decimal("0.0025"),
        180,
    )

    # 2. The catalog, from the Products page.
    rows = sample_catalog_rows(count=CATALOG_SIZE)
    skus = [row["sku"] for row in rows]
    page.goto(f"{base}/admin/catalog/product/")
    page.get_by_role("link", name=re.compile("Import catalog")).first.click()
    expect(page).to_have_url(re.compile(r"/admin/catalog/product/import"))
    page.set_input_files(
        'input[name="file"]', {"name": "alpha-catalog.csv", "mimeType": "text/csv", "buffer": catalog_csv(rows)}
    )
    page.get_by_role("button", name="Import").click()

    expect(page).to_have_url(re.compile(r"/admin/catalog/catalogimport/\d+/change/"))
    expect(page.locator("#import-done")).to_be_visible()
    expect(page.locator("#import-created")).to_have_text(str(CATALOG_SIZE))
    expect(page.locator("#import-updated")).to_have_text("0")
    expect(page.locator("#import-errors")).to_have_count(0)
    screenshot("onboarding-catalog-import-result")

    page.get_by_role("link", name="Back to products").click()
    expect(page).to_have_url(f"{base}/admin/catalog/product/")
    products = page.locator("#result_list")
    expect(products).to_contain_text("COLA-330")
    expect(products).to_contain_text("Cola 330 ml")
    expect(products).to_contain_text(f"${rows[0]['price']}")
    screenshot("onboarding-product-list")
    # the paginator's count (a hidden "Select all 60 products" link says it too)
    expect(page.get_by_text(re.compile(rf"\b{CATALOG_SIZE}\s+products\b")).filter(visible=True).first).to_be_visible()
    page.fill('input[name="q"]', skus[-1])
    page.keyboard.press("Enter")
    expect(products).to_contain_text(skus[-1])
    expect(products).to_contain_text(rows[-1]["name"])
    with tenancy.tenant_scope(tenant_a.pk):
        assert sorted(Product.objects.values_list("sku", flat=True)) == sorted(skus)

    # 3. The layout, from the store's page.
    page.goto(f"{base}/admin/stores/store/")
    page.locator("#result_list").get_by_role("link", name="DT-01").click()
    expect(page).to_have_url(f"{base}/admin/stores/store/{store.pk}/change/")
    expect(page.get_by_text("No layout yet.").first).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Upload layout")).first).to_be_visible()
    page.get_by_role("link", name=re.compile("Upload layout")).first.click()
    expect(page).to_have_url(f"{base}/admin/stores/store/{store.pk}/layout/upload/")
    expect(page).to_have_title(re.compile(r"Upload a layout for DT-01"))
    page.set_input_files('input[name="file"]', json_file("downtown-layout.json", sample_layout(skus=skus)))
    screenshot("onboarding-layout-upload-form")
    page.get_by_role("button", name="Validate and publish").click()

    expect(page).to_have_url(re.compile(r"/admin/stores/layoutversion/\d+/change/"))
    expect(page.get_by_text("Layout v1 published for DT-01.")).to_be_visible()
    plan = page.locator(".floor-plan svg")
    expect(plan).to_be_visible()
    bins = plan.locator("rect.bin")
    assert bins.count() == sample_bin_count() >= 100
    expect(plan.locator('circle.camera[data-code="CAM-01"]')).to_have_count(1)
    expect(plan.locator('rect.gate[data-code="GATE-IN"]')).to_have_count(1)
    expect(plan.locator("rect.fixture")).to_have_count(12)
    expect(plan.locator("polygon.zone")).to_have_count(5)
    expect(plan.locator("text").filter(has_text=re.compile(r"^COLA-330$")).first).to_be_visible()
    # Every bin carries its details for the hover tooltip (but see test_hovering_a_bin_shows_its_details).
    first_bin = plan.locator('rect.bin[data-code="F01-B01"]')
    expect(first_bin.locator("title")).to_have_text(re.compile(r"^Bin F01-B01: COLA-330 Cola 330 ml · capacity 24"))
    expect(plan.locator("rect.bin > title")).to_have_count(sample_bin_count())
    camera = plan.locator('circle.camera[data-code="CAM-08"]')
    camera.hover()  # Playwright checks that the marker itself is what the pointer is over
    expect(camera.locator("title")).to_have_text(
        "Camera CAM-08: not heard from yet · covers Z-SNACKS, Z-PRODUCE, Z-HOME"
    )
    screenshot("onboarding-floor-plan")
    assert layout_versions(store) == [1]

    # The store now shows the layout in force, and its history.
    page.goto(f"{base}/admin/stores/store/")
    store_row = page.locator("#result_list tr").filter(has_text="DT-01")
    expect(store_row).to_contain_text("v1")
    page.goto(f"{base}/admin/stores/store/{store.pk}/change/")
    expect(page.locator(".floor-plan svg rect.bin")).to_have_count(sample_bin_count())


@pytest.fixture
def store(tenant_a: Tenant, make_store_with_layout: Callable[..., Store]) -> Store:
    """Alpha's store with the sample layout in force."""
    return make_store_with_layout(tenant_a, "LAY-01")


@pytest.mark.browser
def test_store_page_lists_its_layout_versions(page: Page, live_server, manager_a: User, store: Store) -> None:
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/stores/store/add/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/stores/store/add/")
    # A new store: the "Layout versions" inline is there, with no forms (versions come from "Upload layout").
    expect(page.locator('input[name="layouts-TOTAL_FORMS"]')).to_have_value("0", timeout=2_000)

    page.goto(f"{live_server.url}/admin/stores/store/{store.pk}/change/")
    expect(page.locator('input[name="layouts-TOTAL_FORMS"]')).to_have_value("1", timeout=2_000)
    expect(page.locator("#layouts-group")).to_contain_text("Layout versions")


@pytest.mark.browser
def test_upload_layout_button_opens_the_upload_form(page: Page, live_server, manager_a: User, store: Store) -> None:
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/stores/store/{store.pk}/change/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/stores/store/{store.pk}/change/")
    page.get_by_role("link", name=re.compile("Upload layout")).first.click()
    expect(page).to_have_url(f"{live_server.url}/admin/stores/store/{store.pk}/layout/upload/", timeout=5_000)
    expect(page.get_by_role("button", name="Validate and publish")).to_be_visible(timeout=2_000)


@pytest.mark.browser
def test_choosing_a_layout_file_leaves_effective_from_alone(
    page: Page, live_server, manager_a: User, store: Store
) -> None:
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/stores/store/{store.pk}/layout/upload/", manager_a)
    page.set_input_files('input[name="file"]', json_file("layout.json", sample_layout(skus=SAMPLE_SKUS)))
    expect(page.locator('input[name="effective_from"]')).to_have_value("", timeout=2_000)
    page.get_by_role("button", name="Validate and publish").click()
    expect(page).to_have_url(re.compile(r"/admin/stores/layoutversion/\d+/change/"), timeout=5_000)


@pytest.mark.browser
def test_hovering_a_bin_shows_its_details(page: Page, live_server, manager_a: User, store: Store) -> None:
    with tenancy.tenant_scope(store.tenant_id):
        layout = LayoutVersion.objects.get(store=store)
    log_in(page, f"{live_server.url}/admin/login/?next=/admin/stores/layoutversion/{layout.pk}/change/", manager_a)
    bins = page.locator(".floor-plan svg rect.bin")
    expect(bins).to_have_count(sample_bin_count())
    # What a mouse over the middle of each bin is really over (the shape whose <title> the browser shows), each bin
    # scrolled to the middle of the window first: the floor plan is taller than the window, and the page's
    # sticky save bar covers what is under it until one scrolls, as on any admin page.
    hovered = page.evaluate(
        """() => [...document.querySelectorAll('.floor-plan svg rect.bin')].map((bin) => {
            bin.scrollIntoView({block: 'center', inline: 'center'});
            const box = bin.getBoundingClientRect();
            const hit = document.elementFromPoint(box.x + box.width / 2, box.y + box.height / 2);
            return hit === bin ? 'bin' : hit ? (hit.getAttribute('class') || hit.tagName) : 'nothing';
        })"""
    )
    assert set(hovered) == {"bin"}, f"what the pointer hits over a bin's middle: {Counter(hovered)}"


@pytest.mark.browser
def test_broken_layout_is_refused_whole_with_every_problem(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, store: Store
) -> None:
    document = sample_layout(skus=SAMPLE_SKUS)
    document["fixtures"][0]["bins"][0]["sku"] = "NO-SUCH-SKU"
    document["fixtures"][3]["zone"] = "Z-NOWHERE"

    log_in(page, f"{live_server.url}/admin/login/?next=/admin/stores/store/{store.pk}/layout/upload/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/stores/store/{store.pk}/layout/upload/")
    page.set_input_files('input[name="file"]', json_file("broken-layout.json", document))
    page.get_by_role("button", name="Validate and publish").click()

    expect(page).to_have_url(f"{live_server.url}/admin/stores/store/{store.pk}/layout/upload/")
    problems = page.locator("#layout-problems")
    expect(problems).to_be_visible()
    expect(problems).to_contain_text("The layout was not published: 2 problems.")
    expect(problems.locator("li")).to_have_count(2)
    expect(problems).to_contain_text("fixtures[0].bins[0].sku")
    expect(problems).to_contain_text("'NO-SUCH-SKU' is not an active product of the catalog")
    expect(problems).to_contain_text("fixtures[3].zone")
    expect(problems).to_contain_text("'Z-NOWHERE' is not a zone of this layout")
    screenshot("onboarding-layout-problems")
    assert layout_versions(store) == [1], "a refused layout must publish nothing"


@pytest.mark.browser
def test_manager_uploads_events_and_watches_the_stream_finish(
    page: Page, live_server, screenshot: Screenshot, manager_a: User, store: Store, celery_worker: None
) -> None:
    events = list(
        sample_events(sample_layout(skus=SAMPLE_SKUS), visits=30, start=datetime(2026, 3, 2, 8, tzinfo=UTC), seed=1)
    )
    lines = [json.dumps(event) for event in events]
    broken_line = len(lines) // 2 + 1
    lines.insert(broken_line - 1, "{broken")
    body = ("\n".join(lines) + "\n").encode()

    log_in(page, f"{live_server.url}/admin/login/?next=/admin/ingest/eventstream/", manager_a)
    expect(page).to_have_url(f"{live_server.url}/admin/ingest/eventstream/")
    page.get_by_role("link", name=re.compile("Upload events")).first.click()
    expect(page).to_have_url(re.compile(r"/admin/ingest/eventstream/upload"))
    page.select_option('select[name="store"]', str(store.pk))
    page.set_input_files(
        'input[name="file"]', {"name": "s1-2026-03-02.ndjson", "mimeType": "application/x-ndjson", "buffer": body}
    )
    page.get_by_role("button", name="Upload and process").click()

    expect(page).to_have_url(re.compile(r"/admin/ingest/eventstream/\d+/change/"))
    stream_id = int(re.search(r"/eventstream/(\d+)/change/", page.url).group(1))
    screenshot("ingest-stream-just-uploaded")  # with a real worker: usually still queued or processing
    expect(page.locator("#stream-progress [role=progressbar]")).to_be_visible()
    # The page polls and reloads itself when the stream is finished; a finished page says so in data-finished.
    expect(page.locator('#stream-progress[data-finished="1"]')).to_have_count(1, timeout=STREAM_TIMEOUT_MS)
    expect(page.locator("#stream-status")).to_have_text("Done")
    expect(page.locator("#stream-lines")).to_have_text(str(len(events) + 1))
    expect(page.locator("#stream-accepted")).to_have_text(str(len(events)))
    expect(page.locator("#stream-duplicates")).to_have_text("0")
    expect(page.locator("#stream-rejected")).to_have_text("1")
    expect(page.locator("#stream-progress-bar")).to_have_attribute("style", re.compile(r"width:\s*100%"))
    expect(page.locator("#content, main").first).to_contain_text(f"line {broken_line}")
    screenshot("ingest-stream-done")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download rejected lines (CSV)").click()
    download = download_info.value
    assert download.suggested_filename == f"stream-{stream_id}-rejections.csv"
    rejected = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(rejected) == 1
    assert rejected[0]["line"] == str(broken_line)
    assert rejected[0]["raw"] == "{broken"
    assert rejected[0]["reason"]

    with tenancy.tenant_scope(store.tenant_id):
        stream = EventStream.objects.get(pk=stream_id)
    assert (stream.status, stream.lines, stream.accepted, stream.rejected) == ("done", len(events) + 1, len(events), 1)
