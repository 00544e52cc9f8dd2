from django.urls import path
from rest_framework.routers import SimpleRouter

from accesslog.api import DoorViewSet, EventAckView, EventList

router = SimpleRouter()
router.register("doors", DoorViewSet, basename="door")

# Other endpoints: append to this list.
urlpatterns: list = [
    *router.urls,
    path("events/", EventList.as_view(), name="event-list"),
    path("events/<int:pk>/ack", EventAckView.as_view(), name="event-ack"),
]
