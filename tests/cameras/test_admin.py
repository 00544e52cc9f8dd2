import importlib

import pytest
from django.apps import apps

from cameras.forms import CameraAdminForm
from cameras.models import Camera
from tests.factories import BuildingFactory, CameraFactory, UserFactory, sign_in_verified

pytestmark = pytest.mark.django_db


def form(**fields) -> CameraAdminForm:
    data = {
        "name": "Gym", "enabled": "on", "vendor": "axis", "building": BuildingFactory().pk,
        "heading": "0", "field_of_view": "90", "sub_stream_url": "", **fields,
    }  # fmt: skip
    return CameraAdminForm(data=data)


def test_credentials_written_into_the_url_move_to_the_encrypted_fields():
    submitted = form(main_stream_url="rtsp://svc:s3cret@10.0.0.9/main")

    assert submitted.is_valid(), submitted.errors
    camera = submitted.save()
    assert camera.main_stream_url == "rtsp://10.0.0.9/main"
    assert (camera.username, camera.password) == ("svc", "s3cret")


def test_the_form_refuses_a_url_whose_credentials_differ_from_those_typed():
    submitted = form(
        main_stream_url="rtsp://svc:one@10.0.0.9/main", username="svc", password="two"
    )

    assert not submitted.is_valid()
    assert "differ" in str(submitted.errors["main_stream_url"])


def test_the_model_refuses_a_url_with_credentials_on_any_other_path():
    camera = CameraFactory.build(
        building=BuildingFactory(), main_stream_url="rtsp://svc:s3cret@10.0.0.9/main"
    )

    with pytest.raises(Exception, match="unencrypted"):
        camera.full_clean()


def test_the_disable_action_switches_cameras_off(client):
    sign_in_verified(client, UserFactory(is_superuser=True, is_staff=True))
    cameras = CameraFactory.create_batch(2)

    client.post(
        "/admin/cameras/camera/",
        {"action": "disable", "_selected_action": [camera.pk for camera in cameras]},
    )

    assert not Camera.objects.filter(enabled=True).exists()


def test_the_migration_moves_credentials_already_stored_in_urls():
    camera = CameraFactory(
        main_stream_url="rtsp://svc:s3cret@10.0.0.9/main", username="old", password="old"
    )
    migration = importlib.import_module("cameras.migrations.0003_stream_urls_without_credentials")

    migration.credentials_out_of_urls(apps, None)

    camera.refresh_from_db()
    assert camera.main_stream_url == "rtsp://10.0.0.9/main"
    # The URL's were the ones in use: they took precedence over the fields.
    assert (camera.username, camera.password) == ("svc", "s3cret")
