"""The access systems' webhook: an alarm's way in over HTTP (connectors are the other)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accesslog.directory import directory
from accesslog.serializers import EventIngestSerializer
from accesslog.signatures import HEADER, verify
from responder.alarms.services import event_ingest

MAX_EVENT_BYTES = 64 * 1024
MAX_EVENT_DEPTH = 16


class JsonAnswer(BaseContentNegotiation):
    """JSON whatever the sender's Accept says: an access system reads nothing else, and
    DRF's negotiation (parsing Accept, trying each renderer) cost ~3% of an ingest."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)  # unused: the view reads the raw body, the bytes signed

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))  # the view's one: JSON
        return renderer, renderer.media_type


class EventIngest(APIView):
    """A webhook for access systems, not people: the HMAC signature is its authentication,
    so no session, no CSRF token and no second factor apply here."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonAnswer

    @extend_schema(
        summary="Receive one signed access-control event",
        request=EventIngestSerializer,
        responses={
            202: OpenApiTypes.OBJECT,
            200: OpenApiTypes.OBJECT,
            401: OpenApiResponse(description=f"{HEADER} missing, wrong or stale."),
            413: OpenApiResponse(description="A body over 64 KiB."),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        lookups = directory()
        system = lookups.access_system(slug)
        if system is None:
            raise Http404("No access system has this slug.")
        body = _body(request)
        if body is None:
            return Response({"detail": "Over 64 KiB."}, status=413)
        if not verify(request.headers.get(HEADER), body, system.webhook_secrets()):
            return Response(
                {"detail": f"Missing, wrong or stale {HEADER}."},
                status=401,
                headers={"WWW-Authenticate": HEADER},
            )
        payload, problem = _payload(body)
        if problem:
            return Response({"detail": problem, "body": [problem]}, status=400)
        event, created = event_ingest(system=system, payload=payload, lookups=lookups)
        return Response({"id": event.id, "seq": event.seq}, status=202 if created else 200)


def _body(request: Request) -> bytes | None:
    """The raw body (the signature covers its exact bytes), or None when too large.

    Content-Length is checked before reading anything; the bytes read are counted too,
    since the header may be absent (chunked) or lie.
    """
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_EVENT_BYTES:
        return None
    try:
        body = request.body
    except RequestDataTooBig:
        return None
    return body if len(body) <= MAX_EVENT_BYTES else None


def _payload(body: bytes) -> tuple[object, str]:
    """The parsed JSON, or the reason it is refused. An event is a shallow object: a deep
    one is an attack on every recursive walk after this (parser, validation, storage)."""
    try:
        # RFC 8259 §8.1: JSON between systems is UTF-8 without a BOM. json.loads would take
        # bytes in UTF-16 or UTF-32 too, which no access system sends: refused, not guessed.
        payload = json.loads(body.decode("utf-8"))
    except RecursionError:
        return None, f"JSON nested deeper than {MAX_EVENT_DEPTH} levels."
    except ValueError:  # also bad UTF-8 and a BOM
        return None, "Not valid JSON (UTF-8, no BOM)."
    if _depth(payload) > MAX_EVENT_DEPTH:
        return None, f"JSON nested deeper than {MAX_EVENT_DEPTH} levels."
    return payload, ""


def _depth(value: object) -> int:
    """How many objects and arrays deep `value` goes, counted without recursion."""
    deepest, level = 0, [value]
    while level := [item for item in level if isinstance(item, dict | list)]:
        deepest += 1
        if deepest > MAX_EVENT_DEPTH:
            break
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return deepest
