"""Django's Redis cache, with one Redis client per connection pool instead of one per operation.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache call, and building one fills
its table of ~170 response callbacks: on an entry check (five cache calls) that was a third of the request's
CPU. A `redis.Redis` is safe to share between threads (each command takes a connection from the pool), so
one per pool is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends import redis as django_redis


class _SharedClientRedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, servers: Any, **options: Any) -> None:
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        django_client: Any = self  # Django's own helpers, which django-stubs does not list
        index = django_client._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            pool = django_client._get_connection_pool(write)
            client = self._clients[index] = django_client._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedClientRedisCacheClient


def count_in_window(key: str, *, seconds: int, reading: Sequence[str] = ()) -> tuple[int, dict[str, Any]]:
    """Add one to the counter `key`, which ends `seconds` after its first count; return its new value, and the
    entries the cache has under the keys `reading` (as `cache.get_many` answers them).

    One round trip to Redis (a `SET … NX EX`, an `INCR` and an `MGET`, pipelined) where Django's `add`, `incr` and
    `get_many` take three or four: a view that reads the cache anyway pays one round trip for its throttle and its
    read (the entry check: core/api/views.py). With another cache (embedded mode), those calls.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        name = backend.make_and_validate_key(key)
        names = {backend.make_and_validate_key(wanted): wanted for wanted in reading}
        redis_backend: Any = backend  # its client (`_cache`), which django-stubs does not list
        pipeline = redis_backend._cache.get_client(name, write=True).pipeline(transaction=False)
        pipeline.set(name, 0, ex=seconds, nx=True)
        pipeline.incr(name)
        if names:
            pipeline.mget(list(names))
        answers = pipeline.execute()
        if not names:
            return int(answers[1]), {}
        loads = redis_backend._cache._serializer.loads
        found = {names[got]: loads(value) for got, value in zip(names, answers[2], strict=True) if value is not None}
        return int(answers[1]), found
    backend.add(key, 0, seconds)
    return int(backend.incr(key)), (dict(backend.get_many(reading)) if reading else {})
