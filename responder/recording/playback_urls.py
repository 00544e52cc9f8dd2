from django.urls import path

from responder.recording import playback_hls
from responder.recording.playback_api import FrameView, PlaybackView, RecordingsView

camera = "cameras/<int:camera_id>"
recorded = f"{camera}/recorded/<str:name>"
urlpatterns: list = [
    path(f"{camera}/recordings", RecordingsView.as_view(), name="camera-recordings"),
    path(f"{camera}/recordings/frame", FrameView.as_view(), name="camera-recordings-frame"),
    path(f"{camera}/playback", PlaybackView.as_view(), name="camera-playback"),
    path(f"{recorded}/index.m3u8", playback_hls.playlist, name="camera-recorded-playlist"),
    path(
        f"{recorded}/rec<int:segment_id>.ts",
        playback_hls.recorded_file,
        name="camera-recorded-file",
    ),
    path(
        f"{recorded}/<str:file>", playback_hls.transcoded_segment, name="camera-recorded-segment"
    ),
]
