import functools
import logging
import os

import redis
from celery import Celery
from celery.app.task import Task
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "responder.settings")

app = Celery("responder")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


def task_send_now(task: Task, args: tuple, *, what: str, **options: object) -> bool:
    """Queue `task` at once or not at all: for a webhook or request that must answer now.

    Celery spends seconds failing to reach a down broker, so the broker is asked first,
    with a short timeout, and the task is sent without retries. False (and a warning
    naming `what`) when it could not be queued.
    """
    from django.conf import settings

    try:
        if not quick_redis(settings.CELERY_BROKER_URL).ping():
            raise OSError("no answer")
        task.apply_async(args, retry=False, **options)
    except (redis.RedisError, OperationalError, OSError) as error:
        logger.warning("%s not queued: broker unreachable (%s)", what, error)
        return False
    return True


@functools.cache
def quick_redis(url: str) -> redis.Redis:
    """A client that fails fast (0.3 s) for what must answer now even with Redis down.

    Keyed by URL: settings pointing elsewhere (tests) get a client of their own."""
    return redis.Redis.from_url(url, socket_timeout=0.3, socket_connect_timeout=0.3)
