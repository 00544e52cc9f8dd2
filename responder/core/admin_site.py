"""The admin behind the same sign-in as the API: both factors, lockout and audit."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django_otp.admin import OTPAdminSite

from responder.core.signin import MESSAGES, Result, signin_throttled, signin_verify
from responder.core.throttle import MESSAGE as THROTTLED


class SignInForm(AdminAuthenticationForm):
    otp = forms.CharField(
        label="One-time code",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    enrolment_code = forms.CharField(
        label="Enrolment code from district IT (first sign-in only)",
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    enrolment = None

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return self.cleaned_data
        # The admin's LoginView always builds this form with its request.
        request = cast(HttpRequest, self.request)
        # Staff or not, known or not: the same steps, the same counting, the same words.
        sign_in = signin_verify(
            request=request,
            username=username,
            password=password,
            otp=self.cleaned_data.get("otp", ""),
            enrolment_code=self.cleaned_data.get("enrolment_code", ""),
            staff_only=True,
        )
        if sign_in.result is not Result.SIGNED_IN:
            self.enrolment = sign_in.enrolment
            raise ValidationError(MESSAGES[sign_in.result], code=sign_in.result.value)
        # LoginView logs in next; django_otp's user_logged_in receiver keeps this device.
        assert sign_in.user is not None  # SIGNED_IN always names its user
        sign_in.user.otp_device = sign_in.device  # type: ignore[attr-defined]
        self.user_cache = sign_in.user
        if sign_in.backup_codes:
            codes = " ".join(sign_in.backup_codes)
            messages.warning(
                request, f"Your backup codes (each works once; shown only now): {codes}"
            )
        return self.cleaned_data


class ResponderAdminSite(OTPAdminSite):
    """Every admin page needs a session verified by a second factor (OTPAdminSite)."""

    login_form = SignInForm
    login_template = "admin/responder_login.html"
    site_header = "Responder administration"
    site_title = "Responder"

    def __init__(self, name: str = "admin") -> None:
        # OTPAdminSite names itself "otpadmin"; as the default site it must be "admin".
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST" and signin_throttled(request=request):
            return HttpResponse(THROTTLED, status=429, content_type="text/plain; charset=utf-8")
        return super().login(request, extra_context)
