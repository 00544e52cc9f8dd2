from functools import cache

import redis
from django.conf import settings


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True)


def redis_client() -> redis.Redis:
    # Keyed by URL so tests that point REDIS_URL elsewhere get their own pool.
    return _client(settings.REDIS_URL)
