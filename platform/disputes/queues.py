"""The store admin's two queues, side by side above each: visits waiting for a person, disputes waiting for one."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from disputes.models import Dispute
from visits.models import Visit


def queue_tabs(*, active: str) -> list[dict[str, Any]]:
    """The store admin's two queues side by side, each with what waits in it: visits to review, disputes to decide."""
    return [
        {
            "key": "review",
            "label": "Review queue",
            "waiting": Visit.objects.filter(status=Visit.Status.NEEDS_REVIEW).count(),
            "url": reverse("admin:visits_visit_changelist"),
            "active": active == "review",
        },
        {
            "key": "disputes",
            "label": "Dispute queue",
            "waiting": Dispute.objects.filter(status=Dispute.Status.IN_REVIEW).count(),
            "url": reverse("admin:disputes_dispute_changelist"),
            "active": active == "disputes",
        },
    ]
