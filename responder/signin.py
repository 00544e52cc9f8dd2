"""Signing in: password and second factor, first-sign-in enrolment, lockout, audit."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import segno
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from responder.audit import audit_record
from responder.models import Outcome, SignInState

BACKUP_CODES = 10
ENROLMENT_DEVICE_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup codes"


class Result(enum.StrEnum):
    SIGNED_IN = "signed_in"
    INVALID = "invalid_credentials"
    LOCKED = "account_locked"
    ENROLMENT_REQUIRED = "enrolment_required"


MESSAGES = {
    Result.INVALID: "Wrong username, password or one-time code.",
    Result.LOCKED: (
        "This account is locked after too many failed sign-ins. Call district IT to unlock it."
    ),
    Result.ENROLMENT_REQUIRED: (
        "Set up your authenticator app: scan the QR code, then sign in again "
        "with the code it shows."
    ),
}


@dataclass(frozen=True)
class Enrolment:
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class SignIn:
    result: Result
    user: AbstractBaseUser | None = None
    device: Device | None = None
    enrolment: Enrolment | None = None
    backup_codes: list[str] = field(default_factory=list)


def signin_attempt(*, request: HttpRequest, username: str, password: str, otp: str) -> SignIn:
    """Check both factors and, if they pass, sign the session in and mark it verified."""
    sign_in = signin_verify(request=request, username=username, password=password, otp=otp)
    if sign_in.result is Result.SIGNED_IN:
        # django_otp's user_logged_in receiver stores the device in the session;
        # responder.signals stamps SIGNED_IN_AT for the 12 h cap.
        sign_in.user.otp_device = sign_in.device
        auth.login(request, sign_in.user)
    return sign_in


def signin_verify(*, request: HttpRequest, username: str, password: str, otp: str) -> SignIn:
    """Both factors, without touching the session (the admin's login view logs in itself)."""
    claimed = _user_named(username)
    if claimed is None:
        auth.authenticate(request, username=username, password=password)  # same timing
        return _failure(request, None, username, "password")
    with transaction.atomic():
        # The account's row stays locked while both factors are checked: one attempt at a
        # time per account, so parallel guesses cannot outrun the lockout.
        state = _state_for_update(claimed)
        if state.locked_at is not None:
            # Before the password, so a locked account is no oracle for guessing it.
            _audit_failure(request, claimed, username, "locked")
            return SignIn(Result.LOCKED, user=claimed)
        user = auth.authenticate(request, username=username, password=password)
        if user is None:
            return _failure(request, state, username, "password")
        if not user_has_device(user, confirmed=True):
            return _enrol(request, user, state, otp)
        device = _device_matching(user, otp)
        if device is None:
            return _failure(request, state, username, "code")
        return _success(request, user, state, device)


def account_is_locked(user: AbstractBaseUser) -> bool:
    return SignInState.objects.filter(user=user, locked_at__isnull=False).exists()


def account_unlock(
    *, user: AbstractBaseUser, by: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    SignInState.objects.filter(user=user).update(failures=0, first_failure_at=None, locked_at=None)
    audit_record(action="account.unlocked", request=request, user=by, obj=user)


def signout(*, request: HttpRequest) -> None:
    if request.user.is_authenticated:
        audit_record(action="signout", request=request, user=request.user)
    auth.logout(request)


def _user_named(username: str) -> AbstractBaseUser | None:
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        return None


def _device_matching(user: AbstractBaseUser, otp: str) -> Device | None:
    token = otp.strip().replace(" ", "")
    if not token:
        return None
    # select_for_update: two requests racing with one code must not both pass.
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(token):
                return device
    return None


def _enrol(request: HttpRequest, user: AbstractBaseUser, state: SignInState, otp: str) -> SignIn:
    """First sign-in: an unconfirmed TOTP device, confirmed by the first code it produces."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=ENROLMENT_DEVICE_NAME, confirmed=False)
    enrolment = Enrolment(otpauth_uri=device.config_url, qr_svg=_qr_svg(device.config_url))
    token = otp.strip().replace(" ", "")
    if not token:
        # The password was right: no failure, but no session either until the code comes.
        return SignIn(Result.ENROLMENT_REQUIRED, user=user, enrolment=enrolment)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        if not device.verify_token(token):
            failed = _failure(request, state, user.get_username(), "enrolment code")
            return SignIn(failed.result, user=user, enrolment=enrolment)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = backup_codes_create(user=user)
    audit_record(action="device.enrolled", request=request, user=user, obj=device)
    signed_in = _success(request, user, state, device)
    return SignIn(signed_in.result, user=user, device=device, backup_codes=codes)


def backup_codes_create(*, user: AbstractBaseUser) -> list[str]:
    """A fresh set of static codes, replacing any earlier set; shown once, stored as issued."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _qr_svg(uri: str) -> str:
    return segno.make(uri, error="m").svg_inline(scale=4, border=2)


def _success(
    request: HttpRequest, user: AbstractBaseUser, state: SignInState, device: Device
) -> SignIn:
    state.failures, state.first_failure_at = 0, None
    state.save(update_fields=["failures", "first_failure_at"])
    details = {"device": device.persistent_id}
    if isinstance(device, StaticDevice):
        details["backup_codes_left"] = device.token_set.count()
    audit_record(action="signin", request=request, user=user, details=details)
    return SignIn(Result.SIGNED_IN, user=user, device=device)


def _state_for_update(user: AbstractBaseUser) -> SignInState:
    state, _ = SignInState.objects.select_for_update().get_or_create(user=user)
    state.user = user
    return state


def _failure(
    request: HttpRequest, state: SignInState | None, username: str, reason: str
) -> SignIn:
    """Count a failure (wrong password or code alike) and lock at the limit."""
    user = state.user if state is not None else None
    _audit_failure(request, user, username, reason)
    if state is None:
        return SignIn(Result.INVALID)
    now = timezone.now()
    if (
        state.first_failure_at is None
        or now - state.first_failure_at > settings.LOGIN_FAILURE_WINDOW
    ):
        state.failures, state.first_failure_at = 0, now
    state.failures += 1
    if state.failures >= settings.LOGIN_FAILURE_LIMIT:
        state.locked_at = now
    state.save()
    if state.locked_at is None:
        return SignIn(Result.INVALID, user=user)
    audit_record(
        action="account.locked",
        request=request,
        user=user,
        obj=user,
        outcome=Outcome.DENIED,
        details={"failures": state.failures},
    )
    return SignIn(Result.LOCKED, user=user)


def _audit_failure(
    request: HttpRequest, user: AbstractBaseUser | None, username: str, reason: str
) -> None:
    audit_record(
        action="signin.failed",
        request=request,
        # AnonymousUser, not None: an unknown name must not fall back to request.user.
        user=user or AnonymousUser(),
        username=username,
        outcome=Outcome.DENIED if reason == "locked" else Outcome.FAILURE,
        details={"reason": reason},
    )
