import os
import time
from urllib.parse import urlsplit

import av
import pytest
from django.test import Client

from cameras.live import live_sweep, live_warm, session_dir, sessions_running
from cameras.media import PROFILES
from cameras.models import Camera, CameraHealth, HealthStatus
from cameras.services import cameras_switch
from cameras.tasks import health_probe
from responder.core.models import AuditEntry
from responder.core.redis import redis_client
from tests.cameras.fake_cameras import CuttableProxy
from tests.cameras.playlists import playlist_check, playlist_parse
from tests.cameras.test_simulate import clock_read, seconds_of_day
from tests.factories import CameraFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def simulated(server: str, size: str = "854x480") -> str:
    return f"{server}/lobby/video.ts?size={size}&fps=15&kbps=800&gop=15"


def watch(client: Client, camera, profile: str) -> str:
    response = client.post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": profile}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["profile"] == profile
    url = urlsplit(response.json()["playlist"])
    return f"{url.path}?{url.query}"


def fetch(path: str):
    # A fresh client: no session cookie, as a native HLS player would fetch it.
    return Client().get(path)


def playlist_when(path: str, ready) -> object:
    for _ in range(100):
        response = fetch(path)
        if response.status_code == 200:
            playlist = playlist_parse(response.content.decode())
            if ready(playlist):
                return playlist
        time.sleep(0.2)
    raise AssertionError("the playlist never got there")


def segment_path(playlist_path: str, uri: str) -> str:
    return playlist_path.rsplit("/", 1)[0] + "/" + uri


def decode_segment(path: str, tmp_path) -> tuple[list, float, int]:
    response = fetch(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/mp2t"
    file = tmp_path / "segment.ts"
    file.write_bytes(b"".join(response.streaming_content))
    with av.open(str(file)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        frames = [f for p in packets for f in stream.codec_context.decode(p)]
    return frames, sum(p.size for p in packets) * 8, len(packets)


def test_a_simulated_camera_plays_through_the_live_endpoint(
    video_worker, camera_server, viewer_for, tmp_path
):
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = viewer_for(camera)

    path = watch(client, camera, "medium")

    first = playlist_when(path, lambda p: len(p.segments) >= 1)
    later = playlist_when(path, lambda p: p.media_sequence > first.media_sequence)
    for playlist in (first, later):
        playlist_check(playlist)
        assert not playlist.ended
        assert len(playlist.segments) <= 3  # a sliding window of LIVE_LIST_SIZE
    duration, uri = later.segments[0]
    frames, bits, count = decode_segment(segment_path(path, uri), tmp_path)
    assert (frames[0].width, frames[0].height) == (640, 360)
    assert frames[0].key_frame
    assert count == round(duration * PROFILES["medium"].fps)
    assert bits / duration <= PROFILES["medium"].bitrate
    entry = AuditEntry.objects.get(action="video.live")
    assert (entry.user, entry.object_id, entry.details) == (
        client.user,
        str(camera.pk),
        {"profile": "medium"},
    )


def test_the_gstreamer_rtsp_server_plays_through_the_live_endpoint(
    video_worker, rtsp_server, viewer_for, tmp_path
):
    camera = CameraFactory(main_stream_url=rtsp_server)
    path = watch(viewer_for(camera), camera, "source")

    playlist = playlist_when(path, lambda p: len(p.segments) >= 2)

    playlist_check(playlist)
    frames, _, _ = decode_segment(segment_path(path, playlist.segments[0][1]), tmp_path)
    assert (frames[0].width, frames[0].height) == (320, 240)
    assert frames[0].key_frame


def test_viewers_share_one_session_that_stops_after_the_last_leaves(
    video_worker, camera_server, viewer_for, settings
):
    camera = CameraFactory(main_stream_url=simulated(camera_server, "426x240"))
    paths = [watch(viewer_for(camera), camera, "low") for _ in range(2)]
    playlists = [playlist_when(p, lambda p: len(p.segments) >= 1) for p in paths]
    r = redis_client()

    assert sessions_running() == 1
    assert {p.segments[0][1].split("?")[0] for p in playlists} <= {"seg0.ts", "seg1.ts"}
    assert len(list(settings.LIVE_ROOT.glob("*/low/*"))) == 1

    # Nobody fetches any more: the lease lapses and the worker stops and cleans up.
    for _ in range(100):
        if not r.exists(f"live:{camera.pk}:low:lock"):
            break
        time.sleep(0.2)
    assert not r.exists(f"live:{camera.pk}:low:lock")
    assert sessions_running() == 0
    assert not any(settings.LIVE_ROOT.rglob("*.ts"))
    assert fetch(paths[0]).status_code in (200, 503)  # a late fetch starts it again


def test_a_session_whose_worker_died_is_started_again_by_the_next_fetch(
    video_worker, camera_server, viewer_for
):
    camera = CameraFactory(main_stream_url=simulated(camera_server, "426x240"))
    path = watch(viewer_for(camera), camera, "low")
    r = redis_client()
    before = r.hget(f"live:{camera.pk}:low:state", "owner")

    # What a killed worker leaves: its lock expires and nobody renews it.
    r.delete(f"live:{camera.pk}:low:lock")
    playlist_when(
        path, lambda p: r.hget(f"live:{camera.pk}:low:state", "owner") not in (None, before)
    )

    assert r.get(f"live:{camera.pk}:low:lock") == r.hget(f"live:{camera.pk}:low:state", "owner")


def test_a_camera_outside_the_users_scope_answers_404(viewer_for):
    mine, other = CameraFactory(), CameraFactory()
    client = viewer_for(mine)

    response = client.post(
        f"/api/v1/cameras/{other.pk}/live", {"profile": "low"}, content_type="application/json"
    )

    assert response.status_code == 404
    assert client.get(f"/api/v1/cameras/{other.pk}/snapshot").status_code == 404
    assert not AuditEntry.objects.filter(action="video.live").exists()


def test_an_mjpeg_camera_plays_at_its_own_aspect(
    video_worker, camera_server, viewer_for, tmp_path
):
    camera = CameraFactory(main_stream_url=f"{camera_server}/door/mjpeg?size=320x240&fps=10")
    path = watch(viewer_for(camera), camera, "low")

    playlist = playlist_when(path, lambda p: len(p.segments) >= 2)

    frames, _, _ = decode_segment(segment_path(path, playlist.segments[1][1]), tmp_path)
    assert (frames[0].width, frames[0].height) == (320, 240)


@pytest.mark.parametrize("query", ["stream=mxg", "stream=MxPEG"])
def test_a_mobotix_mxpeg_camera_plays_showing_its_clock(
    video_worker, camera_server, viewer_for, tmp_path, query
):
    url = f"{camera_server}/gate/control/faststream.jpg?{query}&size=320x240&fps=5"
    camera = CameraFactory(main_stream_url=url)
    path = watch(viewer_for(camera), camera, "low")

    playlist = playlist_when(path, lambda p: len(p.segments) >= 2)

    frames, _, _ = decode_segment(segment_path(path, playlist.segments[1][1]), tmp_path)
    assert (frames[0].width, frames[0].height) == (320, 240)
    shown = clock_read(frames[0].reformat(format="yuv420p"))
    assert abs(shown - seconds_of_day(time.time())) < 10


def test_an_alarm_can_warm_a_cameras_low_session_before_anyone_asks(
    video_worker, camera_server, viewer_for
):
    camera = CameraFactory(main_stream_url=simulated(camera_server, "426x240"))

    live_warm(camera_ids=[camera.pk])

    for _ in range(100):
        if session_dir(camera_id=camera.pk, profile="low"):
            break
        time.sleep(0.1)
    assert sessions_running() == 1
    watch(viewer_for(camera), camera, "low")
    assert sessions_running() == 1


def test_it_answers_503_when_every_worker_is_busy(viewer_for, settings):
    settings.LIVE_MAX_SESSIONS = 0
    camera = CameraFactory()

    response = viewer_for(camera).post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}, content_type="application/json"
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert "busy" in response.json()["detail"]


def test_the_sweep_removes_only_files_no_worker_owns(settings):
    stale = settings.LIVE_ROOT / "7" / "low" / "deadbeef"
    running = settings.LIVE_ROOT / "7" / "medium" / "cafe"
    for directory in (stale, running):
        directory.mkdir(parents=True)
        (directory / "seg0.ts").write_bytes(b"x")
        os.utime(directory, (time.time() - 60, time.time() - 60))
    redis_client().set("live:7:medium:lock", "cafe", ex=10)

    assert live_sweep() == 1

    assert not stale.exists()
    assert running.exists()


def test_a_sub_stream_that_fits_the_profile_is_remuxed_not_transcoded(
    video_worker, camera_server, viewer_for, tmp_path
):
    camera = CameraFactory(
        main_stream_url=simulated(camera_server),
        sub_stream_url=f"{camera_server}/sub/video.ts?size=426x240&fps=10&kbps=100&gop=10",
    )
    health_probe(camera.pk)  # the sub stream's figures come from its probe
    path = watch(viewer_for(camera), camera, "low")

    playlist = playlist_when(path, lambda p: len(p.segments) >= 1)

    response = fetch(segment_path(path, playlist.segments[0][1]))
    file = tmp_path / "sub.ts"
    file.write_bytes(b"".join(response.streaming_content))
    with av.open(str(file)) as container:
        context = container.streams.video[0].codec_context
        # The simulated camera encodes High profile; the transcoder writes Main.
        assert (context.width, context.height, context.profile) == (426, 240, "High")


def test_a_camera_that_drops_mid_session_is_reconnected(video_worker, camera_server, viewer_for):
    proxy = CuttableProxy(camera_server)
    camera = CameraFactory(main_stream_url=proxy.url("/x/video.ts?size=426x240&fps=15&kbps=300"))
    path = watch(viewer_for(camera), camera, "low")
    before = playlist_when(path, lambda p: len(p.segments) >= 2)

    proxy.cut()

    for _ in range(100):
        text = fetch(path).content.decode()
        if "#EXT-X-DISCONTINUITY" in text and "#EXTINF" in text:
            break
        time.sleep(0.2)
    proxy.close()
    assert "#EXT-X-DISCONTINUITY" in text
    assert "#EXT-X-ENDLIST" not in text
    after = playlist_parse(text)
    playlist_check(after)
    assert after.media_sequence > before.media_sequence
    assert sessions_running() == 1
    assert not CameraHealth.objects.filter(camera=camera, status=HealthStatus.OFFLINE).exists()


def test_switching_a_camera_off_stops_its_running_session_at_once(
    video_worker, camera_server, viewer_for
):
    camera = CameraFactory(main_stream_url=simulated(camera_server, "426x240"))
    path = watch(viewer_for(camera), camera, "low")
    playlist_when(path, lambda p: len(p.segments) >= 1)

    cameras_switch(cameras=Camera.objects.filter(pk=camera.pk), enabled=False)

    r = redis_client()
    for _ in range(50):
        if (
            not r.exists(f"live:{camera.pk}:low:lock")
            and session_dir(camera_id=camera.pk, profile="low") is None
        ):
            break
        time.sleep(0.1)
    assert session_dir(camera_id=camera.pk, profile="low") is None
    assert sessions_running() == 0
    response = fetch(path)
    assert response.status_code == 503
    assert response.content == b"This camera is switched off."
