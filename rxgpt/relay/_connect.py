"""Connecting to Redis with settings that suit a relay, and Redis failures as typed errors.

redis-py 8's defaults break blocking readers: a 5 s socket timeout ends any ``XREAD BLOCK``
longer than that, and a pool of 100 connections caps the readers blocked at once. A relay
client has no socket timeout (every wait of the relay has its own bound), a large pool, a
bounded connect timeout, and a short retry policy: a dropped connection is retried for about
3 s (a Redis restart), then the failure is a :class:`~rxgpt.TransportError`. :func:`ping`, the
first command, is bounded as a whole (:data:`PING_TIMEOUT`): a server that accepts the
connection and never answers (not Redis, or hung) is an error, not a wait without end. Every
message leaves out the URL's password (:func:`rxgpt._secrets.redact`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from .._errors import RxgptError, TransportError
from .._secrets import redact

__all__ = ["PING_TIMEOUT", "Redis", "connect", "describe", "ping", "relay_error"]

Redis = aioredis.Redis

#: Connection attempts after a failure, and the backoff between them (about 3 s in all).
RETRIES = 8
BACKOFF_BASE = 0.05
BACKOFF_CAP = 0.5
#: Seconds :func:`ping` waits for the first answer, connecting and retrying included: a
#: Redis on the same network answers in milliseconds, a restarting one within the ~3 s of
#: the retries; after this the server is taken for absent, hung, or not a Redis server.
PING_TIMEOUT = 5.0

#: The path of a ``redis://`` URL: none, ``/``, or ``/DB`` (a database number).
_DB_PATH = re.compile(r"/?|/[0-9]+")


def connect(
    url: str,
    *,
    max_connections: int = 10_000,
    connect_timeout: float = 2.0,
    read_timeout: float | None = None,
    **options: Any,
) -> Redis:
    """A redis-py asyncio client for ``url`` (``redis://HOST:PORT/DB``) with relay settings.

    Nothing is sent yet; :func:`ping` checks that the server answers. ``read_timeout``:
    seconds any one answer may take (None: no bound; it must exceed every blocking read's
    ``block``), after which the command fails without a retry (a server silent that long
    is hung, not restarting). ``options`` go to ``redis.asyncio.Redis.from_url`` and
    override the relay's settings.
    """
    backoff = ExponentialWithJitterBackoff(BACKOFF_BASE, BACKOFF_CAP)
    retry = (
        Retry(backoff, RETRIES)
        if read_timeout is None
        else Retry(backoff, RETRIES, supported_errors=(RedisConnectionError,))
    )
    settings: dict[str, Any] = {
        "socket_timeout": read_timeout,
        "socket_connect_timeout": connect_timeout,
        "max_connections": max_connections,
        "retry": retry,
        "health_check_interval": 0,
        **options,
    }
    try:
        _check_url(url)
        client = aioredis.Redis.from_url(url, **settings)
        pool = client.connection_pool
        pool.connection_class(**pool.connection_kwargs)  # an unknown ?option= fails here
    except (ValueError, TypeError, RedisError) as error:
        raise TransportError(redact(f"not a Redis URL {url!r}: {error}")) from None
    return client


def _check_url(url: str) -> None:
    """Refuse what redis-py would take silently: ``redis://h/abc`` as database 0."""
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss") and not _DB_PATH.fullmatch(unquote(parts.path)):
        raise ValueError(f"{parts.path.lstrip('/')} is not a database number")


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
    return TransportError(redact(f"Redis at {describe(client)} failed while {doing}: {reason}"))


async def ping(client: Redis, timeout: float | None = None) -> None:
    """Check that the server answers within ``timeout`` seconds (default
    :data:`PING_TIMEOUT`); a :class:`~rxgpt.TransportError` saying why if not."""
    timeout = PING_TIMEOUT if timeout is None else timeout
    try:
        async with asyncio.timeout(timeout):
            await client.ping()
    except TimeoutError:
        reason = f"no answer within {timeout:g}s (is it a Redis server?)"
    except (RedisError, OSError) as error:
        reason = str(error) or type(error).__name__
    else:
        return
    raise TransportError(redact(f"cannot reach Redis at {describe(client)}: {reason}"))
