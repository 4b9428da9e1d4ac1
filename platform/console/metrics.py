"""Platform-wide figures read from the database when /metrics is scraped (`core.metrics.collect_at_scrape`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import tenancy
from ingest.models import UnreadableEvent
from visits.models import Visit


class DatabaseCollector(Collector):
    """Figures read from the database when scraped, platform-wide: the review queue's size (visits needing a
    person) and the stored events that cannot be read back."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with tenancy.platform_wide_scope():
            waiting = Visit.objects.filter(status=Visit.Status.NEEDS_REVIEW).count()
            unreadable = UnreadableEvent.objects.count()
        yield GaugeMetricFamily(
            "openaisle_review_queue_visits", "Visits waiting for a person's review, all tenants.", value=waiting
        )
        yield GaugeMetricFamily(
            "openaisle_unreadable_events",
            "Stored events whose payload cannot be read back; the visits they bear on wait in review. All tenants.",
            value=unreadable,
        )
