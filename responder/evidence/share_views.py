"""The page behind a share link: plain HTML, no account, no second factor. The link is a
capability URL: its token (256 bits, stored hashed) is the permission, until it expires
or is revoked (then 410, showing nothing). Every open and download is audited with time,
address and user agent; attempts are rate-limited per address."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from responder.core.audit import audit_record
from responder.core.middleware import session_free
from responder.core.throttle import MESSAGE, throttle_hit
from responder.evidence import manifest as m
from responder.evidence.api import zip_response
from responder.evidence.models import Share
from responder.evidence.services import export_is_ready, share_find

ZIP_NAME = "export.zip"


def _refusal(request: HttpRequest, status: int, text: str) -> HttpResponse:
    response = render(request, "evidence/refused.html", {"text": text}, status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _share(request: HttpRequest, token: str) -> Share | HttpResponse:
    if throttle_hit(request=request, scope="evidence-share", rate=settings.EVIDENCE_SHARE_RATE):
        return _refusal(request, 429, MESSAGE)
    share = share_find(token)
    if share is None or not export_is_ready(share.export):
        return _refusal(request, 404, "There is no shared evidence at this address.")
    if not share.usable:
        return _refusal(request, 410, "This link has expired or was revoked.")
    return share


def _archive(share: Share) -> zipfile.ZipFile:
    return zipfile.ZipFile(Path(settings.EVIDENCE_ROOT) / share.export.path)


@session_free
@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    share = _share(request, token)
    if isinstance(share, HttpResponse):
        return share
    with _archive(share) as archive:
        manifest = json.loads(archive.read(m.MANIFEST))
        files = [(info.filename, info.file_size) for info in archive.infolist()]
    audit_record(
        action="evidence.share_opened", request=request, obj=share.export,
        username="share link", details={"share": share.pk},
    )  # fmt: skip
    context = {
        "share": share,
        "export": share.export,
        "manifest": manifest,
        "files": files,
        "zip_name": ZIP_NAME,
    }
    response = render(request, "evidence/share.html", context)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token never leaves in a Referer
    return response


@session_free
@require_GET
def share_file(request: HttpRequest, token: str, name: str) -> HttpResponseBase:
    share = _share(request, token)
    if isinstance(share, HttpResponse):
        return share
    export = share.export
    if name == ZIP_NAME:
        response: HttpResponseBase = zip_response(export)
    else:
        archive = _archive(share)
        try:
            member = archive.open(name)
        except KeyError:
            raise Http404("No such file in this export.") from None
        finally:
            archive.close()  # the member keeps the file open until it is read
        download = Path(name).name
        response = FileResponse(member, as_attachment=True, filename=download)
    audit_record(
        action="evidence.downloaded", request=request, obj=export, username="share link",
        details={"file": name, "via": "share", "share": share.pk, "note": share.note},
    )  # fmt: skip
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
