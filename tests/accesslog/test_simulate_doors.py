import random
from io import StringIO

import pytest
from django.core.management import call_command

from accesslog.models import Event, EventType
from responder.demo.management.commands.simulate_doors import simulated_event
from tests.factories import AccessSystemFactory, DoorFactory


@pytest.mark.django_db(transaction=True)
def test_its_events_pass_the_real_ingest_view(live_server):
    system = AccessSystemFactory()
    doors = {DoorFactory(system=system).id for _ in range(3)}
    out = StringIO()

    call_command("simulate_doors", url=live_server.url, rate=1000, count=8, seed=1, stdout=out)

    assert out.getvalue().count("202 ") == 8
    events = Event.objects.all()
    assert events.count() == 8
    assert {e.door_id for e in events} <= doors
    assert len({e.source_event_id for e in events}) == 8


def test_it_sends_mostly_badges_and_a_few_alarms():
    door = DoorFactory.build(external_id="panel1-door1")
    rng = random.Random(7)
    kinds = [simulated_event(door, rng)["type"] for _ in range(2000)]

    assert kinds.count(EventType.ACCESS_GRANTED) > 1000
    assert 0 < kinds.count(EventType.DOOR_FORCED) < 200
    assert set(kinds) == set(EventType.values)


def test_it_says_what_to_do_without_doors(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="seed_demo"):
        call_command("simulate_doors", count=1)
