"""Recorded playback in a real browser: recordings of a burned-in clock (made with PyAV, as
the recorder leaves them), opened from an alarm card, played by hls.js in Chromium through
the real video worker (low) and as recorded (original); the player's wall clock, read from
EXT-X-PROGRAM-DATE-TIME, matches the clock in the picture."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import Locator, Page, expect

from accesslog.models import Event
from responder.core.models import AuditEntry
from tests.browser.conftest import sign_in, takeover_dismiss
from tests.browser.test_pwa import AXE, summary, violations
from tests.factories import GrantFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIRST_SEGMENT = 45_000
# The clock blocks of tests/recording/playback_helpers.py, read from the <video> by a canvas.
READ_CLOCK = """(video) => {
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext("2d");
  g.drawImage(video, 0, 0, 320, 240);
  let tenths = 0;
  for (let bit = 0; bit < 40; bit++) {
    const x = (bit % 20) * 16 + 8, y = 200 + Math.floor(bit / 20) * 16 + 8;
    const d = g.getImageData(x - 2, y - 2, 5, 5).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
    tenths = tenths * 2 + (sum / 25 > 128 ? 1 : 0);
  }
  return tenths / 10;
}"""


def playing(dialog: Locator) -> None:
    clock = dialog.get_by_role("status")
    expect(clock).to_have_attribute("data-state", "playing", timeout=FIRST_SEGMENT)
    start = dialog.locator("video").evaluate("(video) => video.currentTime")
    dialog.page.wait_for_function(
        "(start) => document.querySelector('dialog video').currentTime > start + 1",
        arg=start,
        timeout=FIRST_SEGMENT,
    )


def clocks_agree(dialog: Locator) -> None:
    """Paused, the wall clock the view shows (from the playlist) is the picture's own."""
    dialog.get_by_role("button", name="Pause").click()
    dialog.page.wait_for_timeout(700)  # the view's clock ticks every 0.5 s
    shown = dt.datetime.fromisoformat(
        dialog.get_by_role("status").get_attribute("data-at").replace("Z", "+00:00")
    )
    burned = dialog.locator("video").evaluate(READ_CLOCK)
    assert abs(shown.timestamp() - burned) < 1, (shown, burned)
    dialog.get_by_role("button", name="Play").click()


def test_what_happened_plays_the_alarms_recording_at_its_wall_clock(
    page: Page, district, officer, recorded, post_alarm, shots
):
    GrantFactory(user=officer, capabilities=["recorded"])
    page.add_init_script(path=str(AXE))  # at every load, and past the page's CSP
    sign_in(page, officer)
    # Inside the recording, so the alarm's marker seeks to footage.
    at = recorded + dt.timedelta(seconds=45)
    alarm = post_alarm(
        district["front_door"], "door_forced", occurred_at=f"{at:%Y-%m-%dT%H:%M:%SZ}"
    )
    takeover_dismiss(page)  # then What happened from the alarm's card
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Alarms").click()
    card = page.locator(f"li[data-event-id='{alarm['id']}']")

    with page.expect_request(re.compile(r"/cameras/\d+/playback$")) as asked:
        card.get_by_role("button", name="What happened").click()

    dialog = page.get_by_role("dialog", name="Recordings: Library Front Door")
    occurred = Event.objects.get(pk=alarm["id"]).occurred_at
    body = asked.value.post_data_json
    assert body["profile"] == "low"
    asked_start = dt.datetime.fromisoformat(body["start"].replace("Z", "+00:00"))
    assert asked_start == occurred - dt.timedelta(seconds=30)
    playing(dialog)
    assert dialog.locator("video").evaluate("(video) => video.src").startswith("blob:")
    clocks_agree(dialog)
    shots("playback-low")
    assert dialog.evaluate("(sheet) => sheet.scrollWidth <= sheet.clientWidth")  # 360 px

    # The recording as recorded: byte ranges of the recorder's files.
    with page.expect_request(re.compile(r"/recorded/source@\d+/index\.m3u8")):
        dialog.get_by_label("Quality").select_option("source")
    playing(dialog)
    clocks_agree(dialog)

    # The timeline: the alarm's marker seeks there; the keyboard steps back 10 s.
    marker = dialog.get_by_role("button", name=re.compile(r"^Door forced at"))
    with page.expect_request(re.compile(r"/cameras/\d+/playback$")) as seek:
        marker.click()
    assert seek.value.post_data_json["start"].startswith(
        f"{occurred.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}"
    )
    timeline = dialog.get_by_role("slider", name="Position in the recordings")
    timeline.focus()
    with page.expect_request(re.compile(r"/cameras/\d+/playback$")) as back:
        page.keyboard.press("ArrowLeft")
    assert back.value.post_data_json["profile"] == "source"
    shots("playback-timeline")
    found = violations(page)
    assert not found, summary(found)
    assert (
        AuditEntry.objects.filter(
            action="video.recorded", user=officer, object_id=str(district["lobby"].pk)
        ).count()
        >= 3
    )
