"""What the benchmarks that drive the API of their own server share: JSON requests, registered shoppers, emptying
the bench tenant of earlier runs, the code version a result was measured on."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
from collections.abc import Sequence
from typing import Any

from machine import ROOT


def json_request(
    port: int, method: str, path: str, *, key: str = "", body: Any = None, timeout: float = 120
) -> tuple[int, Any]:
    """One request to the benchmark's server on 127.0.0.1: its status and its JSON answer (bytes if not JSON)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)
    finally:
        connection.close()


def register_shoppers(port: int, *, key: str, count: int, ref_prefix: str, timeout: float = 120) -> list[str]:
    """Shoppers with a card each (through the API, so through the Stripe stand-in); their entry tokens."""
    tokens = []
    for number in range(count):
        status, answer = json_request(
            port,
            "POST",
            "/api/v1/shoppers",
            key=key,
            body={"external_ref": f"{ref_prefix}-shopper-{number}", "payment_method": "pm_card_visa"},
            timeout=timeout,
        )
        if status not in (200, 201):
            raise RuntimeError(f"registering a shopper answered {status}: {answer!r}")
        tokens.append(answer["entry_token"])
    return tokens


def deletion_order(payments_models: Sequence[str] = ()) -> list[Any]:
    """Visits, events, streams and rejections, the payments models named (those installed), and whatever hangs off
    them (cart lines, charge instructions, decisions, ...), found through their relations: rows pointing at others
    first."""
    from django.apps import apps

    from ingest.models import Event, EventStream, Rejection, StreamChunk
    from visits.models import Visit

    order: list[Any] = []

    def add(model: Any) -> None:
        if model in order:
            return
        for relation in model._meta.related_objects:
            if relation.on_delete is not None and relation.related_model is not model:
                add(relation.related_model)
        order.append(model)

    for model in (Visit, Rejection, StreamChunk, Event, EventStream):
        add(model)
    for name in payments_models:
        with contextlib.suppress(LookupError):
            add(apps.get_model("payments", name))
    return order


def delete_tenant_rows(tenant_id: int, models: Sequence[Any]) -> None:
    """Delete the tenant's rows of `models` (set-based), in that order; each must have a tenant column."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            if not any(field.attname == "tenant_id" for field in model._meta.concrete_fields):
                raise RuntimeError(f"{model.__name__} has no tenant column: extend clean() for it")
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE tenant_id = %s", [tenant_id])  # noqa: S608


def analyze(models: Sequence[Any]) -> None:
    """Fresh planner statistics for the tables of `models`."""
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(f"ANALYZE {model._meta.db_table}")


def git(*argv: str) -> str:
    """What git answers in the checkout measured ("" if it cannot run)."""
    try:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return ""
    return done.stdout.strip()


def code_version() -> dict[str, Any]:
    """The commit measured, and how many files differ from it."""
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted_files": len(changed)}
