"""The admin behind the same sign-in as the API: both factors, lockout and audit."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django_otp.admin import OTPAdminSite

from responder.signin import MESSAGES, Result, signin_verify


class SignInForm(AdminAuthenticationForm):
    otp = forms.CharField(
        label="One-time code",
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    enrolment = None

    def clean(self) -> dict:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return self.cleaned_data
        if not self._is_staff(username):
            # Same words as a wrong password, and the password is never tried here.
            raise self.get_invalid_login_error()
        sign_in = signin_verify(
            request=self.request,
            username=username,
            password=password,
            otp=self.cleaned_data.get("otp", ""),
        )
        if sign_in.result is not Result.SIGNED_IN:
            self.enrolment = sign_in.enrolment
            raise ValidationError(MESSAGES[sign_in.result], code=sign_in.result.value)
        # LoginView logs in next; django_otp's user_logged_in receiver keeps this device.
        sign_in.user.otp_device = sign_in.device
        self.user_cache = sign_in.user
        if sign_in.backup_codes:
            codes = " ".join(sign_in.backup_codes)
            messages.warning(
                self.request, f"Your backup codes (each works once; shown only now): {codes}"
            )
        return self.cleaned_data

    @staticmethod
    def _is_staff(username: str) -> bool:
        user_model = get_user_model()
        lookup = {user_model.USERNAME_FIELD: username, "is_staff": True, "is_active": True}
        return user_model._default_manager.filter(**lookup).exists()


class ResponderAdminSite(OTPAdminSite):
    """Every admin page needs a session verified by a second factor (OTPAdminSite)."""

    login_form = SignInForm
    login_template = "admin/responder_login.html"
    site_header = "Responder administration"
    site_title = "Responder"

    def __init__(self, name: str = "admin") -> None:
        # OTPAdminSite names itself "otpadmin"; as the default site it must be "admin".
        super().__init__(name)
