from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class IsVerified(BasePermission):
    """Signed in, active, and past the second factor in this session."""

    message = "Sign in with your password and one-time code."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        # is_verified: added to the user by django-otp's OTPMiddleware.
        return bool(user and user.is_authenticated and user.is_active and user.is_verified())  # type: ignore[attr-defined]
