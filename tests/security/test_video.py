"""Attacks on live video links, as an outsider holding a leaked URL or a user past their limits.

Everything goes through a real server (daphne) over real HTTP, with video transcoded by a
real worker from a simulated camera. It checks that: a segment link cannot be turned into a
playlist link; a link stops with the session that asked for it (signed out, deleted, or at
its 12-hour end), however often it is fetched; fetching video never keeps a session awake;
a removed grant or a camera switched off stops the video within seconds; one user cannot hold
more live views than allowed; a dead camera is not hammered by snapshot requests; and
camera passwords written into stream URLs are never stored in the clear.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import connection

from cameras.models import Camera
from responder.core.middleware import SIGNED_IN_AT
from responder.core.redis import redis_client
from responder.embedded_redis import free_port
from tests.cameras import conftest as cameras
from tests.cameras.fake_cameras import counting_dead_camera
from tests.factories import BuildingFactory, CameraFactory, GrantFactory, UserFactory
from tests.servers import HttpClient, daphne_command, http_sign_in, serve, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
# The cameras' fixtures: a simulated camera, an in-process video worker, live sessions ended.
_live, camera_server, video_worker = cameras._live, cameras.camera_server, cameras.video_worker


@pytest.fixture(scope="module")
def live_root(tmp_path_factory) -> Path:
    # One LIVE_ROOT for the module's daphnes, which outlive a test (sessions are per camera,
    # and every test's cameras are new ones).
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def _daphnes() -> Iterator[dict[tuple, tuple[int, subprocess.Popen]]]:
    """The module's daphnes by their environment: (port, process). Each starts once (seconds
    on this machine)."""
    started: dict[tuple, tuple[int, subprocess.Popen]] = {}
    yield started
    stop(*(process for _, process in started.values()))


@pytest.fixture
def server(_daphnes, tmp_path) -> Callable[..., int]:
    """`server(**env)`: the port of a real daphne on the test's database, Redis and LIVE_ROOT.

    Not tests.servers' `daphne`: that one brings a Redis of its own, which the in-process
    video worker does not listen to. A daphne serves every test of the module that asks for
    the same environment: what it keeps between tests is the database (flushed) and Redis
    (`_live` ends live sessions and forgets snapshots).
    """

    def start(**env: str) -> int:
        env = {
            "LIVE_ROOT": str(settings.LIVE_ROOT),
            "LIVE_IDLE_SECONDS": str(settings.LIVE_IDLE_SECONDS),
            "LIVE_LIST_SIZE": str(settings.LIVE_LIST_SIZE),
            "CAMERA_TIMEOUT": str(settings.CAMERA_TIMEOUT),
            "LIVE_START_TIMEOUT": str(settings.LIVE_START_TIMEOUT),
            **env,
        }
        key = tuple(sorted(env.items()))
        if key not in _daphnes:
            port = free_port()
            process = serve(daphne_command(port), port, tmp_path / "daphne.log", env=env)
            _daphnes[key] = (port, process)
        return _daphnes[key][0]

    return start


def simulated(camera_server: str, name: str = "lobby") -> str:
    return f"{camera_server}/{name}/video.ts?size=426x240&fps=10&kbps=200&gop=10"


def viewer(camera: Camera, **fields) -> object:
    user = UserFactory(**fields)
    GrantFactory(user=user, capabilities=["live"], building=camera.building)
    return user


def watch(client: HttpClient, camera: Camera, profile: str = "low") -> dict:
    status, _, body = client.request(
        "POST", f"/api/v1/cameras/{camera.pk}/live", {"profile": profile}
    )
    assert status == 200, body
    answer = json.loads(body)
    url = urllib.parse.urlsplit(answer["playlist"])
    answer["path"] = f"{url.path}?{url.query}"
    return answer


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """A fetch as an HLS player or an outsider makes it: no cookie."""
    return HttpClient(port).request("GET", path, headers=headers)


def playlist_segments(port: int, path: str) -> list[str]:
    """Segment paths of the playlist once it lists one; the fetches go on until then."""
    for _ in range(150):
        status, _, body = get(port, path)
        if status == 200:
            lines = [line for line in body.decode().splitlines() if line.startswith("seg")]
            if lines:
                return [path.split("index.m3u8")[0] + line for line in lines]
        time.sleep(0.2)
    raise AssertionError(f"the playlist never listed a segment (last answer {status})")


def token_of(path: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["token"][0]


def with_token(path: str, token: str) -> str:
    return path.split("?")[0] + "?token=" + token


def until(check, seconds: float = 5.0, deadline: float | None = None):
    """The first truthy answer of check(), asked again until `seconds` pass (or the
    monotonic `deadline`); else the last."""
    deadline = deadline or time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def session_key(client: HttpClient) -> str:
    return next(c.value for c in client.jar if c.name == settings.SESSION_COOKIE_NAME)


def test_a_segment_token_is_refused_as_a_playlist_token(video_worker, camera_server, server):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist = watch(client, camera)["path"]

    segment = playlist_segments(port, playlist)[-1]

    status, _, body = get(port, with_token(playlist, token_of(segment)))
    assert status == 403, body
    assert get(port, playlist)[0] == 200  # the playlist's own token still plays


def test_a_deleted_session_ends_its_playlist_and_segment_links(
    video_worker, camera_server, server
):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist = watch(client, camera)["path"]
    segment = playlist_segments(port, playlist)[-1]

    # IT ends the session (or it is flushed): the links it asked for end with it.
    Session.objects.filter(session_key=session_key(client)).delete()

    assert get(port, playlist)[0] == 403
    assert get(port, segment)[0] == 403


def test_signing_out_ends_the_playlist_and_segment_links(video_worker, camera_server, server):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist = watch(client, camera)["path"]
    segment = playlist_segments(port, playlist)[-1]

    assert client.request("POST", "/api/v1/auth/logout", {})[0] in (200, 204)

    assert get(port, playlist)[0] == 403
    assert get(port, segment)[0] == 403


def test_a_chain_of_playlist_fetches_cannot_outlive_the_sessions_hard_end(
    video_worker, camera_server, server
):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist_segments(port, watch(client, camera)["path"])  # the transcode is running
    # The session reaches its 12-hour limit 8 s from now.
    session = SessionStore(session_key=session_key(client))
    session[SIGNED_IN_AT] = time.time() + 8 - settings.SESSION_MAX_AGE
    session.save()
    hard_end = session[SIGNED_IN_AT] + settings.SESSION_MAX_AGE

    answer = watch(client, camera)
    tokens = {token_of(answer["path"])}
    playlist = answer["path"]
    # The attacker fetches on and on, renewing with every token a playlist hands out.
    while time.time() < hard_end + 1:
        for token in list(tokens):
            status, _, body = get(port, with_token(playlist, token))
            if status == 200:
                tokens |= {
                    token_of(line) for line in body.decode().splitlines() if "token=" in line
                }
        time.sleep(0.5)

    assert datetime.fromisoformat(answer["expires_at"]).timestamp() <= hard_end
    segment = playlist.split("index.m3u8")[0] + "seg0.ts"
    for token in tokens:
        assert get(port, with_token(playlist, token))[0] in (403, 410)
        assert get(port, with_token(segment, token))[0] in (403, 410)


def test_a_video_link_ends_no_later_than_the_sessions_idle_limit(
    video_worker, camera_server, server
):
    port = server(SESSION_IDLE_MINUTES="1")
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))

    answer = watch(client, camera)

    idle_end = Session.objects.get(session_key=session_key(client)).expire_date.timestamp()
    assert datetime.fromisoformat(answer["expires_at"]).timestamp() <= idle_end


def test_fetching_a_playlist_with_the_session_cookie_does_not_renew_the_session(
    video_worker, camera_server, server
):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist = watch(client, camera)["path"]
    key = session_key(client)
    before = Session.objects.get(session_key=key).expire_date

    # The browser's player sends the cookie along, every second.
    status, headers, body = client.request("GET", playlist)

    assert status == 200, body
    assert Session.objects.get(session_key=key).expire_date == before
    assert settings.SESSION_COOKIE_NAME not in headers.get("Set-Cookie", "")


def test_a_segment_is_refused_once_the_users_grant_is_removed(video_worker, camera_server, server):
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    user = viewer(camera)
    client = http_sign_in(port, user)
    playlist = watch(client, camera)["path"]
    segment = playlist_segments(port, playlist)[-1]
    assert get(port, segment)[0] == 200

    user.grants.all().delete()

    assert until(lambda: get(port, segment)[0] == 403)
    assert get(port, playlist)[0] == 403


def test_a_camera_switched_off_stops_everywhere_within_five_seconds(
    video_worker, camera_server, server, settings
):
    # A lease that outlasts the test: only switching off can stop this transcode in time.
    settings.LIVE_IDLE_SECONDS = 30
    port = server()
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    client = http_sign_in(port, viewer(camera))
    playlist = watch(client, camera)["path"]
    segment = playlist_segments(port, playlist)[-1]
    snapshot = f"/api/v1/cameras/{camera.pk}/snapshot"
    assert client.request("GET", snapshot)[0] == 200
    r = redis_client()
    assert r.exists(f"live:{camera.pk}:low:lock")

    # Switched off by any path, here straight in the database.
    Camera.objects.filter(pk=camera.pk).update(enabled=False)
    within = time.monotonic() + 5

    def refused(status_body) -> bool:
        status, _, body = status_body
        return status == 503 and b"switched off" in body

    assert until(lambda: refused(get(port, playlist)), deadline=within)
    assert until(lambda: refused(get(port, segment)), deadline=within)
    assert until(lambda: refused(client.request("GET", snapshot)), deadline=within)
    live = client.request("POST", f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"})
    assert refused(live)
    # Its transcode stopped: the worker let go of the session and removed its files.
    assert until(lambda: not r.exists(f"live:{camera.pk}:low:lock"), deadline=within)
    assert until(lambda: not any(settings.LIVE_ROOT.glob(f"{camera.pk}/low/*")), deadline=within)


def test_a_user_cannot_hold_more_live_views_than_the_cap(video_worker, camera_server, server):
    port = server(LIVE_MAX_SESSIONS_PER_USER="1")
    camera = CameraFactory(main_stream_url=simulated(camera_server))
    other = CameraFactory(
        main_stream_url=simulated(camera_server, "hall"), building=camera.building
    )
    client = http_sign_in(port, viewer(camera))
    watch(client, camera)

    status, headers, body = client.request(
        "POST", f"/api/v1/cameras/{other.pk}/live", {"profile": "low"}
    )

    assert status == 429, body
    assert "close one" in json.loads(body)["detail"]
    assert "Retry-After" in headers
    assert not redis_client().exists(f"live:{other.pk}:low:queued")  # no transcode started
    watch(client, camera)  # the view it holds renews as before


def test_a_burst_of_snapshots_of_a_dead_camera_costs_one_connection(server):
    port = server()
    dead, connections = counting_dead_camera(delay=0.5)  # the burst overlaps its grab
    camera = CameraFactory(main_stream_url=dead)
    client = http_sign_in(port, viewer(camera))
    path = f"/api/v1/cameras/{camera.pk}/snapshot"
    answers: list[int] = []

    def ask() -> None:
        answers.append(client.request("GET", path)[0])

    burst = [threading.Thread(target=ask) for _ in range(6)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()
    ask()

    assert answers == [503] * 7
    assert len(connections) == 1


def form_post(client: HttpClient, path: str, fields: dict) -> tuple[int, bytes]:
    data = urllib.parse.urlencode(fields, doseq=True).encode()
    headers = {"Origin": client.base, "X-CSRFToken": client.csrf_token, "Referer": client.base}
    request = urllib.request.Request(client.base + path, data, headers, method="POST")
    with client.opener.open(request, timeout=30) as response:
        return response.status, response.read()


def stored_urls(name: str) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT main_stream_url, sub_stream_url FROM cameras_camera WHERE name = %s", [name]
        )
        return cursor.fetchone()


def test_credentials_in_a_stream_url_are_never_stored_in_the_clear_from_the_admin(server):
    port = server()
    it = UserFactory(is_staff=True, is_superuser=True)
    client = http_sign_in(port, it)
    building = BuildingFactory()

    status, body = form_post(
        client,
        "/admin/cameras/camera/add/",
        {
            "name": "Gym", "enabled": "on", "vendor": "axis", "building": building.pk,
            "heading": "0", "field_of_view": "90",
            "main_stream_url": "rtsp://svc:s3cret@10.0.0.9/axis-media/media.amp",
            "sub_stream_url": "",
            # The recording policy inline (responder.recording.admin), left empty.
            "recording_policy-TOTAL_FORMS": "0", "recording_policy-INITIAL_FORMS": "0",
        },
    )  # fmt: skip

    assert status in (200, 302), body
    main, _ = stored_urls("Gym")
    assert "s3cret" not in main
    camera = Camera.objects.get(name="Gym")
    assert (camera.username, camera.password) == ("svc", "s3cret")


def test_credentials_in_a_stream_url_are_never_stored_in_the_clear_from_a_csv_import(server):
    port = server()
    client = http_sign_in(port, UserFactory(is_staff=True, is_superuser=True))
    building = BuildingFactory(name="Annex")
    csv = (
        "name,building,main_stream_url,sub_stream_url\n"
        "Annex Door,Annex,rtsp://svc:s3cret@10.0.0.9/main,rtsp://svc:s3cret@10.0.0.9/sub\n"
    )
    boundary = "responder-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.csv"\r\n'
        f"Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    ).encode()
    headers = {
        "Origin": client.base, "X-CSRFToken": client.csrf_token,
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }  # fmt: skip
    request = urllib.request.Request(
        client.base + "/admin/cameras/camera/import/", body, headers, method="POST"
    )
    with client.opener.open(request, timeout=30) as response:
        assert response.status in (200, 302)

    assert Camera.objects.filter(building=building).count() == 1
    main, sub = stored_urls("Annex Door")
    assert "s3cret" not in main + sub
    camera = Camera.objects.get(name="Annex Door")
    assert (camera.username, camera.password) == ("svc", "s3cret")
