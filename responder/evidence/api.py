"""REST views of evidence exports and their share links: validate, call services, render."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import FileResponse, HttpRequest, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cameras.tokens import EVIDENCE, TokenError, token_check, token_issue
from responder.core.access import signed_in
from responder.core.audit import audit_record
from responder.core.middleware import session_free
from responder.evidence import builder, services
from responder.evidence.models import Export, ExportStatus
from responder.evidence.serializers import (
    ExportCreatedSerializer,
    ExportRequestSerializer,
    ExportSerializer,
    ShareCreatedSerializer,
    ShareRequestSerializer,
)

ZIP = "zip"  # the token's "profile": what it opens


def _exports(request: Request):
    return (
        Export.objects.visible_to(signed_in(request.user))
        .select_related("created_by")
        .prefetch_related("cameras", "shares")
    )


def _export(request: Request, export_id: int) -> Export:
    return get_object_or_404(_exports(request), pk=export_id)


def _render(request: Request, exports: list[Export]) -> list[dict]:
    _stale_check(exports)
    downloads = {
        export.pk: _download_url(request, export)
        for export in exports
        if services.export_is_ready(export)
    }
    return list(ExportSerializer(exports, many=True, context={"downloads": downloads}).data)


def _stale_check(exports: list[Export]) -> None:
    # Besides beat's sweep: a build whose worker died shows failed as soon as it is read.
    stale = timezone.now() - builder.STALE_AFTER
    if any(e.status == ExportStatus.BUILDING and e.heartbeat_at and e.heartbeat_at < stale
           for e in exports):  # fmt: skip
        builder.exports_stale_fail()
        for export in exports:
            export.refresh_from_db(fields=["status", "progress", "failure", "path", "hold"])


def _download_url(request: Request, export: Export) -> str | None:
    try:
        token, _ = token_issue(
            user_id=signed_in(request.user).pk, camera_id=export.pk, profile=ZIP,
            session=request.session, kind=EVIDENCE,
        )  # fmt: skip
    except TokenError:
        return None
    path = reverse("evidence-download", args=[export.pk])
    return request.build_absolute_uri(f"{path}?token={token}")


class ExportList(APIView):
    @extend_schema(responses=ExportSerializer(many=True), summary="The exports in your scope")
    def get(self, request: Request) -> Response:
        return Response(_render(request, list(_exports(request))))

    @extend_schema(
        request=ExportRequestSerializer,
        responses={202: ExportCreatedSerializer, 404: OpenApiResponse(description="Out of scope")},
        summary="Export cameras x range as a verifiable zip, built in the background",
    )
    def post(self, request: Request) -> Response:
        form = ExportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        export, _ = services.export_create(
            user=signed_in(request.user), camera_ids=data["cameras"], start=data["start"],
            end=data["end"], reason=data["reason"], incident_id=data["incident"],
            request=request,
        )  # fmt: skip
        body = {"id": export.pk, "status": export.status}
        return Response(ExportCreatedSerializer(body).data, status=202)


class ExportDetail(APIView):
    @extend_schema(responses=ExportSerializer, summary="One export: status, progress, download")
    def get(self, request: Request, export_id: int) -> Response:
        return Response(_render(request, [_export(request, export_id)])[0])


class ShareList(APIView):
    @extend_schema(
        request=ShareRequestSerializer,
        responses={201: ShareCreatedSerializer, 409: OpenApiResponse(description="Not ready")},
        summary="A link for police: no account, expires, revocable",
    )
    def post(self, request: Request, export_id: int) -> Response:
        export = _export(request, export_id)
        form = ShareRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if not services.export_is_ready(export):
            return Response({"detail": "Only a ready export can be shared."}, status=409)
        share, token = services.share_create(
            export=export, user=signed_in(request.user), request=request, **form.validated_data
        )
        url = request.build_absolute_uri(reverse("evidence-share", args=[token]))
        body = {"id": share.pk, "url": url, "expires_at": share.expires_at}
        return Response(ShareCreatedSerializer(body).data, status=201)


class ShareDetail(APIView):
    @extend_schema(responses={204: None}, summary="Revoke a share link: it answers 410 at once")
    def delete(self, request: Request, export_id: int, share_id: int) -> Response:
        export = _export(request, export_id)
        share = get_object_or_404(export.shares.all(), pk=share_id)
        services.share_revoke(share=share, user=signed_in(request.user), request=request)
        return Response(status=204)


@extend_schema(
    parameters=[OpenApiParameter("token", str, required=True)],
    responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)},
    summary="The export's zip, by the signed URL its `download` gives",
)
@session_free
@require_GET
def download(request: HttpRequest, export_id: int) -> HttpResponseBase:
    try:
        claims = token_check(
            request.GET.get("token", ""), kind=EVIDENCE, camera_id=export_id, profile=ZIP
        )
    except TokenError as error:
        return JsonResponse({"detail": str(error)}, status=error.status)
    user = get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    export = Export.objects.visible_to(user).filter(pk=export_id).first() if user else None
    if user is None or export is None or not services.export_is_ready(export):
        return JsonResponse({"detail": "You may no longer download this export."}, status=403)
    audit_record(
        action="evidence.downloaded", request=request, user=user, obj=export,
        details={"file": "zip", "via": "account"},
    )  # fmt: skip
    return zip_response(export)


def zip_response(export: Export) -> FileResponse:
    path = Path(settings.EVIDENCE_ROOT) / export.path
    name = f"evidence-export-{export.pk}.zip"
    return FileResponse(path.open("rb"), as_attachment=True, filename=name)
