"""The alarm takeover in a real browser: an alarm covers any screen, Watch plays the door's
camera in one tap, Map shows the door, Acknowledge answers it (audited); several stack."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from accesslog.models import EventAck
from responder.core.models import AuditEntry
from tests.browser.conftest import VIEWPORTS, sign_in, watched

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BOTH = pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)
BUZZES = "window.buzzes = []; navigator.vibrate = (pattern) => window.buzzes.push(pattern) > 0;"
# The live sheet's video has played on from where it first showed a frame.
ADVANCING = """() => {
  const video = document.querySelector("dialog.sheet video");
  if (!video || !(video.currentTime > 0)) return false;
  window.firstFrameAt ??= video.currentTime;
  return video.currentTime > window.firstFrameAt;
}"""


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name=name).click()


def takeover(page: Page):
    return page.get_by_role("alertdialog")


def card(page: Page, alarm: dict):
    return page.locator(f"li.event[data-event-id='{alarm['id']}']")


def live(page: Page) -> None:
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")


def alarm_to_video(page: Page, post) -> float:
    """Seconds from the alarm's POST to its camera's video advancing, with the one tap an
    officer makes (Watch on the takeover) scripted."""
    page.evaluate("() => { window.firstFrameAt = undefined; }")
    started = time.monotonic()
    post()
    takeover(page).get_by_role("button", name="Watch").click()
    page.wait_for_function(ADVANCING, polling=50, timeout=30_000)
    return time.monotonic() - started


@BOTH
def test_an_alarm_takes_over_any_screen_and_watch_plays_the_doors_camera_in_one_tap(
    page, district, officer, post_alarm, shots, viewport, record_property, capsys
):
    page.add_init_script(BUZZES)
    sign_in(page, officer)
    # The low profile (150 kbit/s), as a phone on a weak link plays it (live.js's choice).
    page.evaluate("() => sessionStorage.setItem('responder.profile', 'low')")
    nav(page, "Notifications")  # any screen but the feed
    live(page)

    door = district["front_door"]
    alarm = {}
    cold = alarm_to_video(page, lambda: alarm.update(post_alarm(door, "door_forced")))

    banner = takeover(page)
    expect(banner).to_contain_text("Door forced: Library Front Door")
    expect(banner).to_contain_text("North Campus › Library › Library Ground")
    sheet = page.get_by_role("dialog", name="Live: Library Lobby")
    expect(sheet.get_by_role("button", name="Low")).to_have_attribute("aria-pressed", "true")
    shots("watch-from-takeover")
    # It rings again while nobody answers (the first buzz at once, the next a while later).
    page.wait_for_function("() => window.buzzes.length >= 2", timeout=20_000)
    page.get_by_role("dialog", name="Live: Library Lobby").get_by_role(
        "button", name="Close"
    ).click()

    expect(banner).to_be_visible()  # the video closed, the alarm still waits for an answer
    shots("takeover")
    banner.get_by_role("button", name="Acknowledge").click()
    expect(banner).to_be_hidden()
    expect(card(page, alarm)).to_contain_text("Acknowledged by Dana Reyes at")
    assert EventAck.objects.filter(event_id=alarm["id"], user=officer).exists()
    ack = AuditEntry.objects.get(action="event.acknowledged", object_id=str(alarm["id"]))
    assert ack.user == officer
    rung = page.evaluate("window.buzzes.length")

    warm = alarm_to_video(page, lambda: post_alarm(door, "door_forced"))
    record_property("alarm_to_video_first_use_s", round(cold, 2))
    record_property("alarm_to_video_warm_s", round(warm, 2))
    with capsys.disabled():  # reported, never asserted: the machine is shared and noisy
        print(  # noqa: T201
            f"\nalarm POST -> video currentTime advancing, 1 tap (Watch), low profile, "
            f"{viewport}: first use {cold:.2f} s, warm {warm:.2f} s"
        )
    assert rung >= 2
    assert page.errors == []


@BOTH
def test_map_on_the_takeover_shows_the_door_highlighted(
    page, district, officer, post_alarm, shots
):
    sign_in(page, officer)
    nav(page, "Incidents")
    live(page)
    post_alarm(district["gym_exit"], "door_held")

    banner = takeover(page)
    expect(banner).to_contain_text("Door held open: Gym Exit")
    expect(banner).to_contain_text("Warning")
    banner.get_by_role("button", name="Map").click()

    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("Gym")
    pin = page.locator(".door-pin.flash")
    expect(pin).to_have_attribute("title", re.compile("^Gym Exit"))
    expect(pin).to_have_class(re.compile(r"\bdoor-held\b"))
    # Map does not answer the alarm: the banner stays until acknowledged or dismissed.
    expect(banner).to_be_visible()
    banner.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(banner).to_be_hidden()
    shots("map-from-takeover")


@BOTH
def test_several_alarms_stack_with_a_count_and_leave_one_by_one(
    page, district, officer, post_alarm, shots
):
    sign_in(page, officer)
    live(page)
    first = post_alarm(district["front_door"], "door_forced")
    expect(takeover(page)).to_contain_text("Library Front Door")
    second = post_alarm(district["gym_exit"], "door_forced")

    banner = takeover(page)
    expect(banner).to_contain_text("Gym Exit")  # the newest on top
    expect(banner.locator(".takeover-count")).to_have_text("1 of 2")
    shots("takeover-stacked")
    banner.get_by_role("button", name="Acknowledge").click()
    expect(banner).to_contain_text("Library Front Door")
    expect(banner.locator(".takeover-count")).to_have_count(0)
    banner.get_by_role("button", name=re.compile("^Dismiss")).click()
    expect(banner).to_be_hidden()
    expect(card(page, second)).to_contain_text("Acknowledged by Dana Reyes at")

    # Dismissed is not acknowledged: the card still waits in the feed.
    assert EventAck.objects.filter(event_id=second["id"]).exists()
    assert not EventAck.objects.filter(event_id=first["id"]).exists()
    nav(page, "Alarms")
    expect(card(page, first).get_by_role("button", name="Acknowledge")).to_be_enabled()


def test_an_info_event_does_not_take_over(page, district, officer, post_alarm):
    sign_in(page, officer)
    live(page)
    granted = post_alarm(district["front_door"], "access_granted")
    forced = post_alarm(district["back_door"], "door_forced")
    expect(takeover(page)).to_contain_text("Library Back Door")
    expect(takeover(page).locator(".takeover-count")).to_have_count(0)
    takeover(page).get_by_role("button", name=re.compile("^Dismiss")).click()
    nav(page, "Alarms")
    expect(page.locator(f"li[data-event-id='{forced['id']}']")).to_be_attached()
    expect(page.locator(f"li[data-event-id='{granted['id']}']")).to_be_attached()


@pytest.mark.parametrize("size", ["phone", "tablet"])
def test_the_takeover_keeps_still_when_the_user_asked_for_reduced_motion(
    browser, live_url, district, officer, post_alarm, size
):
    for motion, still in [("reduce", True), ("no-preference", False)]:
        context = watched(
            browser.new_context(base_url=live_url, reduced_motion=motion, **VIEWPORTS[size])
        )
        try:
            page = context.new_page()
            sign_in(page, officer)
            live(page)
            post_alarm(district["front_door"], "door_forced")
            card = takeover(page).locator(".takeover-card")
            expect(card).to_be_visible()
            names = card.evaluate("(card) => getComputedStyle(card).animationName")
            assert (names == "none") is still, (motion, names)
            context.errors.check()
        finally:
            context.close()
