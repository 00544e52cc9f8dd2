"""The app's shell in a real browser: signing in, the map, offline, and a new release."""

import re
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Page, Route, expect

from responder.core.models import SignInState
from tests.factories import (
    PASSWORD,
    BuildingFactory,
    CameraFactory,
    CampusFactory,
    DoorFactory,
    FloorFactory,
    GrantFactory,
    GroupFactory,
    TOTPDeviceFactory,
    UserFactory,
    event_store,
)
from tests.signin_helpers import code_for, code_from_uri, enrolment_code_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SERVICE_WORKER = Path(__file__).resolve().parents[2] / "frontend" / "dist" / "sw.js"
ENDED = "Your session has ended. Sign in again."
# Caches of data, not of the app's own code.
USER_CACHES = "caches.keys().then((names) => names.filter((n) => !n.includes('shell')))"


@pytest.fixture
def district():
    """Two campuses; the north one has a library with two floors and a gym."""
    north = CampusFactory(name="North Campus")
    south = CampusFactory(name="South Campus", district=north.district)
    library = BuildingFactory(campus=north, name="Library")
    gym = BuildingFactory(campus=north, name="Gym")
    annex = BuildingFactory(campus=south, name="Annex")
    ground = FloorFactory(building=library, name="Library Ground", level=1)
    FloorFactory(building=library, name="Library Upper", level=2)
    court = FloorFactory(building=gym, name="Gym Court", level=1)
    annex_ground = FloorFactory(building=annex, name="Annex Ground", level=1)
    place = {"x": 300, "y": 200, "heading": 90, "field_of_view": 70}
    CameraFactory(building=library, floor=ground, name="Library Lobby", **place)
    CameraFactory(building=gym, floor=court, name="Gym Court East", **place)
    CameraFactory(building=annex, floor=annex_ground, name="Annex Hall", **place)
    door = DoorFactory(building=library, floor=ground, name="Library Front Door", x=500, y=300)
    return {"north": north, "library": library, "gym": gym, "door": door}


def user_with_device(**fields):
    user = UserFactory(**fields)
    return user, TOTPDeviceFactory(user=user)


def district_user():
    user, device = user_with_device()
    GrantFactory(user=user, capabilities=["live", "alarms"])  # no place set: the whole district
    return user, device


def sign_in(page: Page, user, code: str, path: str = "/") -> None:
    page.goto(path)
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("One-time code").fill(code)
    page.get_by_role("button", name="Sign in").click()


def main_nav(page: Page):
    return page.get_by_role("navigation", name="Main")


def test_a_user_signs_in_with_a_one_time_code(page):
    user, device = user_with_device(is_superuser=True)

    sign_in(page, user, code_for(device))

    for name in ("Map", "Alarms", "Incidents", "Notifications"):
        expect(main_nav(page).get_by_role("button", name=name)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_new_user_enrols_with_the_code_from_district_it_then_signs_in(page, shots):
    page.context.errors.expect(r"status of 401 .*/api/v1/auth/login\)$", why="no code yet: enrol")
    user = UserFactory(is_superuser=True)
    enrolment_code = enrolment_code_for(user)

    sign_in(page, user, "")

    expect(page.get_by_role("alert")).to_contain_text("enrolment code district IT gave you")
    expect(page.get_by_role("img", name="QR code to enrol")).to_have_count(0)
    page.get_by_label("Enrolment code from district IT").fill(enrolment_code)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("img", name="QR code to enrol")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("Scan the QR code")
    shots("enrolment-qr")
    uri = page.get_by_role("link", name="Open in an authenticator app").get_attribute("href")
    page.get_by_label("One-time code").fill(code_from_uri(uri))
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()
    page.get_by_role("button", name="I have kept them").click()
    expect(main_nav(page)).to_be_visible()
    assert TOTPDevice.objects.get(user=user).confirmed


def test_a_wrong_enrolment_code_says_to_ask_district_it(page):
    page.context.errors.expect(r"status of 401 .*/api/v1/auth/login\)$", why="the wrong code")
    user = UserFactory()
    enrolment_code_for(user)

    page.goto("/")
    page.get_by_role("button", name="First sign-in? I have an enrolment code").click()
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Enrolment code from district IT").fill("aaaa-bbbb-cccc")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_contain_text("Ask district IT for a new one")
    expect(page.get_by_role("img", name="QR code to enrol")).to_have_count(0)


def test_a_wrong_code_says_so_and_keeps_the_form(page):
    page.context.errors.expect(r"status of 401 .*/api/v1/auth/login\)$", why="the wrong code")
    user, _ = user_with_device()

    sign_in(page, user, "000000")

    expect(page.get_by_role("alert")).to_have_text("Wrong username, password or one-time code.")
    expect(page.get_by_label("Username")).to_have_value(user.username)


def test_a_locked_account_says_whom_to_call(page):
    page.context.errors.expect(r"status of 423 .*/api/v1/auth/login\)$", why="the lock")
    user, device = user_with_device()
    SignInState.objects.create(
        username=user.username, user=user, password_failures=5, locked_at=timezone.now()
    )

    sign_in(page, user, code_for(device))

    expect(page.get_by_role("alert")).to_contain_text("locked")
    expect(page.get_by_role("alert")).to_contain_text("district IT")


def session_end(user) -> None:
    """As the server's idle timeout leaves it: the cookie stays, its session is gone. (Clearing
    the cookie instead races a request in flight, whose answer would set it again.)"""
    for session in Session.objects.all():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


def settled(page: Page) -> None:
    """The shell's first requests are answered: an idle timeout ends a session with nothing
    in flight. (One in flight then is refused, 403, or fails as its session is saved, 400.)"""
    expect(main_nav(page)).to_be_visible()
    page.wait_for_function(
        """() => ["incidents/", "emergency-grants", "push/vapid-key"].every((path) =>
          performance.getEntriesByType("resource").some((e) => e.name.endsWith(`/api/v1/${path}`)))"""
    )


def test_an_ended_session_goes_back_to_sign_in_with_a_message(page):
    user, device = user_with_device(is_superuser=True)
    sign_in(page, user, code_for(device))
    settled(page)

    session_end(user)
    page.reload()

    expect(page.get_by_role("alert")).to_have_text(ENDED)
    expect(page.get_by_label("Username")).to_be_visible()


def test_a_reload_after_the_app_found_its_session_ended_still_says_so(page):
    # CI saw the shell's first requests refused: the page forgot the device, then the
    # reload came before it could say why, and found nothing that said a session was here.
    page.context.errors.expect(
        r"status of 403 .*/api/v1/(incidents/|emergency-grants)\)$", why="the session is gone"
    )
    user, device = user_with_device(is_superuser=True)
    sign_in(page, user, code_for(device))
    settled(page)
    session_end(user)

    main_nav(page).get_by_role("button", name="Incidents").click()
    expect(page.get_by_role("alert")).to_have_text(ENDED)
    page.reload()

    expect(page.get_by_role("alert")).to_have_text(ENDED)
    expect(page.get_by_label("Username")).to_be_visible()


def test_a_session_check_answered_while_the_app_starts_keeps_the_notice(page):
    user, device = user_with_device(is_superuser=True)
    sign_in(page, user, code_for(device))
    settled(page)
    session_end(user)
    held = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.fallback()
        else:
            held.append(route)

    page.route("**/api/v1/auth/me", hold_the_first)
    page.reload()  # the start's auth/me is held
    # Back from the pocket as it starts: the app's own check (session.js) is answered first,
    # and the sign-in it shows forgets the device before the start hears its answer.
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.get_by_role("alert")).to_have_text(ENDED)
    page.locator("form.signin").evaluate("(form) => { form.dataset.before = ''; }")
    held[0].fallback()

    started = page.locator("form.signin:not([data-before])")
    expect(started.get_by_role("alert")).to_have_text(ENDED)


def test_signing_out_ends_the_session_and_forgets_the_saved_data(page):
    user, device = user_with_device(is_superuser=True)
    sign_in(page, user, code_for(device))
    expect(main_nav(page)).to_be_visible()
    # The map tree the app fetched once its service worker took over is cached, as this user's.
    for _ in range(150):
        if page.evaluate(f"() => {USER_CACHES}"):
            break
        page.wait_for_timeout(100)
    assert f"responder-api-{user.pk}" in page.evaluate(f"() => {USER_CACHES}")
    assert page.evaluate("() => localStorage.length") > 0

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("alert")).to_have_text("You have signed out.")
    assert page.evaluate(f"() => {USER_CACHES}") == []
    assert page.evaluate("() => localStorage.length") == 0
    assert page.evaluate("fetch('/api/v1/auth/me').then((r) => r.status)") == 403


def test_the_map_goes_from_campus_to_building_to_floor_with_markers(page, district):
    user, device = district_user()
    sign_in(page, user, code_for(device))
    crumbs = page.get_by_role("navigation", name="Where on the map")

    page.get_by_role("button", name="North Campus").click()
    expect(crumbs).to_contain_text("North Campus")
    page.get_by_role("button", name="Library", exact=True).click()
    expect(crumbs).to_contain_text("Library")
    expect(page.get_by_role("button", name="Library Ground")).to_have_attribute(
        "aria-pressed", "true"
    )

    expect(page.locator(".camera-pin[title='Library Lobby']")).to_be_visible()
    expect(page.locator(".door-pin.door-normal")).to_have_count(1)
    page.get_by_role("button", name="Library Upper").click()
    expect(page.locator(".camera-pin")).to_have_count(0)


def test_a_scoped_user_sees_only_their_building(page, district):
    user, device = user_with_device()
    GrantFactory(user=user, building=district["gym"], capabilities=["live", "alarms"])
    sign_in(page, user, code_for(device))

    # One campus: the app opens straight on it, with only the gym.
    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("North Campus")
    expect(page.get_by_role("button", name="Gym", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Library", exact=True)).to_have_count(0)
    page.get_by_label("Find a camera or door").fill("library")
    expect(page.get_by_role("list", name="Search results").get_by_role("button")).to_have_count(0)


def test_search_finds_a_camera_and_shows_it_on_its_floor(page, district):
    user, device = district_user()
    sign_in(page, user, code_for(device))

    page.get_by_label("Find a camera or door").fill("front door")
    page.get_by_role("button", name="Door: Library Front Door").click()

    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("Library")
    expect(page.locator(".door-pin.flash")).to_be_visible()


def test_a_camera_pin_opens_its_live_sheet(page, district):
    user, device = district_user()
    sign_in(page, user, code_for(device))
    page.get_by_label("Find a camera or door").fill("gym court")
    page.get_by_role("button", name="Camera: Gym Court East").click()

    page.locator(".camera-pin[title='Gym Court East']").click()

    expect(page.get_by_role("dialog", name="Live: Gym Court East")).to_be_visible()


def test_a_notification_link_opens_its_alarm_after_sign_in(page, district):
    event = event_store(district["door"])
    user, device = district_user()

    sign_in(page, user, code_for(device), path=f"/?event={event.id}")

    expect(page.get_by_role("region", name="Alarms")).to_be_visible()
    expect(page.locator(f"[data-event-id='{event.id}']")).to_have_class(re.compile(r"\bflash\b"))
    assert page.url.endswith("/")


def test_an_offline_reload_shows_the_saved_map_with_its_age(page, context, district):
    user, device = district_user()
    sign_in(page, user, code_for(device))
    page.get_by_role("button", name="North Campus").click()
    page.get_by_role("button", name="Library", exact=True).click()
    expect(page.locator(".camera-pin")).to_have_count(1)
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    # Offline on purpose: the alarm socket and the feed's REST stand-in cannot connect.
    context.errors.expect(r"net::ERR_INTERNET_DISCONNECTED", why="the test cuts the network")
    context.set_offline(True)
    page.reload()

    banner = page.locator(".offline-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Offline")
    expect(banner).to_contain_text("ago")
    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("Library")
    expect(page.locator(".camera-pin[title='Library Lobby']")).to_be_visible()

    context.set_offline(False)
    expect(banner).to_be_hidden()


def test_a_new_release_takes_over_without_losing_the_session(page, district):
    user, device = district_user()
    sign_in(page, user, code_for(device))
    page.get_by_role("button", name="North Campus").click()
    page.get_by_role("button", name="Gym", exact=True).click()
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    release = SERVICE_WORKER.read_text()
    try:
        SERVICE_WORKER.write_text(release + "\n// the next release\n")
        page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
        prompt = page.get_by_role("status").filter(has_text="new version")
        page.evaluate("window.oldPage = true")

        with page.expect_navigation():
            prompt.get_by_role("button", name="Reload").click()
    finally:
        SERVICE_WORKER.write_text(release)

    assert page.evaluate("window.oldPage") is None
    expect(main_nav(page)).to_be_visible()
    expect(page.get_by_role("navigation", name="Where on the map")).to_contain_text("Gym")


@pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)
def test_the_theme_switch_overrides_the_system_and_stays_with_the_device(page, district, shots):
    page.emulate_media(color_scheme="light")
    user, device = district_user()
    sign_in(page, user, code_for(device))
    expect(main_nav(page)).to_be_visible()
    background = "() => getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)

    main_nav(page).get_by_role("button", name="Notifications").click()
    theme = page.get_by_label("Theme")
    expect(theme).to_have_value("system")
    theme.select_option("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = page.evaluate(background)
    assert dark != light
    shots("dark")

    page.reload()  # remembered on this device, whatever the system says
    expect(main_nav(page)).to_be_visible()
    assert page.evaluate(background) == dark
    page.get_by_role("button", name="Sign out").click()  # the device's setting, not the user's
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.evaluate(background) == dark

    page.emulate_media(color_scheme="dark")
    device.refresh_from_db()  # the code used above is spent: the next one
    sign_in(page, user, code_for(device))
    main_nav(page).get_by_role("button", name="Notifications").click()
    page.get_by_label("Theme").select_option("light")
    assert page.evaluate(background) == light  # light, though the system is dark
    page.get_by_label("Theme").select_option("system")
    assert page.evaluate(background) == dark  # the system's again


@pytest.mark.parametrize("viewport", ["phone", "tablet"], indirect=True)
def test_fire_is_told_why_it_sees_no_cameras(page, district, shots):
    user, device = user_with_device(username="firefighter")
    user.groups.add(GroupFactory(name="Fire responders"))
    GrantFactory(user=user, capabilities=["alarms"])
    sign_in(page, user, code_for(device))
    expect(main_nav(page)).to_be_visible()

    expect(page.get_by_role("note")).to_have_text("Cameras open to fire during an incident.")
    expect(page.locator(".camera-pin")).to_have_count(0)
    shots("fire-no-cameras")


def test_the_sign_in_explains_why_alarms_sound_only_after_a_touch(page):
    page.goto("/")
    expect(page.locator("form.signin")).to_contain_text(
        "Browsers allow sound only after you touch the page"
    )


def test_a_push_service_refusal_is_said_plainly_not_in_the_browsers_words(page, context, district):
    # The browser's push service is the outside world: here it refuses as Chromium's does
    # when it cannot reach Google's servers.
    page.add_init_script(
        """PushManager.prototype.getSubscription = async () => null;
        PushManager.prototype.subscribe = async () => {
          throw new DOMException("Registration failed - push service error", "AbortError");
        };"""
    )
    context.grant_permissions(["notifications"])
    user, device = district_user()
    sign_in(page, user, code_for(device))
    main_nav(page).get_by_role("button", name="Notifications").click()
    page.get_by_role("button", name="Turn on notifications").click()

    status = page.locator(".push-status")
    expect(status).to_have_text(
        "The browser could not reach its notification service. "
        "Check the connection and try again in a moment."
    )
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
