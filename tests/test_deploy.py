"""deploy/: the compose file passes `docker compose config`, and the image, compose file and Procfile agree."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from config.celery import QUEUES
from conftest import checkout_env

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def _compose_command() -> list[str] | None:
    """`docker compose` when the Docker client has its compose plugin, else a standalone `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_docker_compose_config_passes(run_in_checkout: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no Docker client with compose (docker compose / docker-compose) on PATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAISLE_", "COMPOSE_", "DOCKER_"))}
    done = run_in_checkout([*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_runs_the_services_each_queue_a_worker_all_with_health_checks() -> None:
    services = _compose()["services"]
    workers = {f"worker-{queue}" for queue in QUEUES}
    assert set(services) == {
        "postgres",
        "redis",
        "objectstore",
        "objectstore-bucket",
        "migrate",
        "web",
        "beat",
        *workers,
    }
    for name, service in services.items():
        if name not in ("migrate", "objectstore-bucket"):  # once, then done
            assert service["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    for queue in QUEUES:
        worker = services[f"worker-{queue}"]
        assert worker["command"] == ["deploy/celery-worker.sh", queue]
        ping = " ".join(worker["healthcheck"]["test"])
        assert "inspect ping" in ping and "celery@$$HOSTNAME" in ping
        assert worker["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    for name in ("web", "beat", *workers):
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert "volumes" not in service, name  # files are objects in the bucket, not on a disk
        assert service["env_file"] == "${OPENAISLE_ENV_FILE:-env.example}"
        assert service["depends_on"]["objectstore-bucket"] == {"condition": "service_completed_successfully"}
    assert services["web"]["command"][:3] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]


def test_compose_gives_the_idle_workers_containers_the_least_cpu_weight() -> None:
    """A container is a cgroup of its own: SCHED_IDLE ranks a worker only within it, so the web's container would
    share the cores with an idle worker's as an equal; the idle workers' containers get the least weight."""
    services = _compose()["services"]
    for queue in QUEUES:
        worker = services[f"worker-{queue}"]
        idle = worker.get("environment", {}).get("WORKER_CPU_CLASS", "idle") == "idle"
        assert worker.get("cpu_shares") == (2 if idle else None), queue
    assert services["worker-live"]["environment"]["WORKER_CPU_CLASS"] == "normal"
    assert "cpu_shares" not in services["web"]


def test_the_procfile_agrees_with_the_compose_file() -> None:
    processes, services = _procfile(), _compose()["services"]
    assert set(processes) == {"web", "beat", *(f"worker-{queue}" for queue in QUEUES)}
    assert "--config deploy/gunicorn.conf.py" in processes["web"]
    assert "--threads 4" in processes["web"]  # as deploy/gunicorn.conf.py's default, which the compose file uses
    assert "config.wsgi:application" in processes["web"]
    assert "celery -A config beat" in processes["beat"]
    names, ports, directories = set(), set(), set()
    for queue in QUEUES:
        words = shlex.split(processes[f"worker-{queue}"])
        env = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
        command = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
        assert command[:2] == ["deploy/celery-worker.sh", queue]
        assert env["PYTHONPATH"] == ".:platform"
        names.add(command[command.index("-n") + 1])
        ports.add(env["METRICS_PORT"])
        directories.add(env["PROMETHEUS_MULTIPROC_DIR"])
        # The same concurrency by default as the compose file's worker for that queue.
        compose_default = re.fullmatch(
            r"\$\{\w+:-(\d+)\}", services[f"worker-{queue}"]["environment"]["CELERY_CONCURRENCY"]
        )
        assert compose_default is not None
        assert env["CELERY_CONCURRENCY"] == compose_default.group(1), queue
    assert len(names) == len(ports) == len(directories) == len(QUEUES)  # several workers on one host


def test_the_image_is_multi_stage_non_root_with_the_source_root_on_the_path() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM .* AS build$", dockerfile, re.M)
    assert re.search(r"^FROM .* AS runtime$", dockerfile, re.M)
    assert "PYTHONPATH=/app:/app/platform" in dockerfile
    assert re.search(r"^USER openaisle", dockerfile, re.M)
    assert "collectstatic --no-input" in dockerfile
    for library in ("libpango-1.0-0", "libpangoft2-1.0-0"):
        assert library in dockerfile
    assert 'CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py", "config.wsgi:application"]' in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".git", "var", "tests", "**/tests", "bench", "**/*.env"):
        assert entry in ignored


def test_the_worker_script_is_executable_shell() -> None:
    script = DEPLOY / "celery-worker.sh"
    assert os.access(script, os.X_OK)
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0


def test_gunicorn_loads_its_settings_and_the_application(
    tmp_path: Path, run_in_checkout: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    env = checkout_env(PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"), WEB_CONCURRENCY="3")
    gunicorn = [sys.executable, "-m", "gunicorn", "--check-config", "--print-config", "--config"]
    done = run_in_checkout([*gunicorn, "deploy/gunicorn.conf.py", "config.wsgi:application"], env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    printed = dict(re.findall(r"^(\w+)\s+= (.*)$", done.stdout, re.M))
    assert printed["workers"] == "3"
    # Threads by default: a live push waiting on PostgreSQL does not hold up the gate's entry checks.
    assert (printed["worker_class"], printed["threads"]) == ("gthread", "4")
    assert printed["preload_app"] == "False"
    assert printed["bind"] == "['0.0.0.0:8000']"


def test_the_env_example_sets_what_production_needs() -> None:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "METRICS_TOKEN", "LOG_FORMAT"):
        assert values.get(name), name
    assert values["LOG_FORMAT"] == "json"
    assert values["DATABASE_URL"].startswith("postgres://")
    assert "127.0.0.1" in values["ALLOWED_HOSTS"].split(",")  # the health checks call 127.0.0.1:8000
    assert values["POSTGRES_PASSWORD"] in values["DATABASE_URL"]


def test_no_volume_is_mounted_in_two_services_and_files_live_in_the_object_store() -> None:
    """Web and workers share no disk (issue 21): any of them may run on another host."""
    compose = _compose()
    services = compose["services"]
    mounted: dict[str, list[str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            mounted.setdefault(volume.split(":", 1)[0], []).append(name)
    assert {volume: names for volume, names in mounted.items() if len(names) > 1} == {}
    assert set(mounted) == set(compose["volumes"]) == {"pgdata", "redisdata", "objects"}
    assert mounted["objects"] == ["objectstore"]
    assert services["objectstore"]["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    made = " ".join(services["objectstore-bucket"]["entrypoint"])
    assert 'mc mb --ignore-existing "store/$$S3_BUCKET"' in made
    assert services["objectstore-bucket"]["depends_on"] == {"objectstore": {"condition": "service_healthy"}}


def test_the_env_example_points_the_platform_at_the_compose_object_store() -> None:
    lines = (DEPLOY / "env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert values["S3_BUCKET"] and values["S3_ENDPOINT_URL"] == "http://objectstore:9000"
    assert values["MINIO_ROOT_USER"] == values["S3_ACCESS_KEY_ID"]
    assert values["MINIO_ROOT_PASSWORD"] == values["S3_SECRET_ACCESS_KEY"]
