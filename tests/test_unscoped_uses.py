"""`Model.unscoped` reaches every tenant's rows: it is for code that names the tenant itself (a row written for a
tenant given explicitly, a task's row read by id before its scope is known) or that works across tenants on
purpose (the operator's and finance's consoles, the month's close, the demo). Each production module that uses it
is listed here with how many uses and why; a new use fails this test until it is added with its reason, and a use
removed fails it until the count comes down — the list only tells the truth. Prefer a scoped manager, or a service
taking the tenant explicitly."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("platform", "billing", "tenants")
USE = re.compile(r"\.unscoped\b")

ALLOWED: dict[str, tuple[int, str]] = {
    "billing/invoicing/services.py": (25, "the month's close and invoices run across tenants (finance)"),
    "billing/invoicing/usage.py": (9, "usage is counted for every tenant at once (the periodic refresh)"),
    "billing/invoicing/exports.py": (2, "finance exports every tenant's invoices"),
    "billing/invoicing/admin.py": (1, "the finance console lists every tenant's invoices"),
    "billing/payments/accounts.py": (2, "a tenant's Stripe account, found by the tenant id given"),
    "billing/payments/stripe_events.py": (1, "the shopper of a detached card, found by the tenant id given"),
    "billing/payments/standing.py": (4, "the gate's standing is computed for the tenant id given, outside a request"),
    "billing/payments/erasure.py": (2, "erasure writes the shopper's rows of the tenant id given"),
    "billing/webhooks/services.py": (7, "deliveries are claimed by id by a task, for the tenant given"),
    "platform/catalog/bulk.py": (6, "bulk writes of a catalog for the tenant given"),
    "platform/catalog/services.py": (4, "an import's progress is written by id from its worker"),
    "platform/console/management/commands/demo.py": (13, "the demo seeds two tenants"),
    "platform/disputes/selectors.py": (1, "whether a visit was disputed, correlated on the visit's own tenant"),
    "platform/disputes/services.py": (1, "the disputes past their deadline are found across tenants (a periodic job)"),
    "platform/ingest/processing.py": (3, "a chunk's rows are written for the stream's tenant"),
    "platform/ingest/services.py": (2, "a stream is created for the store's tenant"),
    "platform/ingest/admin.py": (1, "the operator console lists every tenant's streams"),
    "platform/service_levels/selectors.py": (5, "the operator console compares tenants' service levels"),
    "platform/stores/services.py": (14, "a store, its layouts and devices are written for the tenant given"),
    "platform/stores/sample_store.py": (5, "the sample store, products and prices are made for the tenant given"),
    "platform/visits/selectors.py": (
        2,
        "a visit's shopper, and a companion's payer (a subquery bound to the outer visit's tenant), by that tenant",
    ),
    "tenants/services.py": (7, "a new tenant's own rows are made with it"),
    "tenants/admin.py": (3, "the operator console manages every tenant"),
    "tenants/selectors.py": (1, "a user's memberships, across tenants, choose the tenant to enter"),
    "tenants/quotas.py": (1, "a quota is counted for the tenant given"),
    "tenants/audit.py": (1, "the audit log is written for the tenant given, or the platform"),
}


def _uses() -> dict[str, int]:
    found: dict[str, int] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or "migrations" in relative.parts:
                continue
            count = len(USE.findall(path.read_text()))
            if count:
                found[relative.as_posix()] = count
    return found


def test_every_unscoped_use_is_listed_with_its_reason() -> None:
    found = _uses()
    new = {path: count for path, count in found.items() if count > ALLOWED.get(path, (0, ""))[0]}
    assert not new, f"new .unscoped uses (list them in ALLOWED with a reason, or use a scoped manager): {new}"


def test_the_list_shrinks_when_uses_go() -> None:
    found = _uses()
    stale = {path: (found.get(path, 0), count) for path, (count, _) in ALLOWED.items() if found.get(path, 0) < count}
    assert not stale, f"fewer uses than listed, (now, listed): bring ALLOWED down: {stale}"
    assert all(reason for _, reason in ALLOWED.values())
