"""The PWA's three files that must live at the site's root: the shell, the service worker
(its scope is the folder it is served from) and the manifest. Everything else it loads is
under /static/; all data is behind the API."""

from __future__ import annotations

import hashlib
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import get_conditional_response
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_safe

DIST = Path(settings.BASE_DIR) / "frontend" / "dist"

# The shell loads only our own files; video plays from blob: URLs (hls.js, a blob: worker).
SHELL_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # Leaflet positions its panes with style=""
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
)

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Responder: app not built</title></head>
<body><main><h1>The app is not built</h1>
<p>Run <code>make frontend</code> (or <code>make demo</code>), then reload this page.</p>
<p>The <a href="/api/v1/docs/">API</a> and the <a href="/admin/">admin</a> work meanwhile.</p>
</main></body></html>"""


def built_file(
    request: HttpRequest, name: str, content_type: str, fill: dict[bytes, bytes] | None = None
) -> HttpResponse:
    """A file of frontend/dist that every request must revalidate: a new release is seen
    at the next load, and an unchanged one costs a 304. `fill` replaces placeholders."""
    try:
        body = (DIST / name).read_bytes()
    except FileNotFoundError:
        return HttpResponse(NOT_BUILT, status=503, headers={"Retry-After": "60"})
    for placeholder, value in (fill or {}).items():
        body = body.replace(placeholder, value)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        body, content_type=content_type
    )
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
@gzip_page
def shell(request: HttpRequest) -> HttpResponse:
    # /?event=<id> (a tapped notification) is the same shell: the app reads the query.
    # The app shows saved data offline only while the server could still hold the session.
    idle = str(settings.SESSION_COOKIE_AGE).encode()
    response = built_file(
        request, "index.html", "text/html; charset=utf-8", {b"__SESSION_IDLE__": idle}
    )
    if response.status_code != 503:
        response["Content-Security-Policy"] = SHELL_POLICY
    return response


@require_safe
@gzip_page
def service_worker(request: HttpRequest) -> HttpResponse:
    response = built_file(request, "sw.js", "text/javascript; charset=utf-8")
    response["Service-Worker-Allowed"] = "/"
    return response


@require_safe
def manifest(request: HttpRequest) -> HttpResponse:
    return built_file(request, "manifest.webmanifest", "application/manifest+json")
