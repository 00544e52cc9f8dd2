"""The API's schema and its explorer, for verified users only (SERVE_PERMISSIONS)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response


class JsonRefusals:
    """A refusal is the API's JSON `detail`, not a YAML document or an HTML page."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response


class SchemaView(JsonRefusals, SpectacularAPIView):
    pass


class DocsView(JsonRefusals, SpectacularSwaggerView):
    pass
