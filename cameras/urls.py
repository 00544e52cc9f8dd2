from django.urls import path
from rest_framework.routers import SimpleRouter

from cameras import hls
from cameras.api import CameraViewSet
from cameras.live_api import LiveView, SnapshotView

router = SimpleRouter()
router.register("cameras", CameraViewSet, basename="camera")

live = "cameras/<int:camera_id>/live"
urlpatterns: list = [
    *router.urls,
    path(live, LiveView.as_view(), name="camera-live"),
    path(f"{live}/<str:profile>/index.m3u8", hls.playlist, name="camera-live-playlist"),
    path(f"{live}/<str:profile>/<str:name>", hls.segment, name="camera-live-segment"),
    path("cameras/<int:camera_id>/snapshot", SnapshotView.as_view(), name="camera-snapshot"),
]
