"""District IT imports an access system's doors from the admin: a preview that writes
nothing, then Apply of exactly that plan, audited; against fake OnGuard and NetBox
controllers served as real HTTP servers, with the LENELS2_* environment the connector
reads."""

import os
import re
import socket

import pytest
from django.contrib.auth.models import Permission

from accesslog.connectors.clients import connection_from_env, door_list
from accesslog.door_import import door_plan
from accesslog.models import Door, Event, SystemKind
from responder.core.models import AuditEntry
from tests.accesslog.connector_helpers import served
from tests.accesslog.fakes.netbox import FakeNetBox
from tests.accesslog.fakes.onguard import FakeOnGuard
from tests.factories import (
    AccessSystemFactory,
    BuildingFactory,
    DoorFactory,
    UserFactory,
    sign_in_verified,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def netbox(monkeypatch):
    fake = FakeNetBox()
    fake.portal_add("3", "MS Main Entrance", ("7", "MS Main Entrance In"))
    fake.portal_add("4", "MS Gym East", ("8", "MS Gym East In"))
    fake.portal_add("5", "MS Dock")
    for fake_served in served(fake):
        monkeypatch.setenv("LENELS2_URL", fake_served.url)
        monkeypatch.setenv("LENELS2_USERNAME", fake.username)
        monkeypatch.setenv("LENELS2_PASSWORD", fake.password)
        monkeypatch.delenv("LENELS2_APPLICATION_ID", raising=False)
        yield fake_served


@pytest.fixture
def onguard(monkeypatch):
    fake = FakeOnGuard()
    fake.reader_add(1, 1, "HS Main Entrance")
    fake.reader_add(1, 2, "HS Gym East")
    for fake_served in served(fake):
        monkeypatch.setenv("LENELS2_URL", fake_served.url)
        monkeypatch.setenv("LENELS2_USERNAME", fake.username)
        monkeypatch.setenv("LENELS2_PASSWORD", fake.password)
        monkeypatch.setenv("LENELS2_APPLICATION_ID", fake.application_id)
        yield fake_served


@pytest.fixture
def door_keeper(client):
    """Staff who may add and change doors, past the second factor; not a superuser."""
    user = UserFactory(is_staff=True)
    codes = ["add_door", "change_door", "view_door", "view_accesssystem"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codes))
    sign_in_verified(client, user)
    return client


@pytest.fixture
def middle_school():
    system = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)
    DoorFactory(system=system, external_id="MS Main Entrance", name="Main")  # keyed by name
    DoorFactory(system=system, external_id="4", name="Gym")
    return system


def page_of(system) -> str:
    return f"/admin/accesslog/accesssystem/{system.pk}/import-doors/"


def previewed_plan(client, system, building=None) -> str:
    query = {"building": building.pk} if building else {}
    response = client.get(page_of(system), query)
    assert response.status_code == 200, response.text
    return re.search(r'name="plan" value="([0-9a-f]{64})"', response.text)[1]


def doors_of(system) -> list[tuple[str, str]]:
    return sorted(Door.objects.filter(system=system).values_list("external_id", "name"))


def test_the_preview_lists_what_it_would_create_rekey_and_rename_and_writes_nothing(
    door_keeper, netbox, middle_school
):
    building = BuildingFactory(name="Middle School")
    before = doors_of(middle_school)

    response = door_keeper.get(page_of(middle_school), {"building": building.pk})

    assert response.status_code == 200
    rows = re.findall(
        r'<tr class="(\w+)"><td>(.*?)</td>\s*<td>(.*?)</td><td>(.*?)</td>', response.text
    )
    assert ("create", "create in Middle School", "5", "MS Dock") in rows
    assert ("rekey", "re-key", "MS Main Entrance &rarr; 3", "Main &rarr; MS Main Entrance") in rows
    assert ("rename", "rename", "4", "Gym &rarr; MS Gym East") in rows
    assert 'value="Apply"' in response.text
    assert doors_of(middle_school) == before
    assert not AuditEntry.objects.filter(action="doors.imported").exists()


def test_apply_writes_the_previewed_plan_and_an_audit_row_with_its_counts(
    door_keeper, netbox, middle_school
):
    building = BuildingFactory(name="Middle School")
    Event.objects.create(
        seq=1,
        system=middle_school,
        source_event_id="nb-1",
        type="door_forced",
        severity="alarm",
        door_external_id="5",
        occurred_at="2026-11-28T08:14:09Z",
    )
    plan = previewed_plan(door_keeper, middle_school, building)

    response = door_keeper.post(page_of(middle_school), {"building": building.pk, "plan": plan})

    assert response.status_code == 302
    assert response["Location"].endswith(f"?system__id__exact={middle_school.pk}")
    assert doors_of(middle_school) == [
        ("3", "MS Main Entrance"),
        ("4", "MS Gym East"),
        ("5", "MS Dock"),
    ]
    assert Door.objects.get(external_id="5").building == building
    assert Event.objects.get().door.name == "MS Dock"
    entry = AuditEntry.objects.get(action="doors.imported")
    assert entry.object_id == str(middle_school.pk)
    assert entry.user.is_staff
    assert entry.details == {
        "created": 1,
        "renamed": 1,
        "rekeyed": 1,
        "kept": 0,
        "events_linked": 1,
        "building": building.pk,
    }


def test_a_list_changed_between_preview_and_apply_shows_the_new_plan_and_writes_nothing(
    door_keeper, netbox, middle_school
):
    building = BuildingFactory(name="Middle School")
    stale = previewed_plan(door_keeper, middle_school, building)
    netbox.portal_add("6", "MS Library")
    before = doors_of(middle_school)

    response = door_keeper.post(page_of(middle_school), {"building": building.pk, "plan": stale})

    assert response.status_code == 409
    assert "changed since the preview: nothing was written" in response.text
    assert "MS Library" in response.text
    assert doors_of(middle_school) == before
    assert not AuditEntry.objects.filter(action="doors.imported").exists()
    fresh = re.search(r'name="plan" value="([0-9a-f]{64})"', response.text)[1]
    applied = door_keeper.post(page_of(middle_school), {"building": building.pk, "plan": fresh})
    assert applied.status_code == 302
    assert ("6", "MS Library") in doors_of(middle_school)


def test_our_doors_edited_between_preview_and_apply_show_the_new_plan_too(
    door_keeper, netbox, middle_school
):
    building = BuildingFactory(name="Middle School")
    stale = previewed_plan(door_keeper, middle_school, building)
    DoorFactory(system=middle_school, external_id="5", name="Loading dock")

    response = door_keeper.post(page_of(middle_school), {"building": building.pk, "plan": stale})

    assert response.status_code == 409
    assert Door.objects.get(system=middle_school, external_id="5").name == "Loading dock"


def test_missing_credentials_name_the_variables_to_set_and_nothing_is_written(
    door_keeper, onguard, monkeypatch
):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    building = BuildingFactory()
    monkeypatch.delenv("LENELS2_PASSWORD")
    monkeypatch.setenv("LENELS2_APPLICATION_ID", "")

    preview = door_keeper.get(page_of(system), {"building": building.pk})
    forged = door_keeper.post(page_of(system), {"building": building.pk, "plan": "0" * 64})

    for response in (preview, forged):
        assert response.status_code == 503
        assert (
            "Set LENELS2_PASSWORD, LENELS2_APPLICATION_ID in /etc/responder/responder.env"
            in response.text
        )
    assert not Door.objects.exists()
    assert not AuditEntry.objects.filter(action="doors.imported").exists()


def test_a_controller_that_does_not_answer_gets_a_clear_message_and_nothing_is_written(
    door_keeper, monkeypatch
):
    system = AccessSystemFactory(slug="ms", kind=SystemKind.NETBOX)
    building = BuildingFactory()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("LENELS2_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("LENELS2_USERNAME", "responder")
    monkeypatch.setenv("LENELS2_PASSWORD", "s3cret")

    preview = door_keeper.get(page_of(system), {"building": building.pk})
    applied = door_keeper.post(page_of(system), {"building": building.pk, "plan": "0" * 64})

    for response in (preview, applied):
        assert response.status_code == 502
        assert f"Could not read the door list of {system} at http://127.0.0.1:{port}" in (
            response.text
        )
        assert "Connection refused" in response.text
        assert "Nothing was changed" in response.text
    assert not Door.objects.exists()


def test_a_wrong_password_is_a_clear_message_that_never_shows_the_password(
    door_keeper, onguard, monkeypatch
):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    monkeypatch.setenv("LENELS2_PASSWORD", "not-the-password")

    response = door_keeper.get(page_of(system))

    assert response.status_code == 502
    assert "Could not read the door list" in response.text
    assert "HTTP 401" in response.text
    assert "not-the-password" not in response.text
    assert not Door.objects.exists()


def test_onguard_readers_are_imported_from_the_admin_by_panel_and_reader(door_keeper, onguard):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    building = BuildingFactory()

    plan = previewed_plan(door_keeper, system, building)
    door_keeper.post(page_of(system), {"building": building.pk, "plan": plan})

    assert doors_of(system) == [("1-1", "HS Main Entrance"), ("1-2", "HS Gym East")]


def test_new_doors_wait_for_a_building_and_apply_without_one_writes_nothing(
    door_keeper, netbox, middle_school
):
    preview = door_keeper.get(page_of(middle_school))
    plan = previewed_plan_without_apply(preview.text, middle_school)
    before = doors_of(middle_school)

    applied = door_keeper.post(page_of(middle_school), {"building": "", "plan": plan})

    assert "choose the building they go to above" in preview.text
    assert 'value="Apply"' not in preview.text
    assert applied.status_code == 400
    assert "is new: name a building" in applied.text
    assert doors_of(middle_school) == before


def previewed_plan_without_apply(page: str, system) -> str:
    """The digest of the plan the page shows (it offers no Apply without a building)."""
    assert "MS Dock" in page
    found = door_list(system.kind, connection_from_env(os.environ, timeout=5))
    return door_plan(system=system, building=None, found=found).digest


def test_an_apply_without_a_preview_is_refused(door_keeper, netbox, middle_school):
    before = doors_of(middle_school)

    response = door_keeper.post(page_of(middle_school), {"building": ""})

    assert response.status_code == 400
    assert "Preview the import first" in response.text
    assert doors_of(middle_school) == before


def test_a_user_without_door_permissions_gets_403_and_nothing_is_written(
    client, netbox, middle_school
):
    user = UserFactory(is_staff=True)
    codes = ["view_door", "view_accesssystem", "change_accesssystem"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codes))
    sign_in_verified(client, user)
    building = BuildingFactory()
    before = doors_of(middle_school)

    preview = client.get(page_of(middle_school), {"building": building.pk})
    applied = client.post(page_of(middle_school), {"building": building.pk, "plan": "0" * 64})
    changelist = client.get("/admin/accesslog/accesssystem/")
    change_page = client.get(f"/admin/accesslog/accesssystem/{middle_school.pk}/change/")

    assert (preview.status_code, applied.status_code) == (403, 403)
    assert "import_doors" not in changelist.text
    assert "Import doors…" not in change_page.text
    assert doors_of(middle_school) == before


def test_the_action_takes_one_system_to_its_import_page(door_keeper, middle_school):
    other = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    changelist = "/admin/accesslog/accesssystem/"

    one = door_keeper.post(
        changelist, {"action": "import_doors", "_selected_action": [middle_school.pk]}
    )
    two = door_keeper.post(
        changelist,
        {"action": "import_doors", "_selected_action": [middle_school.pk, other.pk]},
        follow=True,
    )

    assert one.status_code == 302
    assert one["Location"] == page_of(middle_school)
    assert "Choose one access system to import doors from." in two.text
    page = door_keeper.get(f"/admin/accesslog/accesssystem/{middle_school.pk}/change/").text
    assert f'href="{page_of(middle_school)}"' in page


def test_a_webhook_system_has_no_door_list_to_import(door_keeper, netbox):
    system = AccessSystemFactory(slug="gen", kind=SystemKind.GENERIC)

    response = door_keeper.get(page_of(system))
    change_page = door_keeper.get(f"/admin/accesslog/accesssystem/{system.pk}/change/")

    assert response.status_code == 400
    assert "it sends webhooks, so there is no door list to read from it" in response.text
    assert "Import doors…" not in change_page.text


def test_a_door_name_with_markup_from_the_controller_is_shown_as_text(door_keeper, onguard):
    system = AccessSystemFactory(slug="hs", kind=SystemKind.ONGUARD)
    onguard.reader_add(2, 1, '<img src=x onerror="alert(1)">')

    response = door_keeper.get(page_of(system), {"building": BuildingFactory().pk})

    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in response.text
    assert '<img src=x onerror="alert(1)">' not in response.text
