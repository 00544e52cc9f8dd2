"""What was stored before per-panel cursors keeps working after the upgrade."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps

from accesslog.connectors.base import Stopper
from accesslog.connectors.http import Endpoint
from accesslog.connectors.onguard import OnGuardClient, OnGuardConnector
from accesslog.models import ConnectorCursor, Event, SystemKind
from tests.accesslog.connector_helpers import CHICAGO, run, served
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import AccessSystemFactory

pytestmark = pytest.mark.django_db

upgrade = importlib.import_module("accesslog.migrations.0003_connector_cursors_health_late_events")


@pytest.fixture
def fake():
    yield from served(FakeOnGuard())


def stored(system, source_id: str, panel: int, at: datetime) -> Event:
    return Event.objects.create(
        seq=Event.objects.count() + 1,
        system=system,
        source_event_id=source_id,
        type="door_forced",
        severity="alarm",
        door_external_id=f"{panel}-1",
        occurred_at=at,
        details={"panelid": panel},
    )


def test_onguard_ids_become_per_panel_and_the_old_cursor_goes_on_from_them(fake):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    webhook = AccessSystemFactory(slug="hooks", kind=SystemKind.GENERIC)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    fake.panel_add(1)
    fake.panel_add(2)
    fake.panel_ahead(1, 6)
    fake.panel_ahead(2, 40)
    # Logged before the upgrade, under the system-wide serial cursor "41".
    for panel, serial in ((1, 7), (2, 41)):
        event = fake.event_add(PANELID=panel, DESCRIPTION="Door Forced Open", at=at)
        assert event["SERIALNUMBER"] == serial
        stored(system, str(serial), panel, at)
    stored(webhook, "41", 2, at)
    ConnectorCursor.objects.create(system=system, position="41")

    upgrade.onguard_ids_per_panel(apps, None)
    # While it was down: panel 1's serial 8 is below the old cursor, and must arrive.
    fake.event_add(PANELID=1, DESCRIPTION="Door Held Open", at=at + timedelta(minutes=1))
    client = OnGuardClient(Endpoint(fake.url), "responder", "s3cret", "id-1", "RESPONDER-TEST")
    run(OnGuardConnector(system, client, CHICAGO, stopper=Stopper()), steps=1)

    stamp = at.strftime("%Y%m%dT%H%M%SZ")
    assert list(Event.objects.filter(system=system).values_list("source_event_id", "type")) == [
        (f"1:7:{stamp}", "door_forced"),
        (f"2:41:{stamp}", "door_forced"),
        (f"1:8:{(at + timedelta(minutes=1)).strftime('%Y%m%dT%H%M%SZ')}", "door_held"),
    ]
    assert Event.objects.get(system=webhook).source_event_id == "41"  # not an OnGuard id
