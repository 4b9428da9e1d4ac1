"""A plausible day of store events for a layout: shoppers enter, take and put back items under the
cameras and on the shelf scales, and leave; devices report their health now and then.

Deterministic for a seed. Used by the demo, the ingest tests and the ingest benchmark; the visit
simulator adds noise and ground truth on top.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sample_events(
    layout: Mapping[str, Any],
    *,
    visits: int,
    start: datetime,
    unit_weights: Mapping[str, float] | None = None,
    seed: int = 1,
    id_prefix: str = "e",
) -> Iterator[dict[str, Any]]:
    """Events of `visits` shopper visits spread over a day from `start`, in time order."""
    rng = random.Random(seed)
    bins = [(b, f) for f in layout["fixtures"] for b in f["bins"]]
    cameras = {
        zone: [d["code"] for d in layout["devices"] if d["kind"] == "camera" and zone in d.get("covers", [])]
        for zone in {f["zone"] for f in layout["fixtures"]}
    }
    gates = [d["code"] for d in layout["devices"] if d["kind"] == "gate"]
    entry, exit_ = gates[0], gates[-1]
    weights = unit_weights or {}
    counter = 0
    day = timedelta(hours=14)
    pending: list[tuple[datetime, int, dict[str, Any]]] = []

    def emit(at: datetime, body: dict[str, Any]) -> None:
        nonlocal counter
        counter += 1
        pending.append((at, counter, {"id": f"{id_prefix}{counter}", "ts": _stamp(at), **body}))

    for number in range(visits):
        session = f"v-{seed}-{number}"
        at = start + day * number / max(visits, 1) + timedelta(seconds=rng.uniform(0, 30))
        emit(
            at,
            {
                "type": "session.started",
                "session": session,
                "shopper": f"tok_{rng.randrange(10**8):08d}",
                "gate": entry,
            },
        )
        for _ in range(rng.choice((0, 1, 2, 2, 3, 3, 4, 5, 6, 8))):
            at += timedelta(seconds=rng.uniform(8, 90))
            item, fixture = rng.choice(bins)
            qty = 1 if rng.random() < 0.85 else 2
            camera = rng.choice(cameras[fixture["zone"]])
            emit(
                at,
                {
                    "type": "item.picked",
                    "session": session,
                    "bin": item["code"],
                    "device": camera,
                    "qty": qty,
                    "confidence": round(rng.uniform(0.82, 0.995), 3),
                },
            )
            if "sensor" in item:
                grams = weights.get(item["sku"], 250.0) * qty
                emit(
                    at + timedelta(milliseconds=rng.randint(300, 1500)),
                    {
                        "type": "shelf.weight_changed",
                        "bin": item["code"],
                        "device": item["sensor"],
                        "delta_g": round(-grams + rng.uniform(-2, 2), 1),
                    },
                )
            if rng.random() < 0.08:
                at += timedelta(seconds=rng.uniform(5, 40))
                emit(
                    at,
                    {
                        "type": "item.returned",
                        "session": session,
                        "bin": item["code"],
                        "device": camera,
                        "qty": 1,
                        "confidence": round(rng.uniform(0.8, 0.99), 3),
                    },
                )
                if "sensor" in item:
                    emit(
                        at + timedelta(milliseconds=rng.randint(300, 1500)),
                        {
                            "type": "shelf.weight_changed",
                            "bin": item["code"],
                            "device": item["sensor"],
                            "delta_g": round(weights.get(item["sku"], 250.0) + rng.uniform(-2, 2), 1),
                        },
                    )
        at += timedelta(seconds=rng.uniform(20, 120))
        emit(at, {"type": "session.ended", "session": session, "gate": exit_})
        if rng.random() < 0.02:
            device = rng.choice([d["code"] for d in layout["devices"]])
            emit(at, {"type": "device.status", "device": device, "status": rng.choice(("online", "degraded"))})
    pending.sort(key=lambda item: (item[0], item[1]))
    for _at, _n, event in pending:
        yield event
