from django.urls import path

from responder.alarms.api import EventIngest

urlpatterns: list = [
    path("access/<slug:slug>/events", EventIngest.as_view(), name="event-ingest"),
]
