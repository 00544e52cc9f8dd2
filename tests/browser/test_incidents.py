"""The Incidents screen in a real browser: the open incidents a user responds to, their
timeline, their cameras and the emergency access they grant."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from playwright.sync_api import Locator, Page, expect

from accesslog.models import Event
from maps.models import Campus
from responder.core.models import Incident, IncidentEntry, IncidentRule, ResponderRole
from responder.core.roles import POLICE
from responder.incidents.services import incident_close, incident_open
from tests.browser.conftest import sign_in
from tests.browser.test_map_phone import sign_in_as
from tests.browser.test_pwa import AXE, summary, violations
from tests.factories import DoorFactory, GrantFactory, GroupFactory, UserFactory
from tests.signin_helpers import usable_device

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BOTH = pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)


@pytest.fixture
def fire(officer):
    """The responder group the officer belongs to; incidents name it, not the officer."""
    group = GroupFactory(name="North Fire")
    # A responder role IT gave emergency access: only those do alarm rules name.
    ResponderRole.objects.create(group=group, emergency_access=True)
    officer.groups.add(group)
    return group


@pytest.fixture
def dispatcher():
    return UserFactory(username="dispatch", first_name="Sam", last_name="Ortiz")


def fits_the_screen(page: Page) -> bool:
    """Nothing on the shown screen needs scrolling sideways (360 px phones included)."""
    return page.locator("section.screen:not([hidden])").evaluate(
        "(screen) => screen.scrollWidth <= screen.clientWidth"
    )


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name=name).click()


def incident_card(page: Page, title: str) -> Locator:
    return page.get_by_role("region", name="Incidents").get_by_role("article", name=title)


@BOTH
def test_an_open_incident_shows_its_timeline_cameras_and_the_access_it_grants(
    district, officer, fire, dispatcher, post_alarm, page, shots
):
    district["front_door"].cameras.add(district["stacks"])
    alarm = post_alarm(district["front_door"], "door_forced")
    incident_open(
        campus=district["north"], title="Forced entry at the library", by=dispatcher,
        responder_groups=[fire], grant_hours=4, source_event=Event.objects.get(pk=alarm["id"]),
    )  # fmt: skip
    # Not the officer's: another campus and another group; and one already closed.
    incident_open(
        campus=district["south"], title="Smoke in the annex", by=dispatcher,
        responder_groups=[GroupFactory(name="South Fire")], grant_hours=4,
    )  # fmt: skip
    closed = incident_open(
        campus=district["north"], title="Drill at the gym", by=dispatcher,
        responder_groups=[fire], grant_hours=1,
    )  # fmt: skip
    incident_close(incident=closed, by=dispatcher)

    sign_in(page, officer)
    nav(page, "Incidents")

    card = incident_card(page, "Forced entry at the library")
    expect(card).to_be_visible()
    expect(page.get_by_role("region", name="Incidents").get_by_role("article")).to_have_count(1)
    expect(card.locator(".meta")).to_contain_text("North Campus · opened")
    expect(card.locator(".meta")).to_contain_text("by dispatch")
    timeline = card.locator("ol.timeline > li")
    expect(timeline).to_have_count(3)
    # In time order: the alarm happened before anyone opened the incident.
    expect(timeline).to_contain_text(
        [
            "Event Door forced at Library Front Door",
            "Opened Forced entry at the library (dispatch)",
            "Emergency access started",
        ]
    )
    expect(card.locator(".grant-banner")).to_contain_text(
        "Gives North Fire live video and recordings on this campus until"
    )
    cameras = card.get_by_role("group", name="Cameras")
    # The door's two cameras, both at once, and the incident's recordings (the officer has
    # `recorded`).
    expect(cameras.get_by_role("button")).to_have_count(4)
    expect(cameras.get_by_role("button", name="Camera Library Lobby")).to_be_visible()
    expect(cameras.get_by_role("button", name="Camera Library Stacks")).to_be_visible()
    expect(cameras.get_by_role("button", name="Recordings")).to_be_visible()
    expect(page.locator(".grant-list li.grant.active")).to_contain_text(
        "Active: Forced entry at the library (North Campus)."
    )
    shots("incidents-open")
    assert fits_the_screen(page)

    card.get_by_label("Note for Forced entry at the library").fill("Entering from the north side")
    card.get_by_role("button", name="Add note").click()
    expect(timeline).to_have_count(4)
    expect(timeline.nth(3)).to_contain_text("Note Entering from the north side (officer)")
    assert IncidentEntry.objects.filter(kind="note", user=officer).count() == 1
    shots("incidents-note")

    cameras.get_by_role("button", name="Watch side by side").click()
    grid = page.get_by_role("dialog", name="Live: Forced entry at the library")
    expect(grid.locator(".grid-tile")).to_have_count(2)
    grid.get_by_role("button", name="Close").click()
    expect(grid).to_have_count(0)

    cameras.get_by_role("button", name="Camera Library Lobby").click()
    dialog = page.get_by_role("dialog", name="Live: Library Lobby")
    expect(dialog.get_by_role("status")).to_have_text(re.compile("Starting|Live"))
    shots("incidents-camera")
    dialog.get_by_role("button", name="Close").click()

    timeline.nth(0).get_by_role("button", name="Show on map").click()
    expect(page.locator(".door-pin.flash")).to_have_attribute(
        "title", re.compile("^Library Front Door")
    )


@BOTH
def test_an_incident_opened_by_an_alarm_appears_and_a_note_being_written_survives(
    district, officer, fire, dispatcher, signed_in, post_alarm, shots
):
    page = signed_in
    rule = IncidentRule.objects.create(name="Forced doors", event_types=["door_forced"])
    rule.responder_groups.add(fire)
    incident_open(
        campus=district["north"], title="Forced entry at the library", by=dispatcher,
        responder_groups=[fire], grant_hours=4,
    )  # fmt: skip
    side_door = DoorFactory(
        system=district["system"], building=district["annex"], name="Annex Side Door"
    )
    side_door.cameras.add(district["annex_hall"])
    nav(page, "Incidents")
    note = incident_card(page, "Forced entry at the library").get_by_label(
        "Note for Forced entry at the library"
    )
    note.fill("Two officers at the front")
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")

    post_alarm(side_door, "door_forced")

    # Titled by what it is: campus, first alarm, how many doors.
    card = incident_card(page, "South Campus: Door forced, 1 door")
    expect(card).to_be_visible()
    expect(card.locator(".meta")).to_contain_text("South Campus · opened")
    expect(card.locator("ol.timeline")).to_contain_text("Event Door forced at Annex Side Door")
    expect(card.get_by_role("group", name="Cameras")).to_contain_text("Annex Hall")
    expect(page.locator("#badge-incidents")).to_have_text("2")
    # The list was drawn again under the user's fingers: the note and the caret stay.
    expect(note).to_have_value("Two officers at the front")
    expect(note).to_be_focused()
    shots("incidents-from-alarm")


@BOTH
def test_who_runs_incidents_opens_and_closes_one_from_the_app(page, district, fire, shots):
    police = GroupFactory(name="Police")
    ResponderRole.objects.create(group=police, emergency_access=True)
    GroupFactory(name="Teachers")  # not a responder role: never offered
    dispatch = UserFactory(username="dispatch", first_name="Sam", last_name="Ortiz")
    usable_device(dispatch)
    GrantFactory(user=dispatch, capabilities=["incidents", "alarms"], campus=district["north"])
    page.add_init_script(path=str(AXE))
    page.on("dialog", lambda dialog: dialog.accept())  # "Close …? Its emergency access ends now."
    sign_in(page, dispatch)
    nav(page, "Incidents")

    page.get_by_text("Open an incident").click()
    page.get_by_label("Campus").select_option(label="North Campus")
    page.get_by_label("Title").fill("Suspicious person by the gym")
    access = page.get_by_role("group", name="Emergency access for")
    expect(access.get_by_role("checkbox")).to_have_count(2)
    expect(access.get_by_role("checkbox", name="North Fire")).to_be_checked()
    access.get_by_role("checkbox", name="Police").uncheck()  # fire only, this time
    page.get_by_label("Access ends after (hours)").fill("2")
    shots("incident-open-form")
    assert not (found := violations(page)), summary(found)
    assert fits_the_screen(page)
    page.get_by_role("button", name="Open incident").click()

    card = incident_card(page, "Suspicious person by the gym")
    expect(card).to_be_visible()
    expect(card.locator(".meta")).to_contain_text("by dispatch")
    expect(card.locator(".meta")).to_contain_text("access for: North Fire")
    incident = Incident.objects.get(title="Suspicious person by the gym")
    assert incident.campus == district["north"] and incident.opened_by == dispatch
    assert list(incident.responder_groups.all()) == [fire] and incident.grant_hours == 2
    assert fits_the_screen(page)

    card.get_by_role("button", name="Close incident: Suspicious person by the gym").click()
    expect(card).to_have_count(0)
    expect(page.get_by_role("region", name="Incidents")).to_contain_text("No open incidents.")
    incident.refresh_from_db()
    assert incident.status == "closed"


def test_a_responder_who_does_not_run_incidents_is_not_offered_to_open_or_close_one(
    page, district, officer, fire, dispatcher
):
    incident_open(
        campus=district["north"], title="Forced entry at the library", by=dispatcher,
        responder_groups=[fire], grant_hours=4,
    )  # fmt: skip
    sign_in(page, officer)
    nav(page, "Incidents")
    expect(incident_card(page, "Forced entry at the library")).to_be_visible()
    expect(page.get_by_text("Open an incident")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Close incident"))).to_have_count(0)


@BOTH
def test_a_principal_sees_the_incident_at_their_own_school_and_no_other(page, live_url, shots):
    call_command("seed_demo", stdout=io.StringIO())
    high_school = Campus.objects.get(short_name="HS")
    for campus, title in [
        (high_school, "Police at the high school"),
        (Campus.objects.exclude(pk=high_school.pk).first(), "Police elsewhere"),
    ]:
        incident_open(
            campus=campus, title=title, by=None, grant_hours=1,
            responder_groups=[Group.objects.get(name=POLICE)],
        )  # fmt: skip
    sign_in_as(page, "hs-principal")
    nav(page, "Incidents")

    expect(incident_card(page, "Police at the high school")).to_be_visible()
    expect(page.get_by_role("region", name="Incidents").get_by_role("article")).to_have_count(1)
    expect(page.get_by_role("region", name="Incidents")).not_to_contain_text("No open incidents")
    # Their own school's incidents they also run (the demo's default grant: IT may change it).
    expect(
        page.get_by_role("button", name="Close incident: Police at the high school")
    ).to_be_visible()
    shots("principal-incidents")
    assert fits_the_screen(page)
