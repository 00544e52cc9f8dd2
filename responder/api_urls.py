from django.urls import path  # noqa: F401
from rest_framework.routers import SimpleRouter

from responder.core.api import Login, Logout, Me
from responder.incidents.api import EmergencyGrantList, IncidentCustody, IncidentViewSet
from responder.push.api import PushSubscriptions, VapidKey

incident_router = SimpleRouter()
incident_router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns: list = [
    path("auth/login", Login.as_view(), name="auth-login"),
    path("auth/logout", Logout.as_view(), name="auth-logout"),
    path("auth/me", Me.as_view(), name="auth-me"),
    *incident_router.urls,
    path("incidents/<int:pk>/custody", IncidentCustody.as_view(), name="incident-custody"),
    path("emergency-grants", EmergencyGrantList.as_view(), name="emergency-grants"),
    path("push/subscriptions", PushSubscriptions.as_view(), name="push-subscriptions"),
    path("push/vapid-key", VapidKey.as_view(), name="push-vapid-key"),
]
