"""The API's schema and its explorer, for verified users only (SERVE_PERMISSIONS)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

if TYPE_CHECKING:
    from rest_framework.views import APIView

    _View = APIView  # a mixin of API views: super() is the view's
else:
    _View = object


class JsonRefusals(_View):
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


# What DRF answers for every view alike, so the schema says it once for all of them.
REFUSAL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,  # a 400 also names each field at fault
}


def refusals_documented(result: dict, **kwargs: object) -> dict:
    """drf-spectacular's postprocessing hook: the refusals any view may answer are in its
    schema (a client generated from the schema, or schemathesis, expects them).

    400 wherever input is parsed (a body, query parameters, or a DELETE's body, which the
    schema cannot show); 403 where a session is needed (none, no second factor, or a
    capability missing); 404 where the path names an object (absent or out of scope).
    """
    for operations in result["paths"].values():
        for method, operation in operations.items():
            parameters = [p["in"] for p in operation.get("parameters", [])]
            if method != "get" or "query" in parameters:
                _refusal(
                    operation, "400", "The input is not valid: `detail` and each field say why."
                )
            if {} not in operation.get("security", [{}]):
                _refusal(operation, "403", "Not signed in with a second factor, or not allowed.")
            if "path" in parameters:
                _refusal(operation, "404", "No such object, or not in the user's scope.")
    return result


def _refusal(operation: dict, status: str, description: str) -> None:
    content = {"application/json": {"schema": REFUSAL}}
    operation["responses"].setdefault(status, {"description": description, "content": content})


def api_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's handler404: under /api/ a path no view matches (a slug with a `%0F`) is the
    API's JSON 404, as its schema says; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
