import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from responder.core.models import AuditEntry
from responder.recording.models import Gap, GapReason
from tests.factories import CameraFactory, DoorFactory, event_store
from tests.recording.playback_helpers import (
    clock_read,
    first_frame,
    playlist_parts,
    recording_make,
    recordings_isolated,
    viewer,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recordings(settings, tmp_path):
    recordings_isolated(settings, tmp_path)


@pytest.fixture
def recorded():
    """A camera with 30 s of clock video, in three files, from two minutes ago."""
    camera = CameraFactory()
    start = (timezone.now() - dt.timedelta(minutes=2)).replace(microsecond=0)
    segments = recording_make(camera, start, seconds=30, segment_seconds=10)
    return camera, start, segments


def window(camera, start, end):
    return f"/api/v1/cameras/{camera.pk}/recordings?start={start.isoformat()}&end={end.isoformat()}".replace(
        "+", "%2B"
    )


def post_playback(client, camera, start, profile="source", **extra):
    body = {"start": start.isoformat(), "profile": profile, **extra}
    return client.post(
        f"/api/v1/cameras/{camera.pk}/playback", body, content_type="application/json"
    )


def event_at(door, at):
    event = event_store(door)
    event.occurred_at = at
    event.save(update_fields=["occurred_at"])
    return event


def test_the_window_merges_contiguous_segments_and_lists_gaps_and_the_doors_events(recorded):
    camera, start, segments = recorded
    assert len(segments) == 3
    Gap.objects.create(
        camera=camera,
        start=start + dt.timedelta(seconds=30),
        end=None,
        reason=GapReason.SOURCE_DOWN,
    )
    door, elsewhere = DoorFactory(building=camera.building), DoorFactory(building=camera.building)
    door.door_cameras.create(camera=camera)
    forced = event_at(door, start + dt.timedelta(seconds=12))
    event_at(elsewhere, start + dt.timedelta(seconds=13))
    client = viewer(camera, ("recorded", "alarms"))

    body = client.get(window(camera, start - dt.timedelta(hours=1), timezone.now())).json()

    assert [(_t(r["start"]), _t(r["end"])) for r in body["ranges"]] == [
        (start, start + dt.timedelta(seconds=30))
    ]
    assert [(_t(g["start"]), g["end"], g["reason"]) for g in body["gaps"]] == [
        (start + dt.timedelta(seconds=30), None, "source_down")
    ]
    assert [event["id"] for event in body["events"]] == [forced.pk]
    assert body["events"][0]["type"] == "door_forced"


def test_events_need_the_alarms_capability_too(recorded):
    camera, start, _ = recorded
    door = DoorFactory(building=camera.building)
    door.door_cameras.create(camera=camera)
    event_at(door, start + dt.timedelta(seconds=12))

    body = viewer(camera).get(window(camera, start, timezone.now())).json()

    assert body["events"] == [] and len(body["ranges"]) == 1


@pytest.mark.parametrize(
    "query",
    ["", "?start=2026-01-01T00:00Z", "?start=yesterday&end=2026-01-01T00:00Z",
     "?start=2026-01-02T00:00Z&end=2026-01-01T00:00Z",
     "?start=2026-01-01T00:00Z&end=2026-02-01T00:00Z"],
)  # fmt: skip
def test_a_bad_window_answers_400_with_the_reason(recorded, query):
    camera, _, _ = recorded

    response = viewer(camera).get(f"/api/v1/cameras/{camera.pk}/recordings{query}")

    assert response.status_code == 400
    assert response.json()


def test_without_recorded_or_outside_the_scope_every_path_is_404(recorded):
    camera, start, _ = recorded
    live_only = viewer(camera, ("live", "alarms"))
    elsewhere = viewer(CameraFactory())
    frame = f"/api/v1/cameras/{camera.pk}/recordings/frame?at={start.isoformat()}".replace(
        "+", "%2B"
    )

    for client in (live_only, elsewhere):
        assert client.get(window(camera, start, timezone.now())).status_code == 404
        assert post_playback(client, camera, start).status_code == 404
        assert client.get(frame).status_code == 404
    assert not AuditEntry.objects.filter(action__startswith="video.recorded").exists()


def test_the_source_playlist_plays_the_recorded_bytes_at_their_wall_clock(recorded):
    camera, start, segments = recorded
    client = viewer(camera)
    asked = start + dt.timedelta(seconds=12.5)

    response = post_playback(client, camera, asked)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["profile"] == "source"
    assert _t(body["start"]) == start + dt.timedelta(seconds=12)  # the keyframe before it
    text = Client().get(body["playlist"]).content.decode()
    assert "#EXT-X-ENDLIST" in text and "#EXT-X-BYTERANGE" in text
    parts = playlist_parts(text)
    assert len(parts) == 18  # one per keyframe interval, from 12 s to 30 s
    for part in parts:
        offset, length = part["range"]
        got = Client().get(part["url"], HTTP_RANGE=f"bytes={offset}-{offset + length - 1}")
        assert got.status_code == 206
        data = b"".join(got.streaming_content)
        assert len(data) == length
        assert abs((clock_read(first_frame(data)) - part["at"]).total_seconds()) < 1
    assert parts[0]["at"] == start + dt.timedelta(seconds=12)


def test_a_whole_file_fetch_is_the_file_as_recorded(recorded, settings):
    camera, start, segments = recorded
    body = post_playback(viewer(camera), camera, start).json()
    url = playlist_parts(Client().get(body["playlist"]).content.decode())[0]["url"]

    got = Client().get(url)

    assert got.status_code == 200
    data = b"".join(got.streaming_content)
    assert data == (settings.RECORDINGS_ROOT / segments[0].path).read_bytes()


def test_nothing_recorded_answers_404_with_the_next_recorded_start(recorded):
    camera, start, _ = recorded
    client = viewer(camera)

    before = post_playback(client, camera, start - dt.timedelta(minutes=5))
    after = post_playback(client, camera, start + dt.timedelta(minutes=1))

    assert before.status_code == 404
    assert "Nothing is recorded" in before.json()["detail"]
    assert _t(before.json()["next"]) == start
    assert after.status_code == 404 and after.json()["next"] is None
    failed = AuditEntry.objects.filter(action="video.recorded", outcome="failure")
    assert failed.count() == 2


def test_every_playback_start_is_audited_with_the_range_asked(recorded):
    camera, start, _ = recorded
    client = viewer(camera)

    post_playback(client, camera, start + dt.timedelta(seconds=3), profile="source")

    entry = AuditEntry.objects.get(action="video.recorded")
    assert entry.user == client.user and entry.object_id == str(camera.pk)
    assert _t(entry.details["start"]) == start + dt.timedelta(seconds=3)
    assert _t(entry.details["from"]) == start + dt.timedelta(seconds=3)
    assert entry.details["profile"] == "source"


def test_a_tampered_token_is_403_and_an_expired_one_410(recorded, time_machine):
    camera, start, _ = recorded
    time_machine.move_to(timezone.now(), tick=False)
    client = viewer(camera)
    playlist = post_playback(client, camera, start).json()["playlist"]
    tampered = playlist[:-2] + ("AA" if not playlist.endswith("AA") else "BB")

    assert Client().get(tampered).status_code == 403
    assert Client().get(playlist).status_code == 200
    time_machine.shift(301)
    assert Client().get(playlist).status_code == 410


def test_a_live_token_does_not_open_a_recording_nor_one_camera_another(recorded):
    from cameras.tokens import token_issue
    from responder.recording.playback import session_name

    camera, start, _ = recorded
    client = viewer(camera, ("live", "recorded"))
    name = session_name("source", start)
    live, _ = token_issue(
        user_id=client.user.pk, camera_id=camera.pk, profile=name, session=client.session
    )
    url = f"/api/v1/cameras/{camera.pk}/recorded/{name}/index.m3u8?token={live}"
    assert Client().get(url).status_code == 403

    playlist = post_playback(client, camera, start).json()["playlist"]
    other = CameraFactory(building=camera.building)
    assert (
        Client()
        .get(playlist.replace(f"/cameras/{camera.pk}/", f"/cameras/{other.pk}/"))
        .status_code
        == 403
    )


def test_signing_out_or_losing_the_grant_ends_the_links(recorded):
    camera, start, _ = recorded
    client = viewer(camera)
    playlist = post_playback(client, camera, start).json()["playlist"]
    segment = playlist_parts(Client().get(playlist).content.decode())[0]["url"]
    other = viewer(camera)
    other_playlist = post_playback(other, camera, start).json()["playlist"]

    client.logout()
    other.user.grants.all().delete()

    assert Client().get(playlist).status_code == 403
    assert Client().get(segment).status_code == 403
    assert Client().get(other_playlist).status_code == 403


def test_h265_source_needs_the_browsers_word_that_it_plays_it():
    camera = CameraFactory()
    start = (timezone.now() - dt.timedelta(minutes=2)).replace(microsecond=0)
    recording_make(camera, start, seconds=4, segment_seconds=10, codec="hevc")
    client = viewer(camera)

    refused = post_playback(client, camera, start)
    allowed = post_playback(client, camera, start, hevc=True)

    assert refused.status_code == 400 and "H.265" in refused.json()["detail"]
    assert allowed.status_code == 200
    part = playlist_parts(Client().get(allowed.json()["playlist"]).content.decode())[1]
    offset, length = part["range"]
    data = b"".join(
        Client()
        .get(part["url"], HTTP_RANGE=f"bytes={offset}-{offset + length - 1}")
        .streaming_content
    )
    assert abs((clock_read(first_frame(data)) - part["at"]).total_seconds()) < 1


def test_the_frame_is_the_keyframe_before_the_time_asked_audited_and_cached(recorded):
    from django.core.cache import cache

    camera, start, segments = recorded
    client = viewer(camera)
    at = start + dt.timedelta(seconds=21.7)
    url = f"/api/v1/cameras/{camera.pk}/recordings/frame?at={at.isoformat()}".replace("+", "%2B")

    response = client.get(url)

    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(response.content))
    assert image.size == (320, 240)
    assert cache.get(f"recording:frame:{segments[2].pk}:1:320") == response.content
    entry = AuditEntry.objects.get(action="video.recorded_frame")
    assert _t(entry.details["frame"]) == start + dt.timedelta(seconds=21)
    later = (start + dt.timedelta(seconds=90)).isoformat().replace("+", "%2B")
    assert (
        client.get(f"/api/v1/cameras/{camera.pk}/recordings/frame?at={later}").status_code == 404
    )
    assert client.get(f"/api/v1/cameras/{camera.pk}/recordings/frame?at=noon").status_code == 400


def _t(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def test_behind_nginx_the_bytes_go_by_x_accel_redirect(recorded, settings):
    camera, start, segments = recorded
    settings.RECORDINGS_ACCEL_REDIRECT = "/_recordings/"
    body = post_playback(viewer(camera), camera, start).json()
    url = playlist_parts(Client().get(body["playlist"]).content.decode())[0]["url"]

    got = Client().get(url, HTTP_RANGE="bytes=0-187")

    assert got["X-Accel-Redirect"] == f"/_recordings/{segments[0].path}"
    assert got.content == b""


def test_a_range_past_the_end_is_416_and_another_cameras_segment_404(recorded):
    camera, start, segments = recorded
    client = viewer(camera)
    body = post_playback(client, camera, start).json()
    url = playlist_parts(Client().get(body["playlist"]).content.decode())[0]["url"]
    other = CameraFactory(building=camera.building)
    foreign = recording_make(other, start, seconds=2)[0]

    past = Client().get(url, HTTP_RANGE=f"bytes={segments[0].bytes}-")
    crossed = Client().get(url.replace(f"/rec{segments[0].pk}.ts", f"/rec{foreign.pk}.ts"))

    assert past.status_code == 416
    assert crossed.status_code == 404
