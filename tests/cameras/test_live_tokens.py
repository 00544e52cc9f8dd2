import pytest
from django.test import Client

from cameras.tokens import PLAYLIST, segment_token_issue, token_check, token_issue
from tests.factories import CameraFactory

pytestmark = pytest.mark.django_db


def segment_url(camera, profile: str, token: str) -> str:
    return f"/api/v1/cameras/{camera.pk}/live/{profile}/seg0.ts?token={token}"


def segment_token(client, camera, profile: str = "low") -> str:
    """What a playlist fetch writes on its segment lines."""
    token, _ = token_issue(
        user_id=client.user.pk, camera_id=camera.pk, profile=profile, session=client.session
    )
    claims = token_check(token, kind=PLAYLIST, camera_id=camera.pk, profile=profile)
    return segment_token_issue(claims)


@pytest.fixture
def watching(viewer_for):
    camera = CameraFactory()
    client = viewer_for(camera)
    return camera, client, segment_token(client, camera)


def test_a_valid_token_works_without_the_session_cookie(watching):
    camera, _, token = watching

    # No session is running, so no such segment: but the token itself was accepted.
    assert Client().get(segment_url(camera, "low", token)).status_code == 404


def test_it_rejects_a_tampered_token(watching):
    camera, _, token = watching
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    assert Client().get(segment_url(camera, "low", tampered)).status_code == 403
    assert Client().get(segment_url(camera, "low", "")).status_code == 403


def test_it_rejects_another_cameras_or_profiles_token(watching):
    camera, client, token = watching
    other = CameraFactory(building=camera.building)

    assert Client().get(segment_url(other, "low", token)).status_code == 403
    assert Client().get(segment_url(camera, "high", token)).status_code == 403
    playlist_token, _ = token_issue(
        user_id=client.user.pk, camera_id=camera.pk, profile="low", session=client.session
    )
    playlist = f"/api/v1/cameras/{other.pk}/live/low/index.m3u8?token={playlist_token}"
    assert Client().get(playlist).status_code == 403


def test_an_expired_token_answers_410(viewer_for, time_machine):
    time_machine.move_to("2030-01-01T12:00Z", tick=False)
    camera = CameraFactory()
    client = viewer_for(camera)
    token, _ = token_issue(
        user_id=client.user.pk, camera_id=camera.pk, profile="low", session=client.session
    )
    playlist = f"/api/v1/cameras/{camera.pk}/live/low/index.m3u8?token={token}"

    time_machine.shift(299)
    assert Client().get(playlist).status_code == 503  # accepted: no session is running
    time_machine.shift(2)

    assert Client().get(playlist).status_code == 410


def test_signing_out_ends_the_users_tokens_at_once(watching):
    camera, client, token = watching

    client.logout()

    assert Client().get(segment_url(camera, "low", token)).status_code == 403


def test_disabling_the_user_ends_their_tokens_at_once(watching):
    camera, client, token = watching

    client.user.is_active = False
    client.user.save()

    assert Client().get(segment_url(camera, "low", token)).status_code == 403


def test_a_token_stops_at_the_end_of_the_users_grant(watching):
    camera, client, _ = watching
    token, _ = token_issue(
        user_id=client.user.pk, camera_id=camera.pk, profile="low", session=client.session
    )

    client.user.grants.all().delete()

    playlist = f"/api/v1/cameras/{camera.pk}/live/low/index.m3u8?token={token}"
    assert Client().get(playlist).status_code == 403


def test_live_needs_a_signed_in_verified_user():
    camera = CameraFactory()

    response = Client().post(
        f"/api/v1/cameras/{camera.pk}/live", {"profile": "low"}, content_type="application/json"
    )

    assert response.status_code in (401, 403)
