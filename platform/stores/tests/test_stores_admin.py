"""A manager brings a store from nothing to a drawn floor plan in the store admin."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import logged_in
from core import tenancy
from stores import health
from stores.floor_plan import render_floor_plan
from stores.models import Device, LayoutVersion, Store
from stores.sample_store import sample_products_add
from stores.tests.conftest import SKUS
from tenants.models import AuditEntry, Tenant


def _store_form(**overrides: str) -> dict[str, str]:
    form = {
        "code": "S7",
        "name": "Harbour",
        "address": "1 Quay",
        "timezone": "Europe/Oslo",
        "currency": "NOK",
        "status": "onboarding",
        "preauth_amount": "500.00",
        "overcharge_risk": "0.5",
        "settling_window_seconds": "120",
        "unseen_item_review_cost": "0",
        "dispute_window_days": "7",
        "dispute_auto_refund_limit": "50.00",
        "dispute_auto_refund_unsure": "on",
        "dispute_review_hours": "48",
        "layouts-TOTAL_FORMS": "0",
        "layouts-INITIAL_FORMS": "0",
    }
    return {**form, **overrides}


def test_manager_creates_a_store_uploads_a_layout_and_sees_the_plan(
    manager_a: User, tenant_a: Tenant, layout_document: dict
) -> None:
    sample_products_add(tenant=tenant_a)
    client = logged_in(manager_a)
    response = client.post("/admin/stores/store/add/", _store_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    store = Store.unscoped.get(tenant=tenant_a, code="S7")
    assert AuditEntry.unscoped.filter(tenant=tenant_a, object_type="stores.store", source="admin").exists()

    upload = SimpleUploadedFile("layout.json", json.dumps(layout_document).encode(), content_type="application/json")
    published = client.post(f"/admin/stores/store/{store.pk}/layout/upload/", {"file": upload})
    layout = LayoutVersion.unscoped.get(store=store)
    assert published["Location"] == f"/admin/stores/layoutversion/{layout.pk}/change/"
    page = client.get(published["Location"]).content.decode()
    assert "<svg" in page
    assert 'data-code="F01-B01"' in page
    assert "Product SKU-001" in page
    store_page = client.get(f"/admin/stores/store/{store.pk}/change/").content.decode()
    assert 'class="floor-plan"' in store_page
    created = timezone.localtime(layout.created_at, store.zone).strftime("%Y-%m-%d %H:%M %Z")
    assert created in store_page, "the layout versions' times are the store's, with its zone"


def test_a_broken_upload_lists_every_problem_and_publishes_nothing(
    manager_a: User, store_a: Store, layout_document: dict
) -> None:
    broken = copy.deepcopy(layout_document)
    broken["fixtures"][0]["zone"] = "Z-NOWHERE"
    broken["devices"][0]["covers"] = ["Z-NOPE"]
    response = logged_in(manager_a).post(
        f"/admin/stores/store/{store_a.pk}/layout/upload/", {"text": json.dumps(broken)}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "2 problems" in body
    assert "fixtures[0].zone" in body
    assert "devices[0].covers[0]" in body
    assert not LayoutVersion.unscoped.exists()
    not_json = logged_in(manager_a).post(f"/admin/stores/store/{store_a.pk}/layout/upload/", {"text": "{oops"})
    assert "not valid JSON" in not_json.content.decode()


def test_duplicate_store_code_is_a_form_error(manager_a: User, store_a: Store) -> None:
    response = logged_in(manager_a).post("/admin/stores/store/add/", _store_form(code="S1"))
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Store.unscoped.filter(tenant=store_a.tenant).count() == 1


def test_the_overcharge_risk_is_shown_and_typed_as_a_percentage(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'name="overcharge_risk" value="0.5"' in page
    assert "% of visits" in page and "review queue" in page
    assert f'href="/admin/visits/storecalibration/store/{store_a.pk}/"' in page
    options = f'href="/admin/visits/storecalibration/store/{store_a.pk}/#risk-options">What each setting would do'
    assert options in page, "beside the setting, what another would do"
    form = _store_form(code="S1", currency="USD", overcharge_risk="1.25")
    response = client.post(f"/admin/stores/store/{store_a.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    store_a.refresh_from_db()
    assert store_a.overcharge_risk == Decimal("0.0125")


@pytest.mark.parametrize(
    ("typed", "message"), [("7", "from 0.05 % to 5 %"), ("0.01", "from 0.05 % to 5 %"), ("half", "number")]
)
def test_a_bad_overcharge_risk_is_a_form_error_and_changes_nothing(
    manager_a: User, store_a: Store, typed: str, message: str
) -> None:
    response = logged_in(manager_a).post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(code="S1", currency="USD", name="Renamed", overcharge_risk=typed),
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    store_a.refresh_from_db()
    assert (store_a.name, store_a.overcharge_risk) == ("Main Street", Decimal("0.005"))


def test_another_tenants_store_cannot_be_opened_or_uploaded_to(
    manager_a: User, store_b: Store, layout_document: dict
) -> None:
    client = logged_in(manager_a)
    assert client.get(f"/admin/stores/store/{store_b.pk}/layout/upload/").status_code == 404
    assert client.get(f"/admin/stores/store/{store_b.pk}/change/").status_code == 302, (
        "as for a store that does not exist"
    )
    client.post(f"/admin/stores/store/{store_b.pk}/change/", _store_form(code="S1", overcharge_risk="5"))
    store_b.refresh_from_db()
    assert store_b.overcharge_risk == Decimal("0.005")
    client.post(f"/admin/stores/store/{store_b.pk}/layout/upload/", {"text": json.dumps(layout_document)})
    assert not LayoutVersion.unscoped.exists()
    assert "Bravo High Street" not in client.get("/admin/stores/store/").content.decode()


@pytest.fixture
def devices_in_every_health(store_a: Store, layout_document: dict, api_a) -> dict[str, str]:
    """CAM-01 online, CAM-02 reported offline, CAM-03 silent, GATE-IN degraded; the others never heard from."""
    api_a.put("/api/v1/stores/S1/layout", layout_document, format="json")
    now = timezone.now()
    Device.unscoped.filter(code="CAM-01").update(last_seen_at=now)
    Device.unscoped.filter(code="CAM-02").update(last_seen_at=now, status="offline", status_changed_at=now)
    Device.unscoped.filter(code="CAM-03").update(last_seen_at=now - timedelta(hours=2), status="online")
    Device.unscoped.filter(code="GATE-IN").update(last_seen_at=now, status="degraded", status_changed_at=now)
    return {"CAM-01": "online", "CAM-02": "offline", "CAM-03": "silent", "GATE-IN": "degraded", "CAM-04": "never"}


def test_device_health_reads_the_same_on_the_list_the_page_the_store_and_the_plan(
    manager_a: User, store_a: Store, devices_in_every_health: dict[str, str]
) -> None:
    with tenancy.tenant_scope(store_a.tenant_id):
        listed = {d.code: d.health_key for d in health.with_health(Device.objects.all())}
        one_by_one = {d.code: health.device_health(device=d).key for d in Device.objects.all()}
    assert listed == one_by_one
    assert {code: listed[code] for code in devices_in_every_health} == devices_in_every_health

    client = logged_in(manager_a)
    body = client.get("/admin/stores/device/").content.decode()
    assert body.index("CAM-02") < body.index("CAM-03") < body.index("GATE-IN") < body.index("CAM-01")
    assert body.index("CAM-01") < body.index("CAM-04"), "never heard from comes last"
    assert "Devices come from each store&#x27;s layout" in body
    assert f'href="/admin/stores/store/{store_a.pk}/layout/upload/"' in body
    silent = client.get("/admin/stores/device/?health=silent").content.decode()
    assert "CAM-03" in silent and "CAM-01" not in silent and "CAM-02" not in silent

    device = Device.unscoped.get(code="CAM-03")
    page = client.get(f"/admin/stores/device/{device.pk}/change/").content.decode()
    assert "Silent" in page and "Nothing heard for over 15 minutes" in page
    heard = timezone.localtime(device.last_seen_at, store_a.zone)  # on the store's clock, its zone named
    assert f"last heard from {heard.day} {heard:%b %Y %H:%M %Z}" in page and heard.tzname() in ("EST", "EDT")
    assert 'name="_save"' not in page and "Not heard from yet" not in page

    stores = client.get("/admin/stores/store/").content.decode()
    assert "1 offline, 1 degraded, 1 silent" in stores and "all healthy" not in stores
    store_page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'class="device camera online" data-code="CAM-01"' in store_page
    assert 'class="device camera silent" data-code="CAM-03"' in store_page
    assert 'class="device camera offline" data-code="CAM-02"' in store_page
    assert 'class="device gate degraded" data-code="GATE-IN"' in store_page


def test_adding_a_device_explains_that_devices_come_from_the_layout(manager_a: User, store_a: Store) -> None:
    response = logged_in(manager_a).get("/admin/stores/device/add/", follow=True)
    assert response.redirect_chain == [("/admin/stores/device/", 302)]
    body = response.content.decode()
    assert "Devices are not added here: they come from the store&#x27;s layout." in body
    assert "To add, move or remove one, publish a new layout of the store." in body
    assert not Device.unscoped.exists()


def test_another_tenants_devices_are_not_listed_nor_opened(
    manager_a: User, store_b: Store, layout_document: dict, api_b
) -> None:
    api_b.put("/api/v1/stores/S1/layout", layout_document, format="json")
    client = logged_in(manager_a)
    assert "CAM-01" not in client.get("/admin/stores/device/").content.decode()
    device = Device.unscoped.get(store=store_b, code="CAM-01")
    assert client.get(f"/admin/stores/device/{device.pk}/change/").status_code == 302, "as for a missing device"


def test_floor_plan_colours_devices_by_health_and_escapes_text(layout_document: dict) -> None:
    layout_document["zones"][0]["name"] = "<script>alert(1)</script>"
    svg = render_floor_plan(
        layout_document, device_health={"CAM-01": "offline", "CAM-02": "online"}, highlighted_bins={"F02-B03"}
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert 'class="device camera offline" data-code="CAM-01"' in svg
    assert 'class="device camera online" data-code="CAM-02"' in svg
    assert svg.count('class="bin"') == 116
    assert 'stroke="#dc2626" stroke-width="2.5" class="bin" data-code="F02-B03"' in svg


def test_floor_plan_draws_known_fixture_kinds_and_any_other_as_a_plain_fixture(layout_document: dict) -> None:
    layout_document["fixtures"][0]["kind"] = "fridge"
    layout_document["fixtures"][1]["kind"] = "pallet tower"
    layout_document["devices"].append({"code": "STAFF-01", "kind": "staff_device", "position": [2.0, 2.0]})
    svg = render_floor_plan(layout_document, device_health={"STAFF-01": "online"})
    fixtures = layout_document["fixtures"]
    assert f'class="fixture" data-code="{fixtures[0]["code"]}" data-kind="fridge"' in svg
    assert f'class="fixture other-kind" data-code="{fixtures[1]["code"]}" data-kind="pallet tower"' in svg
    assert f"{fixtures[1]['code']} · pallet tower" in svg
    assert 'class="device staff_device online" data-code="STAFF-01"' in svg


def test_the_pre_authorisation_is_typed_in_the_stores_currency(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'name="preauth_amount" value="50.00"' in page and "(minor unit)" not in page
    response = client.post(
        f"/admin/stores/store/{store_a.pk}/change/", _store_form(code="S1", currency="USD", preauth_amount="75.50")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    store_a.refresh_from_db()
    assert store_a.preauth_amount == 7550


def test_a_pre_authorisation_finer_than_the_currency_is_refused(manager_a: User, store_a: Store) -> None:
    response = logged_in(manager_a).post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(code="S1", currency="USD", name="Renamed", preauth_amount="75.505"),
    )
    assert response.status_code == 200
    assert "USD amounts have at most 2 decimals" in response.content.decode()
    store_a.refresh_from_db()
    assert (store_a.name, store_a.preauth_amount) == ("Main Street", 5000)


def test_the_cost_of_a_look_at_an_unseen_item_is_typed_in_the_stores_currency(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'name="unseen_item_review_cost" value="0.00"' in page and "Cost of a look at an unseen item" in page
    response = client.post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(code="S1", currency="USD", unseen_item_review_cost="0.35"),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    store_a.refresh_from_db()
    assert store_a.unseen_item_review_cost == 35
    page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'name="unseen_item_review_cost" value="0.35"' in page


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("-1", "greater than or equal to 0"),
        ("0.355", "USD amounts have at most 2 decimals"),
        ("100000.01", "At most 100,000.00 USD."),
        ("a lot", "Enter a number"),
    ],
)
def test_a_bad_cost_of_a_look_at_an_unseen_item_is_refused_and_nothing_changes(
    manager_a: User, store_a: Store, typed: str, error: str
) -> None:
    response = logged_in(manager_a).post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(code="S1", currency="USD", name="Renamed", unseen_item_review_cost=typed),
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    store_a.refresh_from_db()
    assert (store_a.name, store_a.unseen_item_review_cost) == ("Main Street", 0)


def test_a_manager_sets_the_stores_dispute_policy(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert "Shoppers&#x27; disputes" in page and 'name="dispute_auto_refund_limit" value="5.00"' in page
    response = client.post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(
            code="S1",
            currency="USD",
            dispute_window_days="14",
            dispute_auto_refund_limit="12.50",
            dispute_auto_refund_unsure="",
            dispute_review_hours="24",
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    store_a.refresh_from_db()
    policy = (store_a.dispute_window_days, store_a.dispute_auto_refund_limit, store_a.dispute_auto_refund_unsure)
    assert policy == (14, 1250, False) and store_a.dispute_review_hours == 24


def test_a_dispute_policy_out_of_range_is_refused_and_nothing_changes(manager_a: User, store_a: Store) -> None:
    response = logged_in(manager_a).post(
        f"/admin/stores/store/{store_a.pk}/change/",
        _store_form(code="S1", currency="USD", dispute_window_days="0", dispute_auto_refund_limit="-1"),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "greater than or equal to 1" in page and "greater than or equal to 0" in page
    store_a.refresh_from_db()
    assert (store_a.dispute_window_days, store_a.dispute_auto_refund_limit) == (7, 500)


def _published(api: APIClient, store: Store, document: dict) -> LayoutVersion:
    """The store's layout as its licensee publishes it through the API."""
    assert api.put(f"/api/v1/stores/{store.code}/layout", document, format="json").status_code == 201
    return LayoutVersion.unscoped.get(store=store)


def test_the_layout_page_reads_out_the_layout_and_offers_its_document(
    manager_a: User, store_a: Store, layout_document: dict, api_a
) -> None:
    layout = _published(api_a, store_a, layout_document)
    client = logged_in(manager_a)
    page = client.get(f"/admin/stores/layoutversion/{layout.pk}/change/").content.decode()
    counts = page[page.index('id="layout-counts"') :]
    counts = " ".join(counts[: counts.index("</p>")].split())
    assert "<strong>5</strong> zones, <strong>12</strong> fixtures, <strong>116</strong> bins" in counts
    assert "<strong>8</strong> cameras" in counts and "<strong>2</strong> gates" in counts
    assert "<strong>1</strong> staff device," in counts
    assert 'id="layout-zones"' in page and "Dairy &amp; chilled" in page
    assert '"fixtures": [' not in page, "no JSON dump on the page"
    assert 'class="floor-plan"' in page and page.index('id="layout-zones"') < page.index('class="floor-plan"')

    download = client.get(f"/admin/stores/layoutversion/{layout.pk}/document.json")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="S1-layout-v1.json"'
    assert json.loads(download.content) == layout.document

    store_page = client.get(f"/admin/stores/store/{store_a.pk}/change/").content.decode()
    assert 'id="floor-plan-section"' in store_page and "Floor plan in force (layout v1)" in store_page


def test_another_tenants_layout_is_neither_shown_nor_downloaded(
    manager_a: User, store_b: Store, layout_document: dict, api_b
) -> None:
    layout = _published(api_b, store_b, layout_document)
    client = logged_in(manager_a)
    assert client.get(f"/admin/stores/layoutversion/{layout.pk}/document.json").status_code == 404
    assert 'id="layout-zones"' not in client.get(f"/admin/stores/layoutversion/{layout.pk}/change/").content.decode()


def test_a_store_is_started_from_a_layout_template_without_writing_json(manager_a: User, store_a: Store) -> None:
    client = logged_in(manager_a)
    url = f"/admin/stores/store/{store_a.pk}/layout/upload/"
    page = client.get(url).content.decode()
    assert 'href="/docs/layout.md"' in page and f"/admin/stores/store/{store_a.pk}/layout/template/aisle.json" in page
    response = client.post(url, {"template": "aisle"})
    layout = LayoutVersion.unscoped.get(store=store_a)
    assert response["Location"] == f"/admin/stores/layoutversion/{layout.pk}/change/"
    assert (len(layout.document["fixtures"]), sum(len(f["bins"]) for f in layout.document["fixtures"])) == (6, 56)
    assert {b["sku"] for f in layout.document["fixtures"] for b in f["bins"]} == set(SKUS)
    assert Device.unscoped.filter(store=store_a, kind="camera").count() == 5

    download = client.get(f"/admin/stores/store/{store_a.pk}/layout/template/convenience.json")
    assert download.status_code == 200 and len(json.loads(download.content)["fixtures"]) == 12
    assert client.get(f"/admin/stores/store/{store_a.pk}/layout/template/castle.json").status_code == 404


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"template": "aisle", "text": "{}"}, "Choose a template or give a document, not both."),
        ({"template": "castle"}, "Select a valid choice."),
        ({"template": "", "text": ""}, "Choose a template, a layout file, or paste the document."),
    ],
)
def test_a_bad_template_choice_is_refused_and_publishes_nothing(
    manager_a: User, store_a: Store, form: dict[str, str], message: str
) -> None:
    response = logged_in(manager_a).post(f"/admin/stores/store/{store_a.pk}/layout/upload/", form)
    assert response.status_code == 200 and message in response.content.decode()
    assert not LayoutVersion.unscoped.exists()


def test_a_template_needs_the_catalog_first(manager_a: User, tenant_a: Tenant) -> None:
    store = Store.unscoped.create(tenant=tenant_a, code="EMPTY", name="No products", currency="USD")
    response = logged_in(manager_a).post(f"/admin/stores/store/{store.pk}/layout/upload/", {"template": "aisle"})
    assert "import your catalog first" in response.content.decode()
    assert not LayoutVersion.unscoped.exists()


def test_another_tenants_store_gets_no_template(manager_a: User, store_b: Store) -> None:
    client = logged_in(manager_a)
    assert client.get(f"/admin/stores/store/{store_b.pk}/layout/template/aisle.json").status_code == 404
    assert client.post(f"/admin/stores/store/{store_b.pk}/layout/upload/", {"template": "aisle"}).status_code == 404
    assert not LayoutVersion.unscoped.exists()
