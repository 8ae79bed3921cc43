"""Connecting to Redis with settings that suit a relay, and Redis failures as typed errors.

redis-py 8's defaults break blocking readers: a 5 s socket timeout ends any ``XREAD BLOCK``
longer than that, and a pool of 100 connections caps the readers blocked at once. A relay
client has no socket timeout (every wait of the relay has its own bound), a large pool, a
bounded connect timeout, and a short retry policy: a dropped connection is retried for about
3 s (a Redis restart), then the failure is a :class:`~rxgpt.TransportError`.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from .._errors import RxgptError, TransportError

__all__ = ["Redis", "connect", "describe", "ping", "relay_error"]

Redis = aioredis.Redis

#: Connection attempts after a failure, and the backoff between them (about 3 s in all).
RETRIES = 8
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5


def connect(
    url: str,
    *,
    max_connections: int = 10_000,
    connect_timeout: float = 2.0,
    **options: Any,
) -> Redis:
    """A redis-py asyncio client for ``url`` (``redis://HOST:PORT/DB``) with relay settings.

    Nothing is sent yet; :func:`ping` checks that the server answers. ``options`` go to
    ``redis.asyncio.Redis.from_url`` and override the relay's settings.
    """
    settings: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": connect_timeout,
        "max_connections": max_connections,
        "retry": Retry(ExponentialWithJitterBackoff(BACKOFF_BASE, BACKOFF_CAP), RETRIES),
        "health_check_interval": 0,
        **options,
    }
    try:
        return aioredis.Redis.from_url(url, **settings)
    except (ValueError, RedisError) as error:
        raise TransportError(f"not a Redis URL {url!r}: {error}") from None


def describe(client: Redis) -> str:
    """``redis://HOST:PORT/DB`` of ``client``, without credentials, for messages."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def relay_error(error: BaseException, client: Redis, doing: str) -> RxgptError:
    """A Redis failure while ``doing`` something, as a typed error naming the server."""
    if isinstance(error, RxgptError):
        return error
    reason = str(error) or type(error).__name__
    return TransportError(f"Redis at {describe(client)} failed while {doing}: {reason}")


async def ping(client: Redis) -> None:
    """Check that the server answers; a :class:`~rxgpt.TransportError` saying why if not."""
    try:
        await client.ping()
    except (RedisError, OSError) as error:
        raise TransportError(
            f"cannot reach Redis at {describe(client)}: {error or type(error).__name__}"
        ) from None
