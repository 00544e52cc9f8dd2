"""Sign-in for the PWA: password and one-time code in, a session cookie out."""

from __future__ import annotations

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from responder.core.serializers import (
    LoginSerializer,
    MeSerializer,
    SignedInSerializer,
    SignInErrorSerializer,
    ThrottledSerializer,
)
from responder.core.signin import (
    MESSAGES,
    Result,
    SignIn,
    signin_attempt,
    signin_throttled,
    signout,
)
from responder.core.throttle import Throttled

STATUS = {
    Result.INVALID: status.HTTP_401_UNAUTHORIZED,
    Result.ENROLMENT_REQUIRED: status.HTTP_401_UNAUTHORIZED,
    Result.ENROLMENT_STARTED: status.HTTP_401_UNAUTHORIZED,
    Result.ENROLMENT_CODE_INVALID: status.HTTP_401_UNAUTHORIZED,
    Result.LOCKED: status.HTTP_423_LOCKED,
}


class Login(APIView):
    # No session authentication, hence no CSRF token, before sign-in: the PWA has none
    # yet. Login CSRF (another site signing the browser into the attacker's account) is
    # still refused: only JSON is parsed, which an HTML form cannot send, and a
    # cross-origin fetch with a JSON body needs a CORS preflight this server never grants.
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(
        request=LoginSerializer,
        responses={
            200: SignedInSerializer,
            401: SignInErrorSerializer,
            423: SignInErrorSerializer,
            429: ThrottledSerializer,
        },
    )
    def post(self, request: Request) -> Response:
        # Counted before anything else, a malformed body too: a flood costs no hashing.
        if signin_throttled(request=request._request):
            raise Throttled()
        form = LoginSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        sign_in = signin_attempt(request=request._request, **form.validated_data)
        if sign_in.result is Result.SIGNED_IN:
            return Response(signed_in_body(request, sign_in))
        return Response(error_body(sign_in), status=STATUS[sign_in.result])


def signed_in_body(request: Request, sign_in: SignIn) -> dict:
    # auth.login rotated the CSRF token; the new one goes in the body and, by
    # CsrfViewMiddleware, in the cookie.
    body = {**MeSerializer(sign_in.user).data, "csrf_token": get_token(request._request)}
    if sign_in.backup_codes:
        body["backup_codes"] = sign_in.backup_codes
    return body


def error_body(sign_in: SignIn) -> dict:
    body: dict[str, object] = {"detail": MESSAGES[sign_in.result], "code": sign_in.result.value}
    if sign_in.enrolment is not None:
        body["enrolment"] = {
            "otpauth_uri": sign_in.enrolment.otpauth_uri,
            "qr_svg": sign_in.enrolment.qr_svg,
        }
    return body


class Logout(APIView):
    # Any session may end itself, verified or not; SessionAuthentication still demands
    # the CSRF token of a signed-in session, so no other site can sign it out.
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        signout(request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class Me(APIView):
    @extend_schema(responses=MeSerializer)
    def get(self, request: Request) -> Response:
        return Response(MeSerializer(request.user).data)
