from __future__ import annotations

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from responder.core.access import signed_in
from responder.push.services import (
    PushEndpointTaken,
    PushRefused,
    push_subscription_register,
    push_subscription_remove,
    vapid_public_key,
)

PUSH_OFF = "Notifications are not set up on this server."


class KeysSerializer(serializers.Serializer):
    p256dh = serializers.CharField(max_length=200)
    auth = serializers.CharField(max_length=100)


class SubscriptionSerializer(serializers.Serializer):
    """The browser's PushSubscription.toJSON()."""

    # Checked by push_subscription_register: https, a known push service, a public address.
    endpoint = serializers.CharField(max_length=1000)
    keys = KeysSerializer()
    expirationTime = serializers.IntegerField(required=False, allow_null=True)  # noqa: N815


class EndpointSerializer(serializers.Serializer):
    endpoint = serializers.URLField(max_length=1000)


class PushSubscriptions(APIView):
    @extend_schema(request=SubscriptionSerializer, responses={201: None, 400: None, 409: None})
    def post(self, request: Request) -> Response:
        form = SubscriptionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            push_subscription_register(
                user=signed_in(request.user),
                endpoint=form.validated_data["endpoint"],
                p256dh=form.validated_data["keys"]["p256dh"],
                auth=form.validated_data["keys"]["auth"],
                user_agent=request.headers.get("User-Agent", ""),
            )
        except PushEndpointTaken as error:
            return Response({"detail": error.detail}, status=status.HTTP_409_CONFLICT)
        except PushRefused as error:
            return Response({"detail": error.detail}, status=status.HTTP_400_BAD_REQUEST)
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(request=EndpointSerializer, responses={204: None})
    def delete(self, request: Request) -> Response:
        form = EndpointSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        if not push_subscription_remove(
            user=signed_in(request.user), endpoint=form.validated_data["endpoint"]
        ):
            raise Http404
        return Response(status=status.HTTP_204_NO_CONTENT)


class VapidKey(APIView):
    # The public key is public: the PWA needs it before it asks for a subscription.
    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: {"type": "object", "properties": {"key": {"type": "string"}}},
            404: OpenApiResponse(description="Push is off on this server (no VAPID key)."),
        }
    )
    def get(self, request: Request) -> Response:
        if not settings.PUSH_ENABLED:
            # Off by choice (PUSH_ENABLED=false, or production without a key): the PWA says
            # so plainly; a district turns it on with VAPID_PRIVATE_KEY.
            return Response({"detail": PUSH_OFF}, status=status.HTTP_404_NOT_FOUND)
        return Response({"key": vapid_public_key()})
