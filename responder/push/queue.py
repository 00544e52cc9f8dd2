"""Queueing pushes from below: the ingest's and the incidents' hand-over to the push tasks
(tasks.py calls the senders in services.py, so services.py cannot import the tasks at its
top; this module can)."""

from __future__ import annotations

from django.conf import settings

from accesslog.models import Event
from responder.core.models import PendingPush
from responder.core.redis import RedisWrite, task_write
from responder.push.tasks import push_event, push_incident


def event_push_write(event: Event) -> RedisWrite | None:
    """The event's push task as a write for the ingest's one round trip to Redis (None
    with push off: nothing would be sent). The ingest keeps it with `event_push_keep`
    when Redis did not take it."""
    if not settings.PUSH_ENABLED:
        return None
    return task_write(push_event, (event.id,), what=f"Push for event {event.seq}")


def event_push_keep(event: Event) -> None:
    """A push the broker did not take: a PendingPush, which beat's push_pending_send
    queues once the broker answers again."""
    PendingPush.objects.create(event=event)


def incident_wake_queue(
    sender: object, *, incident_id: int, user_ids: list[int] | None, **kwargs: object
) -> None:
    """Receives responder.incidents' `incident_wake` (connected in PushConfig.ready):
    incidents sit below push and cannot call it."""
    push_incident.delay(incident_id, user_ids)
