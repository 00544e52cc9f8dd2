"""The one place Redis clients are made, one per need, each keyed by URL (tests point
REDIS_URL elsewhere and get their own pool):

- `redis_client()`: patient, for workers and requests that may wait for Redis (live video
  sessions, tokens, push windows). Answers are str.
- `quick_redis(url)`: fail-fast (0.3 s), for what must answer now even with Redis down
  (ingest's doorbell, the directory's version, queueing a task from a webhook).
- `async_redis()`: asyncio, for the fan-out's subscription in every daphne process.

`redis_send_now` sends writes made by `task_write` (a Celery task, queued) and others (a
doorbell) in one round trip per Redis, without Celery's client in the request.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import redis
import redis.asyncio as aioredis
from celery.app.amqp import task_message
from celery.app.task import Task
from django.conf import settings
from django.utils import timezone

logger = logging.getLogger(__name__)


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def redis_client() -> redis.Redis:
    return _client(settings.REDIS_URL)


@cache
def quick_redis(url: str) -> redis.Redis:
    """A client that fails fast (0.3 s) for what must answer now even with Redis down."""
    return redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)


def async_redis() -> aioredis.Redis:
    """A new client per subscription: the fan-out closes it when Redis goes away."""
    return aioredis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=15
    )


@dataclass(frozen=True)
class RedisWrite:
    """One command for `redis_send_now`: where it goes, and what it is (for the warning)."""

    url: str
    command: tuple[str | bytes | int, ...]
    what: str


def task_write(
    task: Task, args: tuple[int, ...], *, what: str, expires: int | None = None
) -> RedisWrite:
    """`task` queued as Celery's Redis transport queues it: an LPUSH of kombu's envelope
    around Celery's own message (`as_task_v2`, protocol 2) on the list of the task's queue,
    which any worker reads as if `apply_async` had sent it (a test holds the two equal).

    Celery's client costs ~1 ms of CPU a message (kombu makes a Redis client for each one);
    this is one command in the caller's pipeline. Only what ingest queues goes this way:
    ids in, no countdown, no priority, no result, no chain.
    """
    task_id, queue, template = str(uuid.uuid4()), _queue_of(task), _message_of(task, os.getpid())
    headers = template.headers | {
        "id": task_id,
        "root_id": task_id,
        "argsrepr": repr(args),  # what Celery's saferepr gives for a tuple of ids
        "expires": expires and (timezone.now() + timedelta(seconds=expires)).isoformat(),
    }
    message = template._replace(
        headers=headers,
        properties=template.properties | {"correlation_id": task_id},
        body=(args, {}, template.body[2]),
    )
    properties = message.properties | {
        "delivery_mode": 2,  # persistent, as kombu's Producer marks it
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    if expires:  # the broker's own expiry too, in ms, as kombu writes it
        properties["expiration"] = str(expires * 1000)
    envelope = {
        "body": base64.b64encode(json.dumps(message.body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": message.headers,
        "properties": properties,
    }
    return RedisWrite(settings.CELERY_BROKER_URL, ("LPUSH", queue, json.dumps(envelope)), what)


@cache
def _message_of(task: Task, pid: int) -> task_message:
    """Celery's message for `task` with no id, args or expiry, made once per process (its
    origin header names the process): `as_task_v2` reads the app's configuration and the
    host's name anew for each message, ~0.1 ms of CPU, a tenth of an ingest's."""
    return task.app.amqp.as_task_v2("", task.name, (), {}, ignore_result=task.ignore_result)


@cache
def _queue_of(task: Task) -> str:
    # The routes are settings (CELERY_TASK_ROUTES): the same answer for the process's life.
    return task.app.amqp.router.route({}, task.name, (), {})["queue"].name


def redis_send_now(writes: list[RedisWrite]) -> list[bool]:
    """Sends `writes` at once or not at all, for a request that must answer now (ingest,
    even with Redis down): one MULTI/EXEC per Redis, on a fail-fast client. Whether each
    write went, in order; a warning names what did not."""
    by_url: dict[str, list[RedisWrite]] = defaultdict(list)
    for write in writes:
        by_url[write.url].append(write)
    sent = {url: _send(url, group) for url, group in by_url.items()}
    return [sent[write.url] for write in writes]


def _send(url: str, writes: list[RedisWrite]) -> bool:
    # A transaction: Redis runs all of them or, when the connection fails before EXEC, none,
    # so a write that failed here is not half-done (a push kept to retry is not doubled).
    pipe = quick_redis(url).pipeline(transaction=True)
    for write in writes:
        pipe.execute_command(*write.command)
    try:
        pipe.execute()
    except redis.RedisError as error:
        for write in writes:
            logger.warning("%s not sent: Redis unreachable (%s)", write.what, error)
        return False
    return True
