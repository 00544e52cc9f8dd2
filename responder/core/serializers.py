from django.contrib.auth.models import User
from rest_framework import serializers

from responder.core.access import capabilities


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    # TOTP digits or a backup code; empty on the first sign-in, before enrolment.
    otp = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    # The one-time code district IT issues for the first device; only for enrolment.
    enrolment_code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default=""
    )


class UserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()
    email = serializers.CharField()
    is_staff = serializers.BooleanField()


class MeSerializer(serializers.Serializer):
    user = UserSerializer(source="*")
    groups = serializers.SerializerMethodField()
    capabilities = serializers.SerializerMethodField()

    def get_groups(self, user: User) -> list[str]:
        return sorted(user.groups.values_list("name", flat=True))

    def get_capabilities(self, user: User) -> list[str]:
        return sorted(capabilities(user))


class EnrolmentSerializer(serializers.Serializer):
    otpauth_uri = serializers.CharField()
    qr_svg = serializers.CharField()


class SignInErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    enrolment = EnrolmentSerializer(required=False)


class ThrottledSerializer(serializers.Serializer):
    detail = serializers.CharField()


class SignedInSerializer(MeSerializer):
    csrf_token = serializers.CharField(read_only=True)
    backup_codes = serializers.ListField(child=serializers.CharField(), required=False)
