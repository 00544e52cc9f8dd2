"""Attempts per client address, for any door that guesses can be knocked on (sign-in,
enrolment, share links): django-ratelimit's counters in the shared cache."""

from __future__ import annotations

import logging

from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import APIException

from responder.core.audit import client_ip

logger = logging.getLogger(__name__)

MESSAGE = "Too many attempts from this address. Wait a minute, then try again."


class Throttled(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = MESSAGE
    default_code = "throttled"


def client_address(group: str, request: HttpRequest) -> str:
    # The one place the throttle reads the address: audit's client_ip, which decides
    # which proxies' X-Forwarded-For to believe.
    return client_ip(request) or "unknown"


def throttle_hit(*, request: HttpRequest, scope: str, rate: str) -> bool:
    """Count one attempt from the request's address; True once past `rate` (e.g. "30/m")."""
    try:
        return is_ratelimited(request, group=scope, key=client_address, rate=rate, increment=True)
    except RedisError:
        # Without the cache the per-account lockout (in the database) still holds; a
        # responder must be able to sign in while Redis is down.
        logger.warning("throttle %s not counted: the cache did not answer", scope)
        return False


def throttle_check(*, request: HttpRequest, scope: str, rate: str) -> None:
    """throttle_hit for DRF views: raises Throttled (429 with a detail) past the limit."""
    if throttle_hit(request=request, scope=scope, rate=rate):
        raise Throttled()
