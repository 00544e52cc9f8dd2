"""Evidence in a real browser (issue 17), at 360 px: export recorded footage from playback
and from an incident, watch the build in the Evidence tab become ready (the real worker
builds it; progress comes on the socket, or by polling), share it with a link that opens
in a browser without an account, revoke it and see 410; place and release a hold."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils import timezone
from playwright.sync_api import Browser, Locator, Page, WebSocketRoute, expect

from accesslog.models import Event
from responder.core.models import AuditEntry
from responder.evidence.models import Export, Share
from responder.incidents.services import incident_open
from responder.recording.models import Hold
from tests.browser.conftest import FEED_SOCKET, VIEWPORTS, sign_in, takeover_dismiss, watched
from tests.browser.test_overflow import overflow
from tests.browser.test_pwa import AXE, summary, violations
from tests.factories import GrantFactory, UserFactory
from tests.signin_helpers import usable_device

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BUILT = 60_000  # ms for the worker to build a small export on a busy machine


@pytest.fixture
def investigator():
    """The district office: live, recorded, alarms and export over the whole district."""
    user = UserFactory(username="investigator", first_name="Alex", last_name="Moreno")
    usable_device(user)
    GrantFactory(user=user, capabilities=["live", "recorded", "alarms", "export"])
    return user


def without_evidence_frames(socket: WebSocketRoute) -> None:
    """The feed's real socket, minus its evidence.progress frames (to the page)."""
    server = socket.connect_to_server()
    server.on_message(
        lambda frame: None if "evidence.progress" in str(frame) else socket.send(frame)
    )


def live_feed(page: Page) -> None:
    """An alarm posted now rings: the feed's socket is live."""
    expect(page.locator(".feed-status")).to_have_attribute("data-state", "live")


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name=name).click()


def export_card(page: Page, export: Export) -> Locator:
    return page.get_by_role("region", name="Evidence").locator(f"[data-export-id='{export.pk}']")


def fits(page: Page, name: str) -> None:
    found: dict[str, dict] = {}
    overflow(page, name, found)
    assert not found, found


def test_an_export_from_playback_is_built_shared_with_police_and_revoked(
    page: Page, browser: Browser, live_url, district, investigator, recorded, post_alarm, shots
):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.add_init_script(path=str(AXE))
    sign_in(page, investigator)
    live_feed(page)
    at = recorded + dt.timedelta(seconds=45)
    alarm = post_alarm(
        district["front_door"], "door_forced", occurred_at=f"{at:%Y-%m-%dT%H:%M:%SZ}"
    )
    takeover_dismiss(page)
    nav(page, "Alarms")
    page.locator(f"li[data-event-id='{alarm['id']}']").get_by_role(
        "button", name="What happened"
    ).click()

    # Export from the playback sheet: its camera, 5 min either side of the position.
    sheet = page.get_by_role("dialog", name="Recordings: Library Front Door")
    sheet.get_by_text("Export as evidence").click()
    sheet.get_by_label("Library Lobby").check()
    sheet.get_by_label("Reason").fill("Forced entry, report 2026-117")
    fits(page, "playback-export-form")
    # Progress by the socket alone: the GET the form falls back on is cut until it is ready.
    page.context.errors.expect(r"ERR_FAILED", why="GET evidence/<id> is cut on purpose")
    one_export = re.compile(r"/api/v1/evidence/\d+$")
    page.route(one_export, lambda route: route.abort())
    with page.expect_response(re.compile(r"/api/v1/evidence/$")) as made:
        sheet.get_by_role("button", name="Export", exact=True).click()
    assert made.value.status == 202
    asked = made.value.request.post_data_json
    assert asked["cameras"] == [district["lobby"].pk]
    assert asked["incident"] is None
    assert dt.datetime.fromisoformat(asked["start"]) < at < dt.datetime.fromisoformat(asked["end"])
    export = Export.objects.get(pk=made.value.json()["id"])
    assert export.reason == "Forced entry, report 2026-117"
    expect(sheet.locator(".export-status")).to_have_attribute(
        "data-status", "ready", timeout=BUILT
    )
    expect(sheet.locator(".export-status")).to_contain_text(re.compile(r"Ready · \d"))
    shots("playback-export-ready")
    page.unroute(one_export)

    # The Evidence tab: ready, its size, its hold; then a link for police, shown once.
    sheet.get_by_role("button", name="Open Evidence").click()
    expect(sheet).to_be_hidden()
    card = export_card(page, export)
    expect(card.locator(".export-status > [role=status]")).to_have_text(re.compile(r"^Ready · \d"))
    expect(card.locator(".held")).to_have_text(re.compile(r"^Held "))
    card.get_by_text("Share with police").click()
    card.get_by_label("Note (who it is for)").fill("Det. Ruiz, case 2026-117")
    expect(card.get_by_label("Expires after (days)")).to_have_value("7")
    fits(page, "evidence-share-form")
    card.get_by_role("button", name="Create link").click()
    link = page.get_by_role("dialog", name="Link for police")
    url = link.get_by_label("Link").input_value()
    assert re.fullmatch(rf"{re.escape(live_url)}/evidence/s/[\w-]+/", url), url
    link.get_by_role("button", name="Copy link").click()
    expect(link.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    fits(page, "evidence-link")
    shots("evidence-link")
    link.get_by_role("button", name="Done").click()
    expect(link).to_be_hidden()
    expect(link).to_have_count(0)  # removed on its `close` event, which comes after
    share = Share.objects.get(export=export)
    assert share.note == "Det. Ruiz, case 2026-117"
    assert (
        dt.timedelta(days=6, hours=23) < share.expires_at - timezone.now() <= dt.timedelta(days=7)
    )
    assert url not in page.content()  # shown once: not on the screen any more
    fits(page, "evidence")
    found = violations(page)
    assert not found, summary(found)

    # Police, in a browser of their own with no account: the export's files.
    guest = watched(browser.new_context(base_url=live_url, **VIEWPORTS["phone"]))
    guest.errors.expect(r"/favicon\.ico\)$", why="the share page is plain HTML, without an icon")
    try:
        police = guest.new_page()
        opened = police.goto(url)
        assert opened.status == 200
        for name in ("manifest.json", "manifest.sig", "public-key.pem", "VERIFY.txt"):
            expect(police.get_by_role("link", name=name, exact=True)).to_be_visible()
        manifest = guest.request.get(f"{url}manifest.json")
        assert manifest.status == 200
        assert [c["id"] for c in json.loads(manifest.body())["cameras"]] == [district["lobby"].pk]

        # Revoked in the PWA: the same link answers 410 and shows nothing of the export.
        page.once("dialog", lambda confirm: confirm.accept())
        card = export_card(page, export)
        card.get_by_role("button", name="Revoke link: Det. Ruiz, case 2026-117").click()
        expect(card.locator(f"[data-share-id='{share.pk}']")).to_contain_text("revoked")
        guest.errors.expect(r"status of 410", why="the revoked link is opened on purpose")
        gone = police.goto(url)
        assert gone.status == 410
        expect(police.get_by_role("link", name="manifest.json")).to_have_count(0)
        assert "Forced entry" not in police.content()
        guest.errors.check()
    finally:
        guest.close()
    share.refresh_from_db()
    assert share.revoked_at is not None
    assert AuditEntry.objects.filter(action__startswith="evidence.", user=investigator).exists()


def test_an_incident_exports_its_cameras_and_a_hold_is_placed_and_released(
    page: Page, district, investigator, recorded, post_alarm, shots
):
    GrantFactory(user=investigator, capabilities=["incidents"])  # the district office runs them
    page.route_web_socket(FEED_SOCKET, without_evidence_frames)
    sign_in(page, investigator)
    live_feed(page)
    alarm = post_alarm(district["front_door"], "door_forced")
    takeover_dismiss(page)
    incident = incident_open(
        campus=district["north"], title="Break-in at the library", by=investigator,
        responder_groups=[], grant_hours=1, source_event=Event.objects.get(pk=alarm["id"]),
    )  # fmt: skip
    nav(page, "Incidents")
    article = page.get_by_role("region", name="Incidents").get_by_role(
        "article", name="Break-in at the library"
    )
    article.get_by_role("button", name="Export: Break-in at the library").click()
    sheet = page.get_by_role("dialog", name="Export: Break-in at the library")
    sheet.get_by_label("Reason").fill("Insurance claim 88")
    with page.expect_response(re.compile(r"/api/v1/evidence/$")) as made:
        sheet.get_by_role("button", name="Export", exact=True).click()
    asked = made.value.request.post_data_json
    assert asked["incident"] == incident.pk
    fits(page, "incident-export")
    # No progress frame reaches the page: polling GET evidence/<id> finds it ready.
    export = Export.objects.get(pk=made.value.json()["id"])
    with page.expect_response(f"**/api/v1/evidence/{export.pk}", timeout=BUILT):
        expect(sheet.locator(".export-status")).to_have_attribute(
            "data-status", "ready", timeout=BUILT
        )
    sheet.get_by_role("button", name="Open Evidence").click()
    card = export_card(page, export)
    expect(card.locator(".export-status")).to_have_attribute("data-status", "ready")

    # The incident's own hold, placed when it opened, is listed with its incident; it ends
    # with the incident, so it has no Release.
    holds = page.get_by_role("region", name="Holds")
    own = holds.locator("li.hold", has_text="(an incident)")
    expect(own).to_contain_text("Incident: Break-in at the library")
    expect(own).to_contain_text("until 10 min after the incident closes")
    expect(own.get_by_role("button", name="Release")).to_have_count(0)

    # A hold by hand on the gym's camera: a reason, then released with another.
    holds.get_by_text("Place a hold").click()
    holds.get_by_label("Gym Court East").check()
    holds.get_by_role("button", name="Place hold").click()
    assert holds.get_by_label("Reason").evaluate("(input) => input.validity.valueMissing")
    holds.get_by_label("Reason").fill("Parent complaint, parking lot")
    holds.get_by_role("button", name="Place hold").click()
    line = holds.locator("li.hold", has_text="Parent complaint, parking lot")
    expect(line).to_contain_text("Gym Court East")
    fits(page, "evidence-holds")
    shots("evidence-holds")
    hold = Hold.objects.get(reason="Parent complaint, parking lot")
    assert [c.pk for c in hold.cameras.all()] == [district["court_east"].pk]
    line.get_by_role("textbox").fill("Complaint withdrawn")
    line.get_by_role("button", name="Release").click()
    expect(line).to_have_count(0)
    hold.refresh_from_db()
    assert hold.released_at is not None
    assert hold.release_reason == "Complaint withdrawn"
