from django.urls import path

from responder.recording.api import HoldDetail, HoldList, RecordingStatus

urlpatterns = [
    path("recording/status", RecordingStatus.as_view(), name="recording-status"),
    path("holds", HoldList.as_view(), name="holds"),
    path("holds/<int:hold_id>", HoldDetail.as_view(), name="hold"),
]
