"""No screen scrolls sideways at phone width (360 px) nor on the tablet: the page itself,
and each screen's own box, with the takeover, the live sheet and the sign-in included."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FITS = """() => {
  const page = document.documentElement;
  const screen = document.querySelector("section.screen:not([hidden])");
  return {
    page: page.scrollWidth, width: innerWidth,
    screen: screen ? screen.scrollWidth - screen.clientWidth : 0,
  };
}"""


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name=name).click()


def overflow(page: Page, name: str, found: dict) -> None:
    measured = page.evaluate(FITS)
    if measured["page"] > measured["width"] or measured["screen"] > 0:
        found[name] = measured


@pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)
def test_no_screen_is_wider_than_the_device(page, district, officer, post_alarm, shots):
    found: dict[str, dict] = {}
    page.goto("/")
    expect(page.get_by_label("Username")).to_be_visible()
    overflow(page, "sign-in", found)
    sign_in(page, officer)
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")
    overflow(page, "map-district", found)
    page.get_by_role("button", name="North Campus").click()
    overflow(page, "map-campus", found)
    page.get_by_role("button", name="Library", exact=True).click()
    expect(page.locator(".camera-pin[title='Library Lobby']")).to_be_visible()
    overflow(page, "map-floor", found)

    post_alarm(district["gym_exit"], "door_held")
    expect(page.get_by_role("alertdialog")).to_contain_text("Gym Exit")
    post_alarm(district["front_door"], "door_forced")
    expect(page.locator(".takeover-count")).to_have_text("1 of 2")
    overflow(page, "takeover", found)
    page.get_by_role("alertdialog").get_by_role("button", name="Watch").click()
    expect(page.get_by_role("dialog", name="Live: Library Lobby")).to_be_visible()
    overflow(page, "live-sheet", found)
    page.get_by_role("dialog").get_by_role("button", name="Close").click()
    while page.get_by_role("alertdialog").is_visible():
        page.get_by_role("alertdialog").get_by_role("button", name=re.compile("^Dismiss")).click()

    for screen in ("Alarms", "Incidents", "Notifications", "Map"):
        nav(page, screen)
        expect(page.get_by_role("region", name=screen)).to_be_visible()
        overflow(page, screen.lower(), found)
        shots(f"fits-{screen.lower()}")

    assert not found, found
