"""Structured logs (structlog): one line per record, carrying the request id, the tenant and the Celery task.

Everything logs through the standard library (`logging.getLogger(__name__)`, Django's and Celery's
loggers, and structlog's loggers, which are routed there too); the formatter below, set in
settings.LOGGING, adds the context and renders each record as

* `json` — one JSON object per line, for production (`LOG_FORMAT=json`, the default with services set);
* `console` — aligned, readable lines for a laptop (`LOG_FORMAT=console`, the default in embedded mode
  or with DEBUG).

Context comes from context variables: `RequestLogMiddleware` binds the request id (and logs one line
per request with its outcome), the Celery signals bind the task id and name, and the tenant is read
from the tenant scope in force when the record is made (`tenant_id`, or "platform" when platform-wide).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import structlog
from django.http import HttpRequest, HttpResponse

from core import tenancy

FORMATS = ("json", "console")
request_logger = logging.getLogger("core.requests")


def add_tenant(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The tenant in scope when the record was made, if any (a record may also name one itself)."""
    if "tenant_id" in event:
        return event
    try:
        scope = tenancy.active_scope()
    except tenancy.TenantScopeMissing:
        return event
    event["tenant_id"] = scope if isinstance(scope, int) else "platform"
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        add_tenant,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(renderer: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The logging.Formatter of settings.LOGGING (`"()": "core.logs.formatter"`)."""
    if renderer not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {renderer!r}")
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if renderer == "json":
        final += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer(sort_keys=False)]
    else:
        final.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    return structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_shared_processors(), processors=final)


def configure_structlog() -> None:
    """Send structlog's own loggers through the standard library, so both kinds of record look the same."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *[p for p in _shared_processors() if not isinstance(p, structlog.stdlib.ExtraAdder)],
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- requests --------------------------------------------------------------------------------------


def _tenant_of(request: HttpRequest) -> int | None:
    """The tenant a request acted for, when known: its API key's, or the member's in the store admin."""
    for holder in (getattr(request, "auth", None), getattr(request, "membership", None)):
        tenant_id = getattr(holder, "tenant_id", None)
        if isinstance(tenant_id, int):
            return tenant_id
    return None


class RequestLogMiddleware:
    """Binds the request id (set by core.middleware.RequestIdMiddleware, which runs first) to every record made
    while the request is answered, and logs the request's outcome."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = getattr(request, "request_id", "")
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = self.get_response(request)
            match = request.resolver_match
            secret_in_path = match is not None and any("token" in name for name in match.kwargs)
            fields: dict[str, Any] = {
                "method": request.method,
                "path": f"/{match.route}" if secret_in_path and match is not None else request.path,
                "view": match.view_name if match is not None else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            }
            tenant_id = _tenant_of(request)
            if tenant_id is not None:
                fields["tenant_id"] = tenant_id
            request_logger.info("request", extra=fields)
        return response


# --- Celery tasks ----------------------------------------------------------------------------------


_task_tokens: dict[str, Any] = {}


def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    tokens = structlog.contextvars.bind_contextvars(task_id=task_id, task_name=getattr(task, "name", None))
    _task_tokens[task_id or ""] = tokens


def _unbind_task(task_id: str | None = None, **_: Any) -> None:
    """Back to the context before the task (an in-process task sent from a request keeps the request's)."""
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens is not None:
        structlog.contextvars.reset_contextvars(**tokens)


def connect_signals() -> None:
    """Bind each Celery task's id and name to the records it makes."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(_bind_task, weak=False, dispatch_uid="openaisle-logs-prerun")
    task_postrun.connect(_unbind_task, weak=False, dispatch_uid="openaisle-logs-postrun")
