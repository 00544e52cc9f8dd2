"""The public share pages: outside /api/v1, no account, the token is the permission."""

from django.urls import path

from responder.evidence import share_views

urlpatterns = [
    path("evidence/s/<str:token>/", share_views.share_page, name="evidence-share"),
    path("evidence/s/<str:token>/<path:name>", share_views.share_file, name="evidence-share-file"),
]
