"""Live video in a real browser: a simulated camera transcoded by the Celery worker, played by
hls.js in Chromium, at the profile the user picks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from responder.core.models import AuditEntry
from tests.browser.conftest import sign_in
from tests.browser.test_pwa import AXE, summary, violations

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BOTH = pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)
# The first segments of a transcode take a while on a busy machine.
FIRST_SEGMENT = 45_000


class HeldSessions:
    """Holds the page's requests for a live session until `release()`, so a test sees the
    state the view is in while the server starts the transcode."""

    def __init__(self, page: Page) -> None:
        self.held: list[Route] = []
        self.profiles: list[str] = []
        self.holding = True
        page.route(re.compile(r"/api/v1/cameras/\d+/live$"), self.hold)

    def hold(self, route: Route) -> None:
        self.profiles.append(route.request.post_data_json["profile"])
        if self.holding:
            self.held.append(route)
        else:
            route.fallback()

    def release(self) -> None:
        self.holding = False
        for route in self.held:
            route.fallback()
        self.held.clear()


def wait_until(page: Page, ready) -> None:
    """Until `ready()` holds; Playwright's events (route handlers) run meanwhile."""
    for _ in range(150):
        if ready():
            return
        page.wait_for_timeout(100)
    raise AssertionError("gave up waiting")


def open_camera(page: Page, name: str) -> Locator:
    page.get_by_label("Find a camera or door").fill(name)
    page.get_by_role("button", name=f"Camera: {name}").click()
    page.locator(f".camera-pin[title='{name}']").click()
    dialog = page.get_by_role("dialog", name=f"Live: {name}")
    expect(dialog).to_be_visible()
    return dialog


def video_time(dialog: Locator) -> float:
    return dialog.locator("video").evaluate("(video) => video.currentTime")


def playing_on(dialog: Locator) -> None:
    """Live, and the picture moves: currentTime advances by more than a second."""
    state = dialog.get_by_role("status")
    expect(state).to_have_attribute("data-state", "live", timeout=FIRST_SEGMENT)
    expect(state).to_have_text("Live")
    start = video_time(dialog)
    dialog.page.wait_for_function(
        "(start) => document.querySelector('dialog video').currentTime > start + 1",
        arg=start,
        timeout=FIRST_SEGMENT,
    )
    assert video_time(dialog) > start + 1


def quality(dialog: Locator, name: str) -> Locator:
    return dialog.get_by_role("group", name="Quality").get_by_role("button", name=name)


@BOTH
def test_a_camera_opens_starts_and_plays_live(district, officer, signed_in, shots):
    page = signed_in
    sessions = HeldSessions(page)

    dialog = open_camera(page, "Library Lobby")

    state = dialog.get_by_role("status")
    expect(state).to_have_attribute("data-state", "starting")
    expect(state).to_have_text("Starting…")
    for name in ("Low", "Medium", "High"):
        expect(quality(dialog, name)).to_be_visible()
    shots("live-starting")

    sessions.release()
    playing_on(dialog)
    # Chromium plays these playlists through hls.js and Media Source, not natively.
    assert dialog.locator("video").evaluate("(video) => video.src").startswith("blob:")
    expect(dialog.locator(".behind")).to_have_text(re.compile(r"^\d+\.\d s behind live$"))
    shots("live-playing")
    # Everything fits the sheet: nothing to scroll sideways for at 360 px.
    assert dialog.evaluate("(sheet) => sheet.scrollWidth <= sheet.clientWidth")
    clipped = dialog.get_by_role("button").evaluate_all(
        "(buttons) => buttons.filter((b) => b.scrollWidth > b.clientWidth).map((b) => b.textContent)"
    )
    assert clipped == []
    pressed = dialog.get_by_role("group", name="Quality").locator("[aria-pressed=true]")
    expect(pressed).to_have_count(1)
    assert sessions.profiles == [pressed.inner_text().lower()]
    assert AuditEntry.objects.filter(
        action="video.live", user=officer, object_id=str(district["lobby"].pk)
    ).exists()


@BOTH
def test_the_picked_profile_is_played_and_remembered(district, signed_in, shots):
    page = signed_in
    sessions = HeldSessions(page)
    sessions.release()
    dialog = open_camera(page, "Library Lobby")
    playing_on(dialog)

    with page.expect_request(re.compile(r"/live/high/index\.m3u8")):
        quality(dialog, "High").click()

    expect(quality(dialog, "High")).to_have_attribute("aria-pressed", "true")
    for name in ("Low", "Medium"):
        expect(quality(dialog, name)).to_have_attribute("aria-pressed", "false")
    assert sessions.profiles[-1] == "high"
    playing_on(dialog)
    shots("live-high")

    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()
    dialog = open_camera(page, "Library Lobby")
    expect(quality(dialog, "High")).to_have_attribute("aria-pressed", "true")
    playing_on(dialog)
    assert sessions.profiles[-1] == "high"


def test_a_slow_link_starts_on_the_low_profile(district, signed_in):
    page = signed_in
    sessions = HeldSessions(page)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 400,
            "downloadThroughput": 50_000,
            "uploadThroughput": 20_000,
            "connectionType": "cellular3g",
        },
    )

    dialog = open_camera(page, "Library Lobby")

    expect(quality(dialog, "Low")).to_have_attribute("aria-pressed", "true")
    wait_until(page, lambda: sessions.profiles)
    assert sessions.profiles == ["low"]
    sessions.release()


@BOTH
def test_a_camera_that_does_not_answer_says_it_is_offline(district, signed_in, shots):
    page = signed_in
    page.context.errors.expect(r"status of 503 .*/api/v1/cameras/\d+/live\)$", why="no camera")
    # Camera notices go to sockets that are live (they are not replayed).
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")

    dialog = open_camera(page, "Gym Court East")  # its stream URL is a closed port

    state = dialog.get_by_role("status")
    expect(state).to_have_attribute("data-state", "offline", timeout=30_000)
    expect(state).to_have_text("Camera offline")
    expect(dialog).not_to_contain_text("rtsp://")  # stream URLs may carry credentials
    shots("live-offline")

    # The worker recorded the failure: the alarm socket tells everyone who may watch it.
    dialog.get_by_role("button", name="Close").click()
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Alarms").click()
    notices = page.get_by_role("list", name="Cameras offline")
    expect(notices).to_contain_text("Gym Court East is offline")
    expect(notices).not_to_contain_text("rtsp://")  # stream URLs may carry credentials
    shots("feed-camera-offline")
    notices.get_by_role("button", name="Dismiss: Gym Court East is offline").click()
    expect(notices).to_be_hidden()


def test_the_live_view_plays_on_across_new_playlist_tokens(district, signed_in):
    """A playlist token is never renewed by fetching: the PWA posts /live again before it
    ends and goes on playing with the new one. Here the answers say they end in 12 s."""
    page = signed_in
    issued: list[str] = []
    fetched: list[tuple[str, int]] = []

    def soon_ending(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        issued.append(_token(body["playlist"]))
        body["expires_at"] = (datetime.now(UTC) + timedelta(seconds=12)).isoformat()
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/api/v1/cameras/\d+/live$"), soon_ending)
    page.on(
        "response",
        lambda r: "index.m3u8" in r.url and fetched.append((_token(r.url), r.status)),
    )
    dialog = open_camera(page, "Library Lobby")
    playing_on(dialog)

    for _ in range(600):
        if len(issued) >= 3 and fetched[-1][0] == issued[-1]:
            break
        page.wait_for_timeout(100)
    playing_on(dialog)

    assert len(issued) >= 3
    assert [status for _, status in fetched if status != 200] == []
    # Every playlist fetch carried a token from POST /live, never a segment's.
    assert {token for token, _ in fetched} <= set(issued)
    assert len({token for token, _ in fetched}) >= 2


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


@pytest.mark.parametrize("viewport", ["phone", "phone-landscape", "tablet"], indirect=True)
def test_a_doors_cameras_play_side_by_side_at_the_low_profile(district, officer, page, shots):
    district["front_door"].cameras.add(district["stacks"])
    sign_in(page, officer)
    sessions = HeldSessions(page)
    sessions.release()  # only counted: every tile asks for the low profile
    page.get_by_label("Find a camera or door").fill("Library Front Door")
    page.get_by_role("button", name="Door: Library Front Door").click()
    page.locator(".door-pin[title='Library Front Door']").click()
    page.get_by_role("dialog", name="Door Library Front Door").get_by_role(
        "button", name="Watch side by side"
    ).click()

    grid = page.get_by_role("dialog", name="Cameras side by side")
    tiles = grid.locator(".grid-tile")
    expect(tiles).to_have_count(2)
    for tile in tiles.all():
        expect(tile.get_by_role("status")).to_have_attribute(
            "data-state", "live", timeout=FIRST_SEGMENT
        )
    start = [t.locator("video").evaluate("(v) => v.currentTime") for t in tiles.all()]
    page.wait_for_function(
        """(start) => [...document.querySelectorAll('.grid-tile video')]
          .every((v, i) => v.currentTime > start[i] + 1)""",
        arg=start,
        timeout=FIRST_SEGMENT,
    )
    assert sessions.profiles and set(sessions.profiles) == {"low"}
    box = grid.locator(".grid").bounding_box()
    assert box["width"] <= page.viewport_size["width"]
    first, second = (tile.bounding_box() for tile in tiles.all())
    if page.viewport_size["width"] > page.viewport_size["height"]:
        assert first["y"] == second["y"], "on its side, the pictures sit in one row"
    else:
        assert second["y"] >= first["y"] + first["height"], "upright, one above the other"
    shots("grid")

    tiles.first.get_by_role("button", name="Open Library Lobby alone").click()
    single = page.get_by_role("dialog", name="Live: Library Lobby")
    expect(single).to_be_visible()
    expect(grid).to_have_count(0)  # its sessions closed with it


def test_two_fingers_zoom_a_single_camera(district, signed_in):
    page = signed_in
    dialog = open_camera(page, "Library Lobby")
    box = dialog.locator(".video-box")
    area = box.bounding_box()
    x, y = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    # Real touches through Chromium's input pipeline (CDP), as a phone's screen sends them:
    # the page's own pinch zoom would take them unless the box claims the gesture.
    cdp = page.context.new_cdp_session(page)

    def fingers(kind: str, spread: float | None) -> None:
        points = [] if spread is None else [
            {"x": x - spread, "y": y, "id": 1}, {"x": x + spread, "y": y, "id": 2},
        ]  # fmt: skip
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    fingers("touchStart", 20)
    for spread in (30, 40, 50, 60):  # the fingers spread: three times as far apart
        fingers("touchMove", spread)
    fingers("touchEnd", None)
    expect(box).to_have_attribute("data-zoom", "3.00")
    assert "scale(3)" in dialog.locator("video").evaluate("(v) => v.style.transform")
    assert page.evaluate("() => visualViewport.scale") == 1, "the page itself did not zoom"
    shown = dialog.locator("video").bounding_box()
    assert shown["width"] == pytest.approx(3 * area["width"], rel=0.02)
    box.dblclick()
    expect(box).to_have_attribute("data-zoom", "1.00")


def fills(page: Page, locator: Locator, share: float = 0.9) -> None:
    """On screen whole, and as wide or as tall as the screen (`share` of it, at least)."""
    box = locator.bounding_box()
    screen = page.evaluate("() => ({ width: innerWidth, height: innerHeight })")
    inside = box["x"] >= -1 and box["y"] >= -1
    inside &= box["x"] + box["width"] <= screen["width"] + 1
    inside &= box["y"] + box["height"] <= screen["height"] + 1
    big = box["width"] >= share * screen["width"] or box["height"] >= share * screen["height"]
    assert inside and big, f"{box} on a screen of {screen}"


def full_screen_on(page: Page, dialog: Locator) -> None:
    dialog.get_by_role("button", name="Full screen").click()
    expect(dialog.get_by_role("button", name="Exit full screen")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert dialog.evaluate(
        "(d) => document.fullscreenElement === d || d.classList.contains('full')"
    )


PHONES = pytest.mark.parametrize("viewport", ["phone", "phone-landscape"], indirect=True)
# iPhone Safari has no full screen for elements: the sheet covers the viewport instead.
NO_FULLSCREEN_API = """
Object.defineProperty(Document.prototype, 'fullscreenEnabled', { get: () => false });
delete Element.prototype.requestFullscreen;
"""


@PHONES
@pytest.mark.parametrize("fullscreen", ["browser", "viewport"])
def test_an_alarms_four_cameras_and_one_go_full_screen_and_fill_a_phone_either_way_up(
    district, officer, page, post_alarm, fullscreen, shots
):
    front = district["front_door"]
    front.cameras.add(district["stacks"], district["court_east"], district["annex_hall"])
    if fullscreen == "viewport":
        page.add_init_script(NO_FULLSCREEN_API)
    page.add_init_script(path=str(AXE))
    sign_in(page, officer)
    HeldSessions(page)  # the layout is tested here, not the transcodes (see above)
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")
    post_alarm(front, "door_forced")
    page.get_by_role("alertdialog").get_by_role("button", name="Watch").click()

    grid = page.get_by_role("dialog", name="Live: 4 cameras")
    tiles = grid.locator(".grid-tile")
    expect(tiles).to_have_count(4)
    boxes = [tile.bounding_box() for tile in tiles.all()]
    assert len({round(b["x"]) for b in boxes}) == 2 and len({round(b["y"]) for b in boxes}) == 2
    fills(page, grid.locator(".grid"), 0.85)  # 2 × 2, on screen whole
    full_screen_on(page, grid)
    fills(page, grid.locator(".grid"), 0.85)
    shots(f"grid-full-{fullscreen}")
    assert not (found := violations(page)), summary(found)
    grid.get_by_role("button", name="Exit full screen").click()
    expect(grid.get_by_role("button", name="Full screen")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert not page.evaluate("() => document.fullscreenElement")

    tiles.first.get_by_role("button", name="Open Library Lobby alone").click()
    single = page.get_by_role("dialog", name="Live: Library Lobby")
    expect(single).to_be_visible()
    video = single.locator(".video-box")
    if page.viewport_size["width"] > page.viewport_size["height"]:
        # On its side: the picture as tall as the screen, the controls beside it.
        fills(page, video, 0.85)
        expect(single.get_by_role("button", name="Close")).to_be_in_viewport()
        expect(single.get_by_role("group", name="Quality")).to_be_in_viewport()
    full_screen_on(page, single)
    fills(page, video, 0.95)
    shots(f"single-full-{fullscreen}")
    assert not (found := violations(page)), summary(found)
    single.get_by_role("button", name="Close").click()
    expect(single).to_have_count(0)
    assert not page.evaluate("() => document.fullscreenElement")
