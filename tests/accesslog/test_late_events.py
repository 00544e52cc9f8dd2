"""An event older than ALARM_MAX_AGE_SECONDS when it arrives (a backfill, a controller's
buffer after an outage, a webhook retried for hours) is stored and shown marked late, and
never rings: no push, no incident, no camera warmed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accesslog.models import Event
from responder.core.models import Incident, IncidentRule, PendingPush
from responder.core.redis import quick_redis
from tests.accesslog.ingest_helpers import event_json, post_event
from tests.factories import (
    AccessSystemFactory,
    DoorFactory,
    GrantFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def door():
    system = AccessSystemFactory(webhook_secret="s3cret")
    IncidentRule.objects.create(name="Forced", event_types=["door_forced"])
    return DoorFactory(system=system, external_id="panel1-door1")


def post_forced(client, door, source_id: str, *, seconds_ago: int) -> Event:
    occurred = timezone.now() - timedelta(seconds=seconds_ago)
    body = event_json(source_event_id=source_id, occurred_at=occurred.isoformat())
    response = post_event(client, door.system.slug, body, "s3cret")
    assert response.status_code == 202
    return Event.objects.get(source_event_id=source_id)


def queued(settings) -> int:
    return quick_redis(settings.CELERY_BROKER_URL).llen("push")


def test_an_alarm_older_than_the_limit_is_stored_late_and_rings_nothing(
    client, door, settings, django_capture_on_commit_callbacks
):
    settings.ALARM_MAX_AGE_SECONDS = 300
    before = queued(settings)

    with django_capture_on_commit_callbacks(execute=True):
        old = post_forced(client, door, "old", seconds_ago=301)

    assert (old.late, old.severity, old.door) == (True, "alarm", door)
    assert queued(settings) == before and not PendingPush.objects.exists()
    assert not Incident.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        fresh = post_forced(client, door, "fresh", seconds_ago=299)

    assert fresh.late is False
    assert queued(settings) > before  # its push (and the incident's)
    assert Incident.objects.count() == 1


def test_a_late_event_is_in_the_log_marked_late(client, door, settings):
    settings.ALARM_MAX_AGE_SECONDS = 60
    post_forced(client, door, "late", seconds_ago=3600)
    post_forced(client, door, "now", seconds_ago=0)
    user = UserFactory()
    GrantFactory(user=user, building=door.building, capabilities=["alarms"])
    sign_in_verified(client, user)

    records = client.get("/api/v1/events/").json()["results"]

    assert sorted((r["late"], r["severity"]) for r in records) == [
        (False, "alarm"),
        (True, "alarm"),
    ]
