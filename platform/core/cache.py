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


# Counts one and reads the entries asked for, in one command: the key's first count starts its window.
_COUNT_AND_READ = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if #KEYS == 1 then return {count} end
return {count, redis.call('MGET', unpack(KEYS, 2))}
"""


def count_in_window(key: str, *, seconds: int, reading: Sequence[str] = ()) -> tuple[int, dict[str, Any]]:
    """Add one to the counter `key`, which ends `seconds` after its first count; return its new value, and the
    entries the cache has under the keys `reading` (as `cache.get_many` answers them).

    One round trip to Redis and one command (a script: `INCR`, `EXPIRE` on the first count, `MGET`) where Django's
    `add`, `incr` and `get_many` take three or four round trips: a view that reads the cache anyway pays one round
    trip for its throttle and its read (the entry check: core/api/views.py). A pipeline of the three commands
    cost the entry check ~0.1 ms more CPU than the script (packing and parsing each). With another cache
    (embedded mode), those calls.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # make_key: the callers' own keys (a hash, an id, a code of a URL pattern), not validated again (~20 µs)
        names = [backend.make_key(key), *[backend.make_key(wanted) for wanted in reading]]
        redis_backend: Any = backend  # its client (`_cache`), which django-stubs does not list
        client = redis_backend._cache.get_client(names[0], write=True)
        script = _scripts.get(id(client))
        if script is None:
            script = _scripts[id(client)] = client.register_script(_COUNT_AND_READ)
        answer = script(keys=names, args=[seconds], client=client)
        if not reading:
            return int(answer[0]), {}
        loads = redis_backend._cache._serializer.loads
        found = {wanted: loads(value) for wanted, value in zip(reading, answer[1], strict=True) if value is not None}
        return int(answer[0]), found
    backend.add(key, 0, seconds)
    return int(backend.incr(key)), (dict(backend.get_many(reading)) if reading else {})


_scripts: dict[int, Any] = {}
