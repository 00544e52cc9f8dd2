from django.urls import path

from responder.consumers import EventsConsumer

websocket_urlpatterns: list = [
    path("ws/events", EventsConsumer.as_asgi()),
]
