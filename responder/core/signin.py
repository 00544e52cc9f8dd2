"""Signing in: password and second factor, enrolment with IT's code, lockout, audit."""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta

import segno
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user, user_has_device
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from responder.core.announce import it_warn
from responder.core.audit import audit_record, client_ip
from responder.core.models import (
    BackupCode,
    BackupCodeDevice,
    EnrolmentCode,
    Outcome,
    SignInState,
    code_digest,
)
from responder.core.throttle import throttle_hit

BACKUP_CODES = 10
ENROLMENT_DEVICE_NAME = "authenticator"
BACKUP_DEVICE_NAME = "backup codes"
CODE_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
# The session holding a pending enrolment: its secret never leaves that session.
PENDING_ENROLMENT = "pending_enrolment"
PENDING_ENROLMENT_SECONDS = 600
CODE_REASONS = {"code", "enrolment code"}


class Result(enum.StrEnum):
    SIGNED_IN = "signed_in"
    INVALID = "invalid_credentials"
    LOCKED = "account_locked"
    ENROLMENT_REQUIRED = "enrolment_required"
    ENROLMENT_STARTED = "enrolment_started"
    ENROLMENT_CODE_INVALID = "enrolment_code_invalid"


MESSAGES = {
    Result.INVALID: "Wrong username, password or one-time code.",
    Result.LOCKED: (
        "This account is locked for a few minutes after too many failed sign-ins. "
        "Try again later, or call district IT to unlock it now."
    ),
    Result.ENROLMENT_REQUIRED: (
        "Set up your authenticator app: type the enrolment code district IT gave you."
    ),
    Result.ENROLMENT_STARTED: (
        "Scan the QR code with your authenticator app, then sign in again with the code it shows."
    ),
    Result.ENROLMENT_CODE_INVALID: (
        "That enrolment code is wrong, used or expired. Ask district IT for a new one."
    ),
}


@dataclass(frozen=True)
class Enrolment:
    otpauth_uri: str
    qr_svg: str


@dataclass(frozen=True)
class SignIn:
    result: Result
    user: User | None = None
    device: Device | None = None
    enrolment: Enrolment | None = None
    backup_codes: list[str] = field(default_factory=list)


def signin_throttled(*, request: HttpRequest) -> bool:
    """Counts this attempt against the client's address (sign-in and enrolment alike)."""
    return throttle_hit(request=request, scope="signin", rate=settings.LOGIN_THROTTLE_RATE)


def signin_attempt(
    *, request: HttpRequest, username: str, password: str, otp: str, enrolment_code: str = ""
) -> SignIn:
    """Check both factors and, if they pass, sign the session in and mark it verified."""
    sign_in = signin_verify(
        request=request,
        username=username,
        password=password,
        otp=otp,
        enrolment_code=enrolment_code,
    )
    if sign_in.result is Result.SIGNED_IN:
        # django_otp's user_logged_in receiver stores the device in the session;
        # responder.core.signals stamps SIGNED_IN_AT for the 12 h cap.
        assert sign_in.user is not None  # SIGNED_IN always names its user
        sign_in.user.otp_device = sign_in.device  # type: ignore[attr-defined]
        auth.login(request, sign_in.user)
    return sign_in


def signin_verify(
    *,
    request: HttpRequest,
    username: str,
    password: str,
    otp: str,
    enrolment_code: str = "",
    staff_only: bool = False,
) -> SignIn:
    """Both factors, without touching the session's login (the admin's view logs in itself).

    A known name and an unknown one take the same steps: the same row lock, one password
    hash, the same counting and the same answers.
    """
    claimed = _user_named(username)
    with transaction.atomic():
        # The name's row stays locked while both factors are checked: one attempt at a
        # time per name, so parallel guesses cannot outrun the lockout.
        state = _state_for_update(username, claimed)
        if state.is_locked:
            # Before the password, so a locked account is no oracle for guessing it.
            _audit_failure(request, claimed, username, "locked")
            return SignIn(Result.LOCKED, user=claimed)
        user = auth.authenticate(request, username=username, password=password)
        if user is None:
            return _failure(request, state, username, "password")
        if staff_only and not user.is_staff:
            # Counted and answered as a wrong password, after the same hash.
            return _failure(request, state, username, "not staff")
        if not user_has_device(user, confirmed=True):
            return _enrol(request, user, state, otp, enrolment_code)
        device = _device_matching(user, otp)
        if device is None:
            return _failure(request, state, username, "code")
        return _success(request, user, state, device)


def account_is_locked(user: User) -> bool:
    return SignInState.objects.locked().filter(user=user).exists()


def account_unlock(*, user: User, by: User, request: HttpRequest | None = None) -> None:
    SignInState.objects.filter(user=user).update(
        password_failures=0, code_failures=0, first_failure_at=None, locked_at=None
    )
    audit_record(action="account.unlocked", request=request, user=by, obj=user)


def signin_states_prune() -> int:
    """Drops the rows of names no user has, once their count and their lock have run out."""
    stale = timezone.now() - max(settings.LOGIN_FAILURE_WINDOW, settings.LOGIN_LOCK)
    deleted, _ = (
        SignInState.objects.filter(user__isnull=True)
        .filter(Q(first_failure_at__isnull=True) | Q(first_failure_at__lt=stale))
        .exclude(locked_at__gte=stale)
        .delete()
    )
    return deleted


def enrolment_code_issue(*, user: User, by: User, request: HttpRequest | None = None) -> str:
    """A one-time code for the user's first device, replacing any unused one; shown once."""
    code = _random_code(12)
    expires_at = timezone.now() + timedelta(hours=settings.ENROLMENT_CODE_HOURS)
    with transaction.atomic():
        EnrolmentCode.objects.filter(user=user, used_at__isnull=True).delete()
        EnrolmentCode.objects.create(
            user=user, digest=code_digest(code), issued_by=by, expires_at=expires_at
        )
        audit_record(
            action="enrolment_code.issued",
            request=request,
            user=by,
            obj=user,
            details={"expires_at": expires_at.isoformat()},
        )
    return code


def backup_codes_create(*, user: User) -> list[str]:
    """A fresh set of backup codes, replacing any earlier set; shown once, kept as digests."""
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name=BACKUP_DEVICE_NAME, confirmed=True)
    codes = [_random_code(16) for _ in range(BACKUP_CODES)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, digest=code_digest(code)) for code in codes
    )
    return codes


def signout(*, request: HttpRequest) -> None:
    if request.user.is_authenticated:
        audit_record(action="signout", request=request, user=request.user)
    auth.logout(request)


def _random_code(length: int) -> str:
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))
    return "-".join(code[i : i + 4] for i in range(0, length, 4))


def _user_named(username: str) -> User | None:
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        return None


def _normal(otp: str) -> str:
    return otp.strip().replace(" ", "")


def _device_matching(user: User, otp: str) -> Device | None:
    token = _normal(otp)
    if not token:
        return None
    # select_for_update: two requests racing with one code must not both pass.
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(token):
                return device
    return None


def _enrol(
    request: HttpRequest,
    user: User,
    state: SignInState,
    otp: str,
    enrolment_code: str,
) -> SignIn:
    """First sign-in: IT's code opens an enrolment in this session, with a fresh secret;
    the first code that secret produces, in the same session, confirms it."""
    pending = _pending_enrolment(request, user)
    token = _normal(otp)
    if token:
        if pending is None:
            # A code from a secret this session was never given.
            return _failure(request, state, user.get_username(), "code")
        return _enrol_confirm(request, user, state, pending, token)
    if not enrolment_code.strip():
        return SignIn(Result.ENROLMENT_REQUIRED, user=user)
    code = (
        EnrolmentCode.objects.usable()
        .filter(user=user, digest=code_digest(enrolment_code))
        .first()
    )
    if code is None:
        request.session.pop(PENDING_ENROLMENT, None)
        return _failure(
            request, state, user.get_username(), "enrolment code", Result.ENROLMENT_CODE_INVALID
        )
    key = random_hex(20)
    request.session[PENDING_ENROLMENT] = {
        "user": user.pk,
        "key": key,
        "code": code.pk,
        "at": time.time(),
    }
    return SignIn(Result.ENROLMENT_STARTED, user=user, enrolment=_enrolment(user, key))


def _pending_enrolment(request: HttpRequest, user: User) -> dict | None:
    pending = request.session.get(PENDING_ENROLMENT)
    if not pending or pending["user"] != user.pk:
        return None
    if time.time() - pending["at"] > PENDING_ENROLMENT_SECONDS:
        return None
    return pending


def _enrol_confirm(
    request: HttpRequest, user: User, state: SignInState, pending: dict, token: str
) -> SignIn:
    device = TOTPDevice(user=user, name=ENROLMENT_DEVICE_NAME, key=pending["key"])
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not (token.isdigit() and totp.verify(int(token), device.tolerance)):
        failed = _failure(request, state, user.get_username(), "code")
        return SignIn(failed.result, user=user, enrolment=_enrolment(user, pending["key"]))
    code = (
        EnrolmentCode.objects.select_for_update()
        .usable()
        .filter(pk=pending["code"], user=user)
        .first()
    )
    request.session.pop(PENDING_ENROLMENT, None)
    if code is None:
        return _failure(
            request, state, user.get_username(), "enrolment code", Result.ENROLMENT_CODE_INVALID
        )
    code.used_at = timezone.now()
    code.save(update_fields=["used_at"])
    device.confirmed, device.last_t, device.drift = True, totp.t(), totp.drift
    device.save()
    codes = backup_codes_create(user=user)
    audit_record(action="device.enrolled", request=request, user=user, obj=device)
    _notify_enrolled(request, user)
    signed_in = _success(request, user, state, device)
    return SignIn(signed_in.result, user=user, device=device, backup_codes=codes)


def _enrolment(user: User, key: str) -> Enrolment:
    uri = TOTPDevice(user=user, key=key).config_url
    return Enrolment(
        otpauth_uri=uri, qr_svg=segno.make(uri, error="m").svg_inline(scale=4, border=2)
    )


def _notify_enrolled(request: HttpRequest, user: User) -> None:
    if not user.email:
        return
    when = timezone.localtime().strftime("%Y-%m-%d %H:%M %Z")
    body = (
        f"An authenticator app was set up for your Responder account ({user.get_username()}) "
        f"at {when} from {client_ip(request) or 'an unknown address'}.\n\n"
        "If this was not you, call district IT now."
    )
    transaction.on_commit(
        lambda: send_mail(
            "Responder: a new sign-in device", body, None, [user.email], fail_silently=True
        )
    )


def _success(request: HttpRequest, user: User, state: SignInState, device: Device) -> SignIn:
    state.password_failures = state.code_failures = 0
    state.first_failure_at = state.locked_at = None
    state.save()
    details = {"device": device.persistent_id}
    if isinstance(device, BackupCodeDevice):
        details["backup_codes_left"] = device.codes.count()
    audit_record(action="signin", request=request, user=user, details=details)
    return SignIn(Result.SIGNED_IN, user=user, device=device)


def _state_for_update(username: str, user: User | None) -> SignInState:
    state, _ = SignInState.objects.select_for_update().get_or_create(username=username[:150])
    if user is not None and state.user_id != user.pk:
        state.user = user
        state.save(update_fields=["user"])
    if state.locked_at is not None and not state.is_locked:
        # The lock has run its time: a fresh count.
        state.password_failures = state.code_failures = 0
        state.first_failure_at = state.locked_at = None
        state.save()
    return state


def _failure(
    request: HttpRequest,
    state: SignInState,
    username: str,
    reason: str,
    result: Result = Result.INVALID,
) -> SignIn:
    """Count a failure, wrong codes apart from wrong passwords; lock at either limit."""
    user = state.user
    _audit_failure(request, user, username, reason)
    now = timezone.now()
    if (
        state.first_failure_at is None
        or now - state.first_failure_at > settings.LOGIN_FAILURE_WINDOW
    ):
        state.password_failures = state.code_failures = 0
        state.first_failure_at = now
    counter = "code_failures" if reason in CODE_REASONS else "password_failures"
    failures = getattr(state, counter) + 1
    setattr(state, counter, failures)
    if failures >= settings.LOGIN_FAILURE_LIMIT:
        state.locked_at = now
    state.save()
    if state.locked_at is None:
        return SignIn(result, user=user)
    _lock_announce(request, state, counter, failures)
    return SignIn(Result.LOCKED, user=user)


def _lock_announce(request: HttpRequest, state: SignInState, counter: str, failures: int) -> None:
    kind = "code" if counter == "code_failures" else "password"
    audit_record(
        action="account.locked",
        request=request,
        user=state.user or AnonymousUser(),
        username=state.username,
        obj=state.user,
        outcome=Outcome.DENIED,
        details={"failures": failures, "kind": kind},
    )
    minutes = int(settings.LOGIN_LOCK.total_seconds() // 60)
    who = state.username if state.user else f"{state.username} (no such user)"
    why = (
        "wrong one-time codes after the right password: the password may be known"
        if kind == "code"
        else "wrong passwords"
    )
    it_warn(
        kind="account.locked",
        text=f"Sign-in for {who} locked for {minutes} minutes after {failures} {why}.",
        details={
            "username": state.username,
            "user_id": state.user_id,
            "reason": kind,
            "locked_until": state.locked_until and state.locked_until.isoformat(),
            "ip": client_ip(request),
        },
    )


def _audit_failure(request: HttpRequest, user: User | None, username: str, reason: str) -> None:
    audit_record(
        action="signin.failed",
        request=request,
        # AnonymousUser, not None: an unknown name must not fall back to request.user.
        user=user or AnonymousUser(),
        username=username,
        outcome=Outcome.DENIED if reason == "locked" else Outcome.FAILURE,
        details={"reason": reason},
    )
