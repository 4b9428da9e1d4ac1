"""Benchmark: the ingest worker's memory (and the disk) while it reads a gzip upload with 1 GiB inside.

Needs PostgreSQL and Redis; use a database and a Redis database of your own (the script purges its Celery queues).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/openaisle_bench_bomb REDIS_URL=redis://127.0.0.1:6379/9 \\
        PYTHONPATH=.:platform python bench/gzip_bomb.py --inside-mib 1024

Each case uploads one file through the API to a web server (gunicorn) and a fresh Celery worker (solo pool, queues
`ingest` and `default`) started for it on 127.0.0.1, follows the stream to its end, and reports the worker's peak
resident memory (VmHWM, and the largest VmRSS sampled every 0.1 s), the most bytes the media folder held, the
stream's end and its time:

* `bomb`: --inside-mib MiB of garbage lines (100 bytes each), gzip'd (about 1,000:1): refused by the ratio bound;
* `bomb_without_ratio_bound`: the same file with the ratio bound lifted (INGEST_MAX_GZIP_RATIO=10^9 for that
  worker): every byte is inflated and packed again, then the garbage stop ends it after the first chunks. This is
  the streaming's own bound, whatever the limits say;
* `events`: --events events of the sample day (a real upload, accepted), for the worker's usual footprint.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import support
from machine import forget_queued_tasks
from payments import Processes, setup
from support import server_environment

STORE = "BOMB-1"
GARBAGE_LINE = b"x" * 99 + b"\n"


def write_gzip(path: Path, pieces: Any) -> int:
    """Write the pieces (bytes) gzip'd to `path`, streaming; return the bytes inside."""
    inside = 0
    packer = zlib.compressobj(9, wbits=31)
    with path.open("wb") as out:
        for piece in pieces:
            inside += len(piece)
            out.write(packer.compress(piece))
        out.write(packer.flush())
    return inside


def garbage(mib: int) -> Any:
    block = GARBAGE_LINE * ((1 << 20) // len(GARBAGE_LINE)) + b"x" * ((1 << 20) % len(GARBAGE_LINE))
    for _ in range(mib):
        yield block


def sample_events(count: int, layout: dict[str, Any]) -> Any:
    from datetime import UTC, datetime

    import orjson

    from ingest.sample import sample_events as make

    visits = max(1, count // 9)
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    for number, event in enumerate(make(layout, visits=visits, start=start, seed=7, id_prefix="bomb")):
        if number >= count:
            return
        yield orjson.dumps(event) + b"\n"


def _status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


class Sampler(threading.Thread):
    """The largest VmRSS of a process and the largest size of a folder, every 0.1 s."""

    def __init__(self, pid: int, folder: Path) -> None:
        super().__init__(daemon=True)
        self.pid, self.folder = pid, folder
        self.rss_kb = self.disk = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.rss_kb = max(self.rss_kb, _status_kb(self.pid, "VmRSS"))
            self.disk = max(self.disk, _folder_bytes(self.folder))
            time.sleep(0.1)


def _upload(port: int, key: str, path: Path) -> dict[str, Any]:
    import http.client
    import uuid

    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        connection.request(
            "POST",
            f"/api/v1/stores/{STORE}/event-streams",
            body=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        response = connection.getresponse()
        answer: dict[str, Any] = json.loads(response.read())
        if response.status != 202:
            raise RuntimeError(f"upload answered {response.status}: {answer}")
        return answer
    finally:
        connection.close()


def run_case(
    name: str, path: Path, *, inside: int, env: dict[str, str], work: Path, key: str, port: int
) -> dict[str, Any]:
    from ingest.models import EventStream

    media = Path(env["MEDIA_ROOT"])
    shutil.rmtree(media, ignore_errors=True)
    media.mkdir(parents=True)
    forget_queued_tasks()
    processes = Processes(env=env, logs=work / "logs")
    processes.port = port or processes.port
    try:
        processes.start_server(workers=1)
        processes.start_workers(["ingest,default"], tag=name)
        processes.wait_ready()
        worker_pid = processes.workers[0][2].pid
        at_rest_kb = _status_kb(worker_pid, "VmRSS")
        sampler = Sampler(worker_pid, media)
        sampler.start()
        began = time.time()
        stream_id = _upload(processes.port, key, path)["id"]
        while True:
            processes.check()
            stream = EventStream.unscoped.get(pk=stream_id)
            if stream.finished_at is not None:
                break
            if time.time() - began > 1800:
                raise RuntimeError(f"{name}: stream {stream_id} did not finish")
            time.sleep(0.2)
        seconds = time.time() - began
        time.sleep(0.3)
        sampler.running = False
        sampler.join()
        peak_kb = _status_kb(worker_pid, "VmHWM")
        return {
            "file_bytes": path.stat().st_size,
            "inside_bytes": inside,
            "status": stream.status,
            "failure_reason": stream.failure_reason,
            "lines": stream.lines,
            "accepted": stream.accepted,
            "rejected": stream.rejected,
            "rejections_stored": stream.rejections_stored,
            "chunks_done_of_total": [stream.chunks_done, stream.chunks_total],
            "seconds": round(seconds, 1),
            "worker_rss_at_rest_mb": round(at_rest_kb / 1024, 1),
            "worker_peak_rss_mb": round(max(peak_kb, sampler.rss_kb) / 1024, 1),
            "media_folder_peak_mb": round(sampler.disk / 2**20, 1),
            "media_folder_after_mb": round(_folder_bytes(media) / 2**20, 2),
        }
    finally:
        processes.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tenants import services as tenant_services
    from tenants.audit import Actor

    work = Path(tempfile.mkdtemp(prefix="bench-gzip-bomb-"))
    (work / "logs").mkdir()
    tenant, _stores, layout = setup(codes=[STORE], window=2)
    issued = tenant_services.api_key_issue(actor=Actor.cli(), tenant=tenant, name="gzip bomb benchmark")
    env = server_environment(media=work / "media")
    try:
        bomb = work / "bomb.ndjson.gz"
        bomb_inside = write_gzip(bomb, garbage(args.inside_mib))
        events = work / "events.ndjson.gz"
        events_inside = write_gzip(events, sample_events(args.events, layout))
        cases = {
            "bomb": run_case("bomb", bomb, inside=bomb_inside, env=env, work=work, key=issued.key, port=args.port),
            "bomb_without_ratio_bound": run_case(
                "unbounded",
                bomb,
                inside=bomb_inside,
                env={**env, "INGEST_MAX_GZIP_RATIO": str(10**9)},
                work=work,
                key=issued.key,
                port=args.port,
            ),
            "events": run_case(
                "events", events, inside=events_inside, env=env, work=work, key=issued.key, port=args.port
            ),
        }
        from django.conf import settings

        return {
            "benchmark": "gzip_bomb",
            "cpus": os.cpu_count(),
            "limits": {
                "INGEST_MAX_UNPACKED_BYTES": settings.INGEST_MAX_UNPACKED_BYTES,
                "INGEST_MAX_GZIP_RATIO": settings.INGEST_MAX_GZIP_RATIO,
                "INGEST_GZIP_RATIO_AFTER_BYTES": settings.INGEST_GZIP_RATIO_AFTER_BYTES,
                "INGEST_CHUNK_BYTES": settings.INGEST_CHUNK_BYTES,
                "INGEST_STOP_AFTER_LINES": settings.INGEST_STOP_AFTER_LINES,
            },
            "worker_peak_rss_mb_max": max(case["worker_peak_rss_mb"] for case in cases.values()),
            "cases": cases,
        }
    finally:
        forget_queued_tasks()
        with contextlib.suppress(Exception):
            tenant_services.api_key_revoke(actor=Actor.cli(), api_key=issued.api_key)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inside-mib", type=int, default=1024, help="MiB inside the bomb (default 1024)")
    parser.add_argument("--events", type=int, default=200_000, help="events in the real upload (default 200,000)")
    parser.add_argument("--port", type=int, default=0, help="web server port (default: any free one)")
    support.measure(parser, run)


if __name__ == "__main__":
    main()
