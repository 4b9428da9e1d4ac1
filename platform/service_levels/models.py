"""Service levels have no table of their own: they are read from visits. The proxy gives the admin sites their
"Service levels" page (the store admin's for a licensee's stores, the operations console's across tenants)."""

from __future__ import annotations

from visits.models import Visit


class ServiceLevel(Visit):
    class Meta:
        proxy = True
        verbose_name = "service levels"
        verbose_name_plural = "service levels"
