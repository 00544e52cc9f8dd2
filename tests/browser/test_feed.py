"""The alarm feed in a real browser: alarms arrive live, survive a cut link, are acknowledged."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, Route, WebSocketRoute, expect

from accesslog.models import EventAck
from tests.browser.conftest import FEED_SOCKET, VIEWPORTS, dismiss_all, sign_in, takeover_dismiss
from tests.factories import GrantFactory, UserFactory
from tests.signin_helpers import usable_device

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BOTH = pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)


class Link:
    """The page's alarm socket, passed through to daphne until the test cuts it; cut, it
    closes as a dropped link does and every reconnect is refused until `restore()`.

    The events API (the feed's stand-in while the socket is down) is refused throughout, so
    every event the page shows came over the socket; with `rest=True` it answers while the
    link is up. Route handlers run when Playwright next dispatches, not when the page asks:
    a REST poll sent during the cut could otherwise be answered after `restore()`.
    """

    def __init__(self, page: Page, *, rest: bool = False) -> None:
        self.up = True
        self.rest_up = rest
        self.open: list[WebSocketRoute] = []
        self.sent: list[dict] = []  # what the page said to the server, in order
        self.refused = 0
        page.route_web_socket(FEED_SOCKET, self.connect)
        page.route("**/api/v1/events/**", self.rest)
        page.context.errors.expect(
            r"net::ERR_INTERNET_DISCONNECTED \(http://[^/]+/api/v1/events/",
            why="the link refuses the events API while cut",
        )

    def connect(self, ws: WebSocketRoute) -> None:
        if not self.up:
            self.refused += 1
            ws.close(code=1011, reason="no network")
            return
        server = ws.connect_to_server()
        ws.on_message(lambda message: self.forward(server, message))
        self.open.append(ws)

    def forward(self, server: WebSocketRoute, message: str | bytes) -> None:
        self.sent.append(json.loads(message))
        server.send(message)

    def rest(self, route: Route) -> None:
        if self.up and self.rest_up:
            route.continue_()
        else:
            route.abort("internetdisconnected")

    def cut(self) -> None:
        self.up = False
        for ws in self.open:
            ws.close(code=1011, reason="link lost")
        self.open.clear()

    def wait_for_refusal(self, page: Page) -> None:
        """Until the page has tried to reconnect at least once and was refused."""
        for _ in range(150):
            if self.refused:
                return
            page.wait_for_timeout(100)  # Playwright's events (the routes) run meanwhile
        raise AssertionError("the page never tried to reconnect")

    def restore(self) -> None:
        self.up = True


def fits_the_screen(page: Page) -> bool:
    """Nothing on the shown screen needs scrolling sideways (360 px phones included)."""
    return page.locator("section.screen:not([hidden])").evaluate(
        "(screen) => screen.scrollWidth <= screen.clientWidth"
    )


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name=name).click()


def feed(page: Page):
    return page.get_by_role("list", name="Alarm feed")


def feed_state(page: Page):
    return page.locator(".feed-status")


def item(page: Page, alarm: dict):
    return feed(page).locator(f"li[data-event-id='{alarm['id']}']")


def open_floor(page: Page, campus: str, building: str) -> None:
    nav(page, "Map")
    page.get_by_role("button", name=campus).click()
    page.get_by_role("button", name=building, exact=True).click()
    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text(building)


def shown_event_ids(page: Page) -> list[str]:
    ids = "(items) => items.map((item) => item.dataset.eventId)"
    return feed(page).locator("li.event").evaluate_all(ids)


@BOTH
def test_an_alarm_reaches_the_feed_and_the_door_pin_at_once(
    page, district, officer, post_alarm, shots
):
    # Headless Chromium has no motor: the page's vibrations are counted instead.
    page.add_init_script(
        "window.buzzes = []; navigator.vibrate = (pattern) => window.buzzes.push(pattern) > 0;"
    )
    sign_in(page, officer)
    open_floor(page, "North Campus", "Library")
    front = page.locator(".door-pin[title^='Library Front Door']")
    expect(front).to_have_class(re.compile(r"\bdoor-normal\b"))
    expect(feed_state(page)).to_have_attribute("data-state", "live")

    alarm = post_alarm(district["front_door"], "door_forced")

    expect(front).to_have_class(re.compile(r"\bdoor-forced\b"))
    expect(front).to_have_text("⚠")
    expect(page.locator(".door-pin[title='Library Back Door']")).to_have_class(
        re.compile(r"\bdoor-normal\b")
    )
    badge = page.locator("#badge-feed")
    expect(badge).to_have_text("1")
    page.wait_for_function("() => window.buzzes.length >= 1")
    shots("map-door-forced")
    dismiss_all(page)

    nav(page, "Alarms")
    expect(item(page, alarm)).to_contain_text("Door forced")
    expect(item(page, alarm)).to_contain_text("Library Front Door")
    expect(item(page, alarm).locator(".location")).to_have_text(
        "North Campus › Library › Library Ground"
    )
    expect(item(page, alarm).locator(".severity")).to_have_text(re.compile("Alarm"))
    expect(item(page, alarm)).to_have_class(re.compile(r"\bseverity-alarm\b"))
    shots("feed-alarm")
    assert fits_the_screen(page)

    later = post_alarm(district["gym_exit"], "door_held")
    expect(feed(page).locator("li.event").first).to_have_attribute(
        "data-event-id", str(later["id"])
    )
    expect(item(page, later)).to_contain_text("Door held open")
    expect(item(page, later).locator(".location")).to_have_text("North Campus › Gym › Gym Court")
    assert shown_event_ids(page) == [str(later["id"]), str(alarm["id"])]
    # A held door is a warning: it takes over too (and rings its own, lower tones).
    expect(page.get_by_role("alertdialog")).to_contain_text("Door held open: Gym Exit")


@BOTH
def test_after_a_cut_link_the_feed_resumes_and_shows_what_it_missed_once(
    page, district, officer, post_alarm, shots
):
    link = Link(page)
    sign_in(page, officer)
    nav(page, "Alarms")
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    before = post_alarm(district["front_door"], "door_forced")
    expect(item(page, before)).to_be_attached()
    takeover_dismiss(page)

    link.cut()
    expect(feed_state(page)).to_have_attribute("data-state", re.compile("reconnecting|polling"))
    expect(feed_state(page)).to_have_text(re.compile(r"(Reconnecting…|No live link).* Last heard"))
    missed = post_alarm(district["gym_exit"], "door_held")
    shots("feed-link-lost")
    link.wait_for_refusal(page)
    link.restore()

    # The next try comes after the backoff, up to 1.5 times it (frontend/src/link.js).
    expect(feed_state(page)).to_have_attribute("data-state", "live", timeout=30_000)
    expect(item(page, missed)).to_contain_text("Door held open")
    expect(item(page, missed)).to_contain_text("Missed while offline")
    expect(item(page, before)).not_to_contain_text("Missed while offline")
    expect(
        page.get_by_role("region", name="Alarms").get_by_role("status").filter(has_text="Back")
    ).to_have_text("Back online: 1 event came in while the link was down.")
    resumes = [m for m in link.sent if m.get("type") == "resume"]
    assert resumes and resumes[-1]["after"] == before["seq"]
    # The replayed alarm nobody answered takes over once what was acknowledged is known.
    expect(page.get_by_role("alertdialog")).to_contain_text("Door held open: Gym Exit")
    dismiss_all(page)
    shots("feed-resumed")
    assert fits_the_screen(page)
    item(page, missed).get_by_role("button", name="Show on map").click()
    pin = page.locator(".door-pin.flash")
    expect(pin).to_have_attribute("title", re.compile("^Gym Exit"))
    expect(pin).to_have_class(re.compile(r"\bdoor-held\b"))
    nav(page, "Alarms")

    after = post_alarm(district["back_door"], "door_forced")
    expect(item(page, after)).to_be_attached()
    takeover_dismiss(page)
    expect(item(page, after)).not_to_contain_text("Missed while offline")
    assert shown_event_ids(page) == [str(after["id"]), str(missed["id"]), str(before["id"])]

    page.reload()
    nav(page, "Alarms")
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    expect(feed(page).locator("li.event")).to_have_count(3)
    assert shown_event_ids(page) == [str(after["id"]), str(missed["id"]), str(before["id"])]


@BOTH
def test_an_alarm_is_shown_on_the_map_acknowledged_and_its_camera_opened(
    district, officer, signed_in, post_alarm, shots
):
    page = signed_in
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    alarm = post_alarm(district["front_door"], "door_forced")
    expect(page.get_by_role("alertdialog")).to_be_visible()
    dismiss_all(page)
    nav(page, "Alarms")
    entry = item(page, alarm)
    expect(entry.get_by_role("button", name="Acknowledge")).to_be_enabled()

    entry.get_by_role("button", name="Show on map").click()
    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("Library")
    pin = page.locator(".door-pin.flash")
    expect(pin).to_have_count(1)
    expect(pin).to_have_attribute("title", re.compile("^Library Front Door"))
    expect(pin).to_have_class(re.compile(r"\bdoor-forced\b"))
    shots("map-door-flashing")

    nav(page, "Alarms")
    entry.get_by_role("button", name="Acknowledge").click()
    expect(entry.get_by_role("button", name="Acknowledged")).to_be_disabled()
    expect(entry).to_contain_text("Acknowledged by Dana Reyes at")
    expect(entry).to_have_class(re.compile(r"\backed\b"))
    expect(page.locator("#badge-feed")).to_be_hidden()
    assert EventAck.objects.filter(event_id=alarm["id"], user=officer).exists()
    shots("feed-acknowledged")

    entry.get_by_role("group", name="Nearest cameras").get_by_role(
        "button", name="Camera Library Lobby"
    ).click()
    dialog = page.get_by_role("dialog", name="Live: Library Lobby")
    expect(dialog.get_by_role("heading", name="Library Lobby")).to_be_visible()
    expect(dialog.get_by_role("status")).to_have_text(re.compile("Starting|Live"))
    expect(dialog.locator("video")).to_be_visible()
    shots("live-from-alarm")


@pytest.fixture
def colleague():
    """A second officer with alarms over the whole district, on a tablet of their own."""
    user = UserFactory(username="colleague", first_name="Kim", last_name="Lee")
    usable_device(user)
    GrantFactory(user=user, capabilities=["alarms"])
    return user


@pytest.mark.parametrize("viewport", ["tablet"], indirect=True)
def test_an_alarm_acknowledged_while_the_link_was_down_shows_acknowledged_once_back(
    page, browser, live_url, district, officer, colleague, post_alarm, shots
):
    # Acknowledgements are notices, not replayed on resume: the feed asks REST once back.
    page.add_init_script(
        "window.buzzes = []; navigator.vibrate = (pattern) => window.buzzes.push(pattern) > 0;"
    )
    link = Link(page, rest=True)
    sign_in(page, officer)
    open_floor(page, "North Campus", "Library")
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    other = browser.new_context(base_url=live_url, **VIEWPORTS["tablet"])
    try:
        theirs = other.new_page()
        sign_in(theirs, colleague)
        nav(theirs, "Alarms")
        expect(feed_state(theirs)).to_have_attribute("data-state", "live")

        alarm = post_alarm(district["front_door"], "door_forced")
        front = page.locator(".door-pin[title^='Library Front Door']")
        expect(front).to_have_class(re.compile(r"\bdoor-forced\b"))
        expect(page.locator("#badge-feed")).to_have_text("1")
        page.wait_for_function("() => window.buzzes.length === 1")
        dismiss_all(page)  # no more rings for it: what follows counts only new ones
        expect(item(theirs, alarm).get_by_role("button", name="Acknowledge")).to_be_enabled()
        page.wait_for_timeout(2100)  # alarms within 2 s ring once: a later ring is its own

        link.cut()
        expect(feed_state(page)).to_have_attribute(
            "data-state", re.compile("reconnecting|polling")
        )
        # One known before the cut, one the page only gets replayed: both acknowledged now.
        missed = post_alarm(district["back_door"], "door_forced")
        expect(theirs.get_by_role("alertdialog").locator(".takeover-count")).to_have_text("1 of 2")
        for event in (missed, alarm):  # from the takeover, newest first
            theirs.get_by_role("alertdialog").get_by_role("button", name="Acknowledge").click()
            expect(item(theirs, event)).to_contain_text("Acknowledged by Kim Lee at")
    finally:
        other.close()
    link.wait_for_refusal(page)
    link.restore()

    # The next try comes after the backoff, up to 1.5 times it (frontend/src/link.js).
    expect(feed_state(page)).to_have_attribute("data-state", "live", timeout=30_000)
    expect(front).to_have_class(re.compile(r"\bdoor-normal\b"))
    back = page.locator(".door-pin[title^='Library Back Door']")
    expect(back).to_have_class(re.compile(r"\bdoor-normal\b"))
    expect(page.locator("#badge-feed")).to_be_hidden()
    nav(page, "Alarms")
    for event in (alarm, missed):
        expect(item(page, event)).to_contain_text("Acknowledged by Kim Lee at")
        expect(item(page, event).get_by_role("button", name="Acknowledged")).to_be_disabled()
    expect(item(page, alarm)).not_to_contain_text("Missed while offline")
    expect(item(page, missed)).to_contain_text("Missed while offline")
    shots("feed-acknowledged-while-away")
    # Neither the old alarm nor the replayed one, acknowledged meanwhile, rings; and the page
    # was never reloaded (the count would start again from 0).
    assert page.evaluate("window.buzzes.length") == 1

    # A replayed alarm nobody acknowledged rings, once what was acknowledged is known.
    link.cut()
    expect(feed_state(page)).to_have_attribute("data-state", re.compile("reconnecting|polling"))
    unanswered = post_alarm(district["gym_exit"], "door_forced")
    link.wait_for_refusal(page)
    link.restore()
    expect(item(page, unanswered)).to_contain_text("Missed while offline")
    page.wait_for_function("() => window.buzzes.length >= 2")
    expect(page.get_by_role("alertdialog")).to_contain_text("Door forced: Gym Exit")
    assert page.errors == []


@BOTH
def test_info_events_wait_behind_a_switch_and_carry_no_acknowledge_button(
    page, district, officer, post_alarm, shots
):
    sign_in(page, officer)
    nav(page, "Alarms")
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    granted = post_alarm(district["front_door"], "access_granted")
    forced = post_alarm(district["back_door"], "door_forced")
    expect(page.get_by_role("alertdialog")).to_contain_text("Library Back Door")
    dismiss_all(page)

    expect(item(page, forced)).to_be_visible()
    expect(item(page, granted)).to_be_hidden()
    switch = page.get_by_role("checkbox", name=re.compile(r"^Show info events \(1\)"))
    expect(switch).not_to_be_checked()
    shots("feed-alarms-only")
    switch.check()
    expect(item(page, granted)).to_be_visible()
    expect(item(page, granted)).to_contain_text("Access granted")
    expect(item(page, granted).get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(item(page, forced).get_by_role("button", name="Acknowledge")).to_be_enabled()
    shots("feed-with-info")

    page.reload()  # the choice is remembered on the device
    nav(page, "Alarms")
    expect(item(page, granted)).to_be_visible()


@BOTH
def test_offline_shows_at_once_and_an_acknowledgement_waits_on_its_own_card(
    page, context, district, officer, post_alarm, shots
):
    context.errors.expect(r"ERR_INTERNET_DISCONNECTED", why="the test takes the device offline")
    sign_in(page, officer)
    nav(page, "Alarms")
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    alarm = post_alarm(district["front_door"], "door_forced")
    expect(item(page, alarm)).to_be_attached()
    takeover_dismiss(page)

    context.set_offline(True)
    # The browser said so: no waiting for a ping to go unanswered.
    expect(feed_state(page)).to_have_attribute("data-state", "offline", timeout=2_000)
    expect(feed_state(page)).to_contain_text("Offline")
    item(page, alarm).get_by_role("button", name="Acknowledge").click()
    queued = item(page, alarm).get_by_role("status")
    expect(queued).to_have_text(re.compile("^Acknowledgement not sent yet: no connection"))
    expect(item(page, alarm).get_by_role("button", name="Queued")).to_be_disabled()
    expect(item(page, alarm)).to_have_class(re.compile(r"\bqueued\b"))
    shots("feed-ack-queued")
    assert not EventAck.objects.filter(event_id=alarm["id"]).exists()

    context.set_offline(False)
    expect(feed_state(page)).to_have_attribute("data-state", "live")
    expect(item(page, alarm)).to_contain_text("Acknowledged by Dana Reyes at")
    expect(item(page, alarm)).not_to_have_class(re.compile(r"\bqueued\b"))
    assert EventAck.objects.filter(event_id=alarm["id"], user=officer).exists()


class MuteLink:
    """The alarm socket passed through until `mute()`: then the server's frames (pongs
    included) stop reaching the page, as on a link that died without a close, and new
    connections are refused."""

    def __init__(self, page: Page) -> None:
        self.muted = False
        page.route_web_socket(FEED_SOCKET, self.connect)
        page.route("**/api/v1/events/**", self.rest)
        page.context.errors.expect(
            r"net::ERR_INTERNET_DISCONNECTED \(http://[^/]+/api/v1/events/",
            why="the muted link refuses the events API",
        )

    def connect(self, ws: WebSocketRoute) -> None:
        if self.muted:
            ws.close(code=1011, reason="no network")
            return
        server = ws.connect_to_server()
        ws.on_message(lambda message: self.muted or server.send(message))
        server.on_message(lambda message: self.muted or ws.send(message))

    def rest(self, route: Route) -> None:
        if self.muted:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    def mute(self) -> None:
        self.muted = True


def test_a_link_that_stops_answering_is_shown_lost_with_the_time_since_last_heard(
    page, district, officer, shots
):
    link = MuteLink(page)
    sign_in(page, officer)
    nav(page, "Alarms")
    expect(feed_state(page)).to_have_attribute("data-state", "live")

    link.mute()
    # No close, no browser event: only the unanswered pings tell (10 s).
    expect(feed_state(page)).to_have_attribute(
        "data-state", re.compile("reconnecting|polling"), timeout=25_000
    )
    expect(feed_state(page)).to_have_text(re.compile(r"Last heard \d+ s ago"))
    first = feed_state(page).text_content()
    expect(feed_state(page)).not_to_have_text(first)  # the time since counts on
    shots("feed-link-silent")
