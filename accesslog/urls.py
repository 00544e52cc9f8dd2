from django.urls import path
from rest_framework.routers import SimpleRouter

from accesslog.api import DoorViewSet, EventAckView, EventIngest, EventList

router = SimpleRouter()
router.register("doors", DoorViewSet, basename="door")

# Other endpoints: append to this list.
urlpatterns: list = [
    *router.urls,
    path("access/<slug:slug>/events", EventIngest.as_view(), name="event-ingest"),
    path("events/", EventList.as_view(), name="event-list"),
    path("events/<int:pk>/ack", EventAckView.as_view(), name="event-ack"),
]
