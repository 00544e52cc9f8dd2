"""The map at phone (360×740) and tablet (1280×800) size, on the demo district's plans:
no pin hides another, an alarmed door is on top and opens its sheet, labels stay readable,
the breadcrumb keeps the place's name."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import Page, expect

from accesslog.models import Door
from maps.models import Campus, Floor
from responder.demo.management.commands.seed_demo import DEFAULT_PASSWORD
from tests.browser.conftest import takeover_dismiss
from tests.browser.test_pwa import AXE, summary, violations
from tests.signin_helpers import code_for, usable_device

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
BOTH = pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)

# Pairs of drawn pins (or building labels) whose boxes intersect, among those on screen.
OVERLAPS = """(selector) => {
  const canvas = document.querySelector('.map-canvas').getBoundingClientRect();
  const boxes = [...document.querySelectorAll(selector)]
    .map((el) => el.getBoundingClientRect())
    .filter((r) => r.width && r.right > canvas.left && r.left < canvas.right
      && r.bottom > canvas.top && r.top < canvas.bottom);
  let pairs = 0;
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5) pairs++;
    }
  return { pins: boxes.length, pairs };
}"""
# The smallest font size of any text drawn over the plan (labels, counts, legend, tooltips).
SMALLEST_TEXT = """() => {
  let smallest = Infinity;
  for (const el of document.querySelectorAll('.map-canvas *')) {
    if (!el.offsetParent || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    smallest = Math.min(smallest, parseFloat(getComputedStyle(el).fontSize));
  }
  return smallest;
}"""


# The plan's names the app draws (Floor.labels, Campus.labels; the demo's images hold no
# text): those shown, their smallest size, pairs that touch, and any that touch a pin.
PLAN_LABELS = """() => {
  const canvas = document.querySelector('.map-canvas').getBoundingClientRect();
  const inside = (r) => r.width && r.right > canvas.left && r.left < canvas.right
    && r.bottom > canvas.top && r.top < canvas.bottom;
  const touch = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  const all = [...document.querySelectorAll('.plan-label span')];
  const shown = all.filter((el) => getComputedStyle(el).visibility === 'visible'
    && inside(el.getBoundingClientRect()));
  const boxes = shown.map((el) => el.getBoundingClientRect());
  const pins = [...document.querySelectorAll('.leaflet-marker-pane .pin')]
    .map((el) => el.getBoundingClientRect()).filter(inside);
  let pairs = 0;
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) if (touch(boxes[i], boxes[j])) pairs++;
  return {
    labels: all.length,
    shown: shown.map((el) => el.textContent),
    smallest: Math.min(...shown.map((el) => parseFloat(getComputedStyle(el).fontSize)), Infinity),
    pairs,
    onPins: boxes.filter((b) => pins.some((p) => touch(b, p))).length,
  };
}"""


FAR = re.compile(r"\bfar\b")


@pytest.fixture
def demo(live_url):
    call_command("seed_demo", stdout=io.StringIO())
    return Campus.objects.order_by("name")


def sign_in_as(page: Page, username: str) -> None:
    user = get_user_model().objects.get(username=username)
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_label("One-time code").fill(code_for(usable_device(user)))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def plan_drawn(page: Page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.leaflet-image-layer')].some((i) => i.complete && i.naturalWidth)"
    )


def to_district(page: Page) -> None:
    district = page.get_by_role("navigation", name="Where on the map").get_by_role(
        "button", name="District"
    )
    if district.count():
        district.click()


def open_floor(page: Page, floor: Floor) -> None:
    to_district(page)
    page.locator(".floors").get_by_role("button", name=floor.building.campus.name).click()
    page.locator(".floors").get_by_role("button", name=floor.building.name, exact=True).click()
    page.locator(".floors").get_by_role("button", name=floor.name, exact=True).click()
    expect(
        page.locator(".floors").get_by_role("button", name=floor.name, exact=True)
    ).to_have_attribute("aria-pressed", "true")
    plan_drawn(page)


def zoom_in(page: Page) -> None:
    page.locator(".leaflet-control-zoom-in").click()
    page.wait_for_function("() => !document.querySelector('.leaflet-zoom-anim')")
    page.wait_for_timeout(300)  # zoomend's redraw


def labels_readable(page: Page, where: str, problems: list[str]) -> set[str]:
    """The plan's shown labels here; what is wrong with them goes into `problems`."""
    found = page.evaluate(PLAN_LABELS)
    if found["smallest"] < 12 or found["pairs"] or found["onPins"]:
        problems.append(f"{where}: {found}")
    return set(found["shown"])


@BOTH
def test_room_names_are_drawn_readable_at_every_zoom_and_never_overlap(page, demo, shots):
    sign_in_as(page, "district-office")
    problems: list[str] = []
    floors = Floor.objects.filter(building__campus__in=demo).select_related("building__campus")
    for floor in floors.order_by("building__campus__name", "building__name", "level"):
        open_floor(page, floor)
        assert page.locator(".plan-label").count() == len(floor.labels) > 0
        seen = labels_readable(page, f"{floor} whole", problems)
        if floor.building.name == "Main Building" and floor.level == 1:
            shots("labels-whole")
        canvas = page.locator(".map-canvas")
        expect(canvas).to_have_class(FAR)  # the whole plan: camera cones faint
        for step in (1, 2):
            zoom_in(page)
            expect(canvas).not_to_have_class(FAR)  # zoomed in: cones in full
            seen |= labels_readable(page, f"{floor} +{step}", problems)
        if floor.building.name == "Main Building" and floor.level == 1:
            shots("labels-zoomed")
        # Zoomed in, the rooms' names come out (those under a pin wait for more zoom).
        rooms = {label["text"] for label in floor.labels if "width" in label}
        assert len(seen & rooms) >= len(rooms) / 2, f"{floor}: only {sorted(seen & rooms)}"
    for campus in demo:
        to_district(page)
        page.locator(".floors").get_by_role("button", name=campus.name).click()
        plan_drawn(page)
        labels_readable(page, f"{campus} site", problems)
    assert not problems, "labels too small or overlapping:\n" + "\n".join(problems)


@BOTH
def test_no_pin_hides_another_on_any_demo_floor_and_labels_stay_readable(page, demo, shots):
    sign_in_as(page, "district-office")
    crowded = []
    for campus in demo:
        to_district(page)
        page.locator(".floors").get_by_role("button", name=campus.name).click()
        plan_drawn(page)
        labels = page.evaluate(OVERLAPS, ".building-pin span")
        if labels["pairs"]:
            crowded.append(f"{campus.name} site plan: {labels}")
        shots(f"site-{campus.short_name or campus.id}")

    floors = Floor.objects.filter(building__campus__in=demo).select_related("building__campus")
    for floor in floors.order_by("building__campus__name", "building__name", "level"):
        open_floor(page, floor)
        found = page.evaluate(OVERLAPS, ".leaflet-marker-pane .pin")
        placed = floor.cameras.count() + floor.doors.count()
        assert found["pins"] >= min(placed, 1), f"{floor}: no pins drawn"
        if found["pairs"]:
            crowded.append(f"{floor.building} {floor.name}: {found}")
        assert page.evaluate(SMALLEST_TEXT) >= 12, f"{floor}: text under 12 px"
    shots("floor")

    assert not crowded, "pins or labels overlap:\n" + "\n".join(crowded)


@BOTH
def test_a_forced_door_is_on_top_and_its_pin_opens_its_sheet(page, demo, post_alarm, shots):
    door = Door.objects.filter(floor__isnull=False, floor__level=1).order_by("id").first()
    page.add_init_script(path=str(AXE))
    sign_in_as(page, "district-office")
    post_alarm(door, "door_forced")
    takeover_dismiss(page)  # the map beneath is what is tested here
    expect(page.locator("#badge-feed")).to_be_visible()
    open_floor(page, door.floor)

    pin = page.locator(".leaflet-marker-pane .door-forced")
    expect(pin).to_have_count(1)
    # Nothing is drawn over the centre of the alarmed door's pin.
    on_top = pin.evaluate(
        """(el) => { const r = el.getBoundingClientRect();
        const hit = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);
        return el === hit || el.contains(hit); }"""
    )
    assert on_top
    crumbs = page.get_by_role("navigation", name="Where on the map")
    whole = crumbs.evaluate(
        """(nav) => { const last = nav.lastElementChild;
        return last.scrollWidth <= last.clientWidth + 1
          && last.getBoundingClientRect().right <= nav.getBoundingClientRect().right + 1; }"""
    )
    assert whole, "the building's name is cut"
    page.locator("details.legend summary").click()
    expect(page.locator("details.legend")).to_contain_text("Door forced")
    shots("forced-door")
    assert not (found := violations(page)), summary(found)
    page.locator("details.legend summary").click()

    pin.click()
    sheet = page.get_by_role("dialog", name=f"Door {door.name}")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("Forced open")
    expect(sheet).to_contain_text(door.floor.name)
    expect(sheet.get_by_role("listitem").filter(has_text="Door forced")).to_have_count(1)
    shots("door-sheet")
    assert not (found := violations(page)), summary(found)
    sheet.get_by_role("button", name="Acknowledge").click()
    expect(sheet.get_by_role("button", name="Acknowledged")).to_be_disabled()
    assert door.events.get().acks.count() == 1


@BOTH
def test_map_from_an_alarm_shows_the_door_alone_and_flashing_on_a_crowded_floor(
    page, demo, post_alarm, shots
):
    # The high school's first floor: at 360 px its pins crowd into groups (see above).
    door = Door.objects.filter(
        floor__level=1, building__name="Main Building", building__campus__short_name="HS"
    ).order_by("id")[3]
    sign_in_as(page, "district-office")
    post_alarm(door, "door_forced")
    takeover_dismiss(page)  # the feed's way to the map, beneath the takeover's own
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Alarms").click()
    page.get_by_role("button", name="Show on map").first.click()

    pin = page.locator(f".leaflet-marker-pane .door-pin[title='{door.name} (forced)']")
    expect(pin).to_have_class(re.compile(r"\bflash\b"))
    expect(pin).not_to_have_class(re.compile(r"\bgroup-pin\b"))  # zoomed until it stands alone
    assert page.evaluate(OVERLAPS, ".leaflet-marker-pane .pin")["pairs"] == 0
    shots("show-door")
