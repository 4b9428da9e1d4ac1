"""Structured logs: JSON lines carrying the request id, the tenant and the Celery task; readable lines on a laptop."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from config.celery import app
from core import logs, tenancy
from tenants.models import Tenant

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, as the production formatter renders it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root, requests = logging.getLogger(), logging.getLogger("core.requests")
    levels = root.level, requests.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    requests.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(levels[0])
    requests.setLevel(levels[1])


def records(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.mark.django_db
def test_a_request_logs_one_json_line_with_its_request_id(json_lines: io.StringIO, client: Client) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "req-12345"})
    assert response["X-Request-ID"] == "req-12345"
    (line,) = [r for r in records(json_lines) if r["logger"] == "core.requests"]
    assert line["event"] == "request"
    assert line["request_id"] == "req-12345"
    assert (line["method"], line["path"], line["view"], line["status"]) == ("GET", "/healthz", "healthz", 200)
    assert line["level"] == "info"
    assert line["timestamp"].endswith("Z")
    assert "tenant_id" not in line


def test_an_api_call_logs_its_tenant_and_records_inside_it_carry_both(
    json_lines: io.StringIO, api_a: APIClient, tenant_a: Tenant
) -> None:
    response = api_a.get("/api/v1/stores", HTTP_X_REQUEST_ID="req-api-1")
    assert response.status_code == 200
    (line,) = [r for r in records(json_lines) if r["logger"] == "core.requests"]
    assert (line["request_id"], line["tenant_id"], line["status"]) == ("req-api-1", tenant_a.pk, 200)


@pytest.mark.django_db
def test_a_token_in_the_path_is_not_logged(json_lines: io.StringIO, client: Client) -> None:
    client.get("/accounts/reset/MQ/secret-reset-token-123/")
    (line,) = [r for r in records(json_lines) if r["logger"] == "core.requests"]
    assert "secret-reset-token-123" not in json.dumps(line)
    assert line["path"] == "/accounts/reset/<uidb64>/<token>/"


def test_records_made_in_a_tenant_scope_name_the_tenant(json_lines: io.StringIO) -> None:
    log = logging.getLogger("tests.logs")
    with tenancy.tenant_scope(42):
        log.warning("inside %s", "a tenant", extra={"visit": 7})
    with tenancy.platform_wide_scope():
        log.warning("platform-wide")
    log.warning("no scope")
    inside, platform_wide, outside = records(json_lines)
    assert (inside["event"], inside["tenant_id"], inside["visit"]) == ("inside a tenant", 42, 7)
    assert platform_wide["tenant_id"] == "platform"
    assert "tenant_id" not in outside


def test_exceptions_are_rendered_inside_the_json_line(json_lines: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("tests.logs").exception("it failed")
    (line,) = records(json_lines)
    assert line["level"] == "error"
    assert "ValueError: boom" in line["exception"]


@app.task(name="tests.log_inside_a_task")
def log_inside_a_task(tenant_id: int) -> str:
    with tenancy.tenant_scope(tenant_id):
        logging.getLogger("tests.logs").warning("working")
    return "ok"


def test_records_made_by_a_celery_task_carry_its_id_and_name(json_lines: io.StringIO) -> None:
    result = log_inside_a_task.apply(kwargs={"tenant_id": 5}, task_id="task-abc")
    # Ran here and then: its value is read, not waited for (`get` refuses once a worker thread of an earlier test
    # has marked the process as a worker's, as Celery's embedded test worker may leave it).
    assert result.successful() and result.result == "ok"
    logging.getLogger("tests.logs").warning("after the task")
    working, after = [r for r in records(json_lines) if r["logger"] == "tests.logs"]
    assert (working["task_id"], working["task_name"], working["tenant_id"]) == (
        "task-abc",
        "tests.log_inside_a_task",
        5,
    )
    assert "task_id" not in after and "task_name" not in after


def test_structlog_loggers_render_the_same_way(json_lines: io.StringIO) -> None:
    import structlog

    structlog.get_logger("tests.structlog").warning("hello", shelf="F01")
    (line,) = records(json_lines)
    assert (line["event"], line["shelf"], line["logger"], line["level"]) == (
        "hello",
        "F01",
        "tests.structlog",
        "warning",
    )


def _log_from_a_new_process(
    env: dict[str, str], code: str = "import logging; logging.getLogger('tests.mode').warning('mode check')"
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_embedded_mode_logs_readable_lines_and_log_format_switches_to_json() -> None:
    readable = _log_from_a_new_process({})
    assert readable.returncode == 0, readable.stderr
    (line,) = [text for text in readable.stderr.splitlines() if "mode check" in text]
    assert not line.lstrip().startswith("{")
    assert "warning" in line and "tests.mode" in line

    as_json = _log_from_a_new_process({"LOG_FORMAT": "json"})
    assert as_json.returncode == 0, as_json.stderr
    (line,) = [text for text in as_json.stderr.splitlines() if "mode check" in text]
    assert json.loads(line)["event"] == "mode check"

    wrong = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_FORMAT": "xml",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert wrong.returncode != 0
    assert "LOG_FORMAT must be json or console" in wrong.stderr


def test_log_level_warning_leaves_the_request_lines_out() -> None:
    code = "from django.test import Client; Client().get('/healthz'); print('answered')"
    for level, lines in (("INFO", 1), ("WARNING", 0)):
        run = _log_from_a_new_process({"LOG_FORMAT": "json", "LOG_LEVEL": level}, code)
        assert run.returncode == 0 and "answered" in run.stdout, run.stderr
        requests = [
            line for line in run.stderr.splitlines() if '"event": "request"' in line or '"event":"request"' in line
        ]
        assert len(requests) == lines, (level, run.stderr)
