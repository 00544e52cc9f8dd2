from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from maps.urls import plan_urlpatterns
from responder import frontend
from responder.api_docs import DocsView, SchemaView, api_not_found

api: list[URLPattern | URLResolver] = [
    # The access systems' webhook first: the busiest path, tried before every other pattern.
    path("", include("responder.alarms.urls")),
    path("", include("responder.api_urls")),
    path("", include("maps.urls")),
    path("", include("responder.maptree.urls")),
    path("", include("cameras.urls")),
    path("", include("accesslog.urls")),
    path("", include("responder.recording.urls")),
    path("", include("responder.recording.playback_urls")),
    path("", include("responder.evidence.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("", frontend.shell, name="shell"),
    path("sw.js", frontend.service_worker, name="service-worker"),
    path("manifest.webmanifest", frontend.manifest, name="manifest"),
    path("admin/", admin.site.urls),
    path("", include("responder.evidence.share_urls")),
    path("api/v1/", include(api)),
    # Plans only, each checked against the user's scope: nothing else under MEDIA_ROOT.
    path(settings.MEDIA_URL.lstrip("/"), include(plan_urlpatterns)),
]

handler404 = api_not_found
