from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from django.db import models

from cameras.models import Camera
from maps.models import Placed
from responder.capabilities import Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class SystemKind(models.TextChoices):
    ONGUARD = "onguard", "LenelS2 OnGuard"
    NETBOX = "netbox", "LenelS2 NetBox"
    GENERIC = "generic", "Generic"


class AccessSystem(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=20, choices=SystemKind.choices)
    webhook_secret = models.CharField(max_length=200, default=new_webhook_secret)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DoorQuerySet(models.QuerySet):
    def visible_to(
        self, user: AbstractBaseUser | AnonymousUser, *capabilities: Capability
    ) -> DoorQuerySet:
        from responder.access import scope_q

        return self.filter(scope_q(user, *capabilities, building="building"))


class Door(Placed):
    system = models.ForeignKey(AccessSystem, on_delete=models.PROTECT, related_name="doors")
    external_id = models.CharField(max_length=100, help_text="The door's id in its access system.")
    name = models.CharField(max_length=200)
    cameras = models.ManyToManyField(
        Camera, through="DoorCamera", blank=True, related_name="doors"
    )

    objects = DoorQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "external_id"], name="door_external_id_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class DoorCamera(models.Model):
    door = models.ForeignKey(Door, on_delete=models.CASCADE, related_name="door_cameras")
    camera = models.ForeignKey(Camera, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField(default=0, help_text="0 is the nearest camera.")

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["door", "camera"], name="door_camera_unique")
        ]

    def __str__(self) -> str:
        return f"{self.door} ← {self.camera} (#{self.rank})"
