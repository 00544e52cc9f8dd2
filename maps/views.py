"""Floor and site plan files, to the users whose scope covers their floor or campus."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_safe

from maps.models import Building, Campus, Floor
from maps.plans import CONTENT_TYPES, plan_extension

# A plan is a picture: nothing in it may run, load or navigate, even opened on its own.
PLAN_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


@require_safe
def plan(request: HttpRequest, name: str) -> FileResponse:
    """Like every object outside the scope, an unseen plan is a 404, never a 403."""
    path = f"plans/{name}"
    if plan_extension(name) not in CONTENT_TYPES or not _may_see(request, path):
        raise Http404("No such plan.")
    try:
        file = default_storage.open(path)
    except FileNotFoundError:
        raise Http404("No such plan.") from None
    response = FileResponse(file, content_type=CONTENT_TYPES[plan_extension(name)])
    response["Content-Security-Policy"] = PLAN_POLICY
    response["X-Content-Type-Options"] = "nosniff"
    # The name hashes the content: a new plan is a new URL, so this one never changes.
    # Private: it is one user's to see, no shared cache may keep it.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


def _may_see(request: HttpRequest, path: str) -> bool:
    user = request.user
    # is_verified: added to the user by django-otp's OTPMiddleware.
    if not (user.is_authenticated and user.is_active and user.is_verified()):  # type: ignore[attr-defined]
        return False
    buildings = Building.objects.visible_to(user)
    return (
        Floor.objects.filter(plan=path, building__in=buildings).exists()
        or Campus.objects.visible_to(user).filter(site_plan=path).exists()
    )
