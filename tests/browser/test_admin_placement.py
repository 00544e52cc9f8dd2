"""District IT places cameras and doors in the admin: pick a row, drag its pin on the plan."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import plan
from tests.factories import PASSWORD, CameraFactory, DoorFactory, FloorFactory, UserFactory
from tests.signin_helpers import code_for, usable_device

CHOSEN = re.compile(r"\bplan-placement__chosen\b")
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def admin_sign_in(page: Page) -> None:
    it = UserFactory(username="it-admin", is_staff=True, is_superuser=True)
    page.goto("/admin/login/")
    page.get_by_label("Username").fill(it.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(code_for(usable_device(it)))
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()


@pytest.mark.parametrize("viewport", ["tablet"], indirect=True)
def test_a_picked_rows_pin_drags_to_its_new_place_and_saves(page, context, shots):
    context.errors.expect(r"favicon\.ico", why="Django's admin pages name no icon")
    floor = FloorFactory(name="Ground", plan=plan("Ground"))
    camera = CameraFactory(building=floor.building, floor=floor, name="Lobby", x=100, y=100)
    door = DoorFactory(building=floor.building, floor=floor, name="Front Door", x=800, y=400)
    admin_sign_in(page)
    page.goto(f"/admin/maps/floor/{floor.pk}/change/")

    door_row = page.locator("tr", has=page.locator("input[name='doors-0-x']"))
    door_row.locator("td.field-name").click()  # the name, not an input: the row is picked
    expect(door_row).to_have_class(CHOSEN, timeout=5_000)

    overlay = page.locator(".plan-placement__overlay")
    box = overlay.bounding_box()
    scale = box["width"] / floor.plan_width
    start = (box["x"] + 100 * scale, box["y"] + 100 * scale)  # the camera's pin
    end = (box["x"] + 500 * scale, box["y"] + 300 * scale)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 10, start[1] + 10)
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    shots("dragged")

    camera_row = page.locator("tr", has=page.locator("input[name='cameras-0-x']"))
    expect(camera_row).to_have_class(CHOSEN)  # the dragged pin's row
    x = float(page.locator("input[name='cameras-0-x']").input_value())
    y = float(page.locator("input[name='cameras-0-y']").input_value())
    assert abs(x - 500) < 5 and abs(y - 300) < 5
    assert page.locator("input[name='doors-0-x']").input_value() == "800.0"

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("changed successfully")
    camera.refresh_from_db()
    door.refresh_from_db()
    assert abs(camera.x - 500) < 5 and abs(camera.y - 300) < 5
    assert (door.x, door.y) == (800, 400)
