"""Tasks are sent by name (`core.tasks.enqueue_on_commit("ingest.process_chunk", ...)`), so that services and tasks
need not import each other; no tool follows a name in a string. This reads every production module and the beat
schedule and checks that each name sent is a task the workers register, and that names are written out or module
constants (a name built at run time could not be checked)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("platform", "billing", "tenants")
SENDERS = {"enqueue_on_commit", "enqueue_at_on_commit", "send_task"}


def _sent_names() -> dict[str, list[str]]:
    """Task name -> where it is sent ("path:line"), over the production modules (tests left out)."""
    sent: dict[str, list[str]] = {}
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "tests" in path.relative_to(ROOT).parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in SENDERS:
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                first = node.args[0] if node.args else None
                sent.setdefault(_task_name(first, path, where), []).append(where)
    return sent


def _task_name(argument: ast.expr | None, path: Path, where: str) -> str:
    """The name a call sends: written out, or a constant of the module (or of a module it imports) named there."""
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return argument.value
    assert isinstance(argument, ast.Name | ast.Attribute), f"{where}: a task is sent by a name, not a computed one"
    relative = path.relative_to(ROOT / "platform" if path.is_relative_to(ROOT / "platform") else ROOT)
    module = importlib.import_module(".".join(relative.with_suffix("").parts))
    value = eval(compile(ast.Expression(argument), where, "eval"), vars(module))  # noqa: S307 — a name, checked above
    assert isinstance(value, str), f"{where}: {ast.unparse(argument)} is not a task name"
    return value


def _registered() -> set[str]:
    from config.celery import app

    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_name_sent_is_a_registered_task() -> None:
    sent = _sent_names()
    assert len(sent) >= 10, "the scan found the senders"
    unknown = {name: where for name, where in sent.items() if name not in _registered()}
    assert not unknown, f"sent but no worker registers them: {unknown}"


def test_every_periodic_task_is_a_registered_task() -> None:
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled and scheduled <= _registered(), scheduled - _registered()


def test_every_route_names_registered_tasks() -> None:
    registered = _registered()
    for pattern in settings.CELERY_TASK_ROUTES:
        prefix = pattern.removesuffix("*")
        matches = {
            name for name in registered if name == pattern or (pattern.endswith("*") and name.startswith(prefix))
        }
        assert matches, f"the route {pattern!r} matches no task"


def test_a_web_process_has_every_task_sent_registered_before_it_answers(
    run_in_checkout: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """gunicorn's gthread threads send tasks from their first request: the web process imports the task modules
    as it starts (config/wsgi.py), not one thread while another sends."""
    probe = "import json, config.wsgi; from config.celery import app; print(json.dumps(sorted(app.tasks)))"
    done = run_in_checkout(
        [sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'platform'}"}
    )
    assert done.returncode == 0, done.stderr
    registered_at_start = set(json.loads(done.stdout.splitlines()[-1]))
    missing = set(_sent_names()) - registered_at_start
    assert not missing, f"sent by the web but not registered when it starts: {missing}"
