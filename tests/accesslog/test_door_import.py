"""District IT imports an access system's doors through its API instead of typing keys."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accesslog.models import Door, Event, SystemKind
from responder.core.models import AuditEntry
from tests.accesslog.connector_helpers import served
from tests.accesslog.fakes.netbox import FakeNetBox
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import AccessSystemFactory, BuildingFactory, DoorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def onguard():
    fake = FakeOnGuard()
    fake.reader_add(1, 1, "HS Main Entrance")
    fake.reader_add(1, 2, "HS Gym East")
    fake.reader_add(2, 1, "HS Dock")
    yield from served(fake)


@pytest.fixture
def netbox():
    fake = FakeNetBox()
    fake.portal_add("3", "MS Main Entrance", ("7", "MS Main Entrance In"))
    fake.portal_add("4", "MS Gym East", ("8", "MS Gym East In"))
    fake.portal_add("5", "MS Dock")
    yield from served(fake)


def import_doors(fake, system, monkeypatch, **options) -> str:
    monkeypatch.setenv("LENELS2_PASSWORD", fake.password)
    out = StringIO()
    extra = {"application_id": fake.application_id} if system.kind == SystemKind.ONGUARD else {}
    call_command(
        "import_doors",
        system.slug,
        url=fake.url,
        username=fake.username,
        stdout=out,
        **extra,
        **options,
    )
    return out.getvalue()


def test_a_dry_run_shows_what_it_would_create_and_change_and_changes_nothing(onguard, monkeypatch):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    building = BuildingFactory(name="High School")
    DoorFactory(system=system, external_id="1-2", name="Gym")

    out = import_doors(onguard, system, monkeypatch, dry_run=True, building=str(building.id))

    assert "create 1-1: HS Main Entrance in High School" in out
    assert "create 2-1: HS Dock in High School" in out
    assert "change 1-2: Gym -> 1-2: HS Gym East" in out
    assert "would create 2, would change 1, kept 0" in out
    assert list(Door.objects.values_list("external_id", "name")) == [("1-2", "Gym")]


def test_onguard_readers_become_doors_keyed_by_panel_and_reader(onguard, monkeypatch):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    building = BuildingFactory(name="High School")
    Event.objects.create(
        seq=1,
        system=system,
        source_event_id="2:1:20261128T081409Z",
        type="door_forced",
        severity="alarm",
        door_external_id="2-1",
        occurred_at="2026-11-28T08:14:09Z",
    )

    import_doors(onguard, system, monkeypatch, building=building.name)
    again = import_doors(onguard, system, monkeypatch, building=building.name)

    assert sorted(Door.objects.values_list("external_id", "name")) == [
        ("1-1", "HS Main Entrance"),
        ("1-2", "HS Gym East"),
        ("2-1", "HS Dock"),
    ]
    assert Event.objects.get().door.name == "HS Dock"  # the unknown door's events linked
    assert "created 0, changed 0, kept 3" in again


def test_netbox_portals_become_doors_by_key_and_doors_named_before_are_rekeyed(
    netbox, monkeypatch
):
    system = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)
    named = DoorFactory(system=system, external_id="MS Main Entrance", name="Main")

    out = import_doors(netbox, system, monkeypatch, building=str(named.building_id))

    named.refresh_from_db()
    assert (named.external_id, named.name) == ("3", "MS Main Entrance")
    assert sorted(Door.objects.values_list("external_id", flat=True)) == ["3", "4", "5"]
    assert "change MS Main Entrance: Main -> 3: MS Main Entrance" in out


def test_new_doors_without_a_building_are_refused_with_nothing_changed(netbox, monkeypatch):
    system = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)

    with pytest.raises(CommandError, match="is new: name a building"):
        import_doors(netbox, system, monkeypatch)
    with pytest.raises(CommandError, match="No building"):
        import_doors(netbox, system, monkeypatch, building="Nowhere")

    assert not Door.objects.exists()


def test_an_import_by_the_command_leaves_an_audit_row_with_its_counts(onguard, monkeypatch):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    building = BuildingFactory(name="High School")
    DoorFactory(system=system, external_id="1-2", name="Gym")

    import_doors(onguard, system, monkeypatch, dry_run=True, building=building.name)
    assert not AuditEntry.objects.filter(action="doors.imported").exists()
    import_doors(onguard, system, monkeypatch, building=building.name)

    entry = AuditEntry.objects.get(action="doors.imported")
    assert entry.object_id == str(system.pk)
    assert entry.details == {
        "created": 2,
        "renamed": 1,
        "rekeyed": 0,
        "kept": 0,
        "events_linked": 0,
        "building": building.pk,
    }


def test_a_dry_run_without_a_building_still_lists_the_new_doors(netbox, monkeypatch):
    system = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)

    out = import_doors(netbox, system, monkeypatch, dry_run=True)

    assert "create 5: MS Dock (no building named)" in out
    assert not Door.objects.exists()
