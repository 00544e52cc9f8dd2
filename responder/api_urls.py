from django.urls import path  # noqa: F401
from rest_framework.routers import SimpleRouter

from responder.api import Login, Logout, Me
from responder.incidents_api import EmergencyGrantList, IncidentViewSet
from responder.push_api import PushSubscriptions, VapidKey

incident_router = SimpleRouter()
incident_router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns: list = [
    path("auth/login", Login.as_view(), name="auth-login"),
    path("auth/logout", Logout.as_view(), name="auth-logout"),
    path("auth/me", Me.as_view(), name="auth-me"),
    *incident_router.urls,
    path("emergency-grants", EmergencyGrantList.as_view(), name="emergency-grants"),
    path("push/subscriptions", PushSubscriptions.as_view(), name="push-subscriptions"),
    path("push/vapid-key", VapidKey.as_view(), name="push-vapid-key"),
]
