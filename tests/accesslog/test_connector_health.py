"""District IT sees each connector's health: last event, cursor, lag, errors in the hour."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accesslog.connectors.health import errors_last_hour, health_error, health_event
from accesslog.models import ConnectorCursor, ConnectorHealth, SystemKind
from tests.factories import AccessSystemFactory, UserFactory, sign_in_verified

pytestmark = pytest.mark.django_db


def test_errors_older_than_an_hour_no_longer_count():
    system = AccessSystemFactory(kind=SystemKind.NETBOX)
    with time_machine.travel(timezone.now() - timedelta(minutes=90)):
        health_error(system=system, text="HTTP 500")
    health_error(system=system, text="HTTP 502")
    health_error(system=system, text="TransientError: timed out")

    health = ConnectorHealth.objects.get(system=system)
    assert errors_last_hour(health) == 2
    assert health.last_error == "TransientError: timed out"


def test_the_admin_lists_each_connectors_last_event_cursor_lag_and_errors(client):
    system = AccessSystemFactory(name="HS OnGuard", slug="hs", kind=SystemKind.ONGUARD)
    ConnectorCursor.objects.create(system=system, position='{"panels":{"1":{"serial":42}}}')
    health_event(system=system, occurred_at=timezone.now() - timedelta(seconds=3))
    health_error(system=system, text="HTTP 503: b'busy'")
    health = ConnectorHealth.objects.get(system=system)
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))

    listing = client.get("/admin/accesslog/connectorhealth/").content.decode()
    detail = client.get(f"/admin/accesslog/connectorhealth/{health.pk}/change/").content.decode()

    assert "HS OnGuard" in listing and "HTTP 503" in listing
    assert " s<" in listing  # the lag, in seconds
    assert "&quot;serial&quot;:42" in detail
