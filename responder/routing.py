from django.urls import path

from responder.alarms.consumers import EventsConsumer

websocket_urlpatterns: list = [
    # channels routes ASGI applications through Django's path(); its stubs want views.
    path("ws/events", EventsConsumer.as_asgi()),  # type: ignore[arg-type]
]
