from __future__ import annotations

from celery import shared_task

from accesslog.models import Event
from responder.core.models import Incident
from responder.push import services as push


@shared_task(
    name="responder.tasks.push_event",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=5,
    default_retry_delay=5,
)
def push_event(self, event_id: int, subscription_ids: list[int] | None = None) -> int:
    """Ids in. Retries only the devices whose push service failed, so none gets it twice."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return 0
    outcome = push.push_event(event, subscription_ids=subscription_ids)
    for subscription_id, door, delay in outcome.summaries:
        push_summary.apply_async((subscription_id, door), countdown=delay)
    if outcome.failed:
        countdown = self.default_retry_delay * 2**self.request.retries
        raise self.retry(args=(event_id, outcome.failed), countdown=countdown)
    return outcome.sent


@shared_task(
    name="responder.tasks.push_summary",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    max_retries=3,
)
def push_summary(subscription_id: int, door: str) -> bool:
    return push.push_summary_send(subscription_id=subscription_id, door=door)


@shared_task(
    name="responder.tasks.push_incident",
    acks_late=True,
    ignore_result=True,
    autoretry_for=(OSError,),
    max_retries=3,
)
def push_incident(incident_id: int, user_ids: list[int] | None = None) -> int:
    incident = Incident.objects.filter(pk=incident_id).first()
    return push.push_incident(incident, user_ids=user_ids).sent if incident else 0


@shared_task(name="responder.tasks.push_pending_send", acks_late=True, ignore_result=True)
def push_pending_send() -> int:
    return push.push_pending_queue()
