"""A device's health: the one reading of it that the device list, the device's page, the store list and the
floor plan all show.

A device is what it last reported (a `device.status` event: online, degraded, offline) — unless it has gone
quiet: a device not heard from for DEVICE_SILENT_AFTER_SECONDS is *silent*, whatever it said before. A device
the store has never sent an event from has not been heard from yet. Any event from a device counts as hearing
from it (a camera seeing a pick is a camera that works).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.utils import timezone

from stores.models import Device, Store

ONLINE, DEGRADED, OFFLINE, SILENT, NEVER = "online", "degraded", "offline", "silent", "never"
LABELS = {
    ONLINE: "Online",
    DEGRADED: "Degraded",
    OFFLINE: "Offline",
    SILENT: "Silent",
    NEVER: "Not heard from yet",
}
# unfold's label colours, and the floor plan's (stores.floor_plan.HEALTH_COLOURS) for the same keys.
TONES = {ONLINE: "success", DEGRADED: "warning", OFFLINE: "danger", SILENT: "warning", NEVER: "info"}
NEEDS_ATTENTION = (OFFLINE, DEGRADED, SILENT)


@dataclass(frozen=True)
class Health:
    key: str
    label: str
    detail: str


def silent_after() -> timedelta:
    return timedelta(seconds=settings.DEVICE_SILENT_AFTER_SECONDS)


def when(at: datetime, store: Store) -> str:
    """A moment on the store's clock, with its zone: "3 Dec 2026 16:02 CET"."""
    return timezone.localtime(at, store.zone).strftime("%-d %b %Y %H:%M %Z")


def device_health(*, device: Device, now: datetime | None = None) -> Health:
    """The device's health now, with what it rests on ("last heard from 2 Dec 2026 18:00")."""
    now = now or timezone.now()
    heard = f"last heard from {when(device.last_seen_at, device.store)}" if device.last_seen_at else "never heard from"
    if device.status == Device.Health.OFFLINE:
        seen = device.last_seen_at
        marked = device.status_changed_at is not None and (seen is None or device.status_changed_at > seen)
        how = "Marked offline for its silence" if marked else "Reported itself offline"
        return Health(OFFLINE, LABELS[OFFLINE], f"{how}; {heard}.")
    if device.last_seen_at is None:
        return Health(NEVER, LABELS[NEVER], "No event from this device has arrived yet.")
    if device.last_seen_at < now - silent_after():
        quiet = int(silent_after().total_seconds() // 60)
        return Health(SILENT, LABELS[SILENT], f"Nothing heard for over {quiet} minutes: {heard}.")
    if device.status == Device.Health.DEGRADED:
        return Health(DEGRADED, LABELS[DEGRADED], f"Reported itself degraded; {heard}.")
    return Health(ONLINE, LABELS[ONLINE], f"Working: {heard}.")


def with_health(devices: QuerySet[Device], *, now: datetime | None = None) -> QuerySet[Device]:
    """The devices with `health_key` and `health_rank` (most in need of attention first): the rules of
    `device_health`, for filtering and ordering lists in the database."""
    silent_before = (now or timezone.now()) - silent_after()
    rules = [
        (When(status=Device.Health.OFFLINE, then=Value(OFFLINE)), 0),
        (When(last_seen_at__isnull=True, then=Value(NEVER)), 4),
        (When(last_seen_at__lt=silent_before, then=Value(SILENT)), 1),
        (When(status=Device.Health.DEGRADED, then=Value(DEGRADED)), 2),
    ]
    return devices.annotate(
        health_key=Case(*(when for when, _ in rules), default=Value(ONLINE)),
        health_rank=Case(
            *(When(when.condition, then=Value(rank)) for when, rank in rules),
            default=Value(3),
            output_field=IntegerField(),
        ),
    )


def store_device_health(*, store: Store, now: datetime | None = None) -> dict[str, Health]:
    """Device code → health, for every device of the store."""
    now = now or timezone.now()
    return {
        device.code: device_health(device=device, now=now)
        for device in Device.objects.filter(store=store).select_related("store")
    }


def summary(healths: dict[str, Health]) -> str:
    """The store's devices in a few words: "all 115 online", "3 silent, 1 offline", "no devices yet"."""
    if not healths:
        return "no devices yet"
    counts = Counter(h.key for h in healths.values())
    if counts[ONLINE] == len(healths):
        return f"all {len(healths)} online"
    order = (OFFLINE, DEGRADED, SILENT, NEVER, ONLINE)
    return ", ".join(f"{counts[key]} {LABELS[key].lower()}" for key in order if counts[key])
