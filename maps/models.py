from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import models

from maps.plans import (
    PLAN_EXTENSIONS,
    plan_sanitise,
    plan_size,
    plan_upload_to,
    validate_plan,
    validate_plan_labels,
)
from responder.core.access import scope_q
from responder.core.capabilities import VIEWING, Capability

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


# Text inside a plan's image shrinks with it (6 px on a phone); these names do not.
LABELS_HELP = (
    'Names the app draws over the plan, readable at any zoom: [{"text": "Room 101", '
    '"x": 300, "y": 200, "width": 180}] in plan coordinates; with a width (the room\'s), '
    "a name hides when it no longer fits."
)


class District(models.Model):
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class CampusQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> CampusQuerySet:
        return self.filter(id__in=Building.objects.visible_to(user).values("campus"))


class Campus(models.Model):
    district = models.ForeignKey(District, on_delete=models.PROTECT, related_name="campuses")
    name = models.CharField(max_length=200, unique=True)
    short_name = models.CharField(max_length=20, blank=True)
    site_plan = models.FileField(upload_to=plan_upload_to, validators=[validate_plan], blank=True)
    site_plan_width = models.PositiveIntegerField(null=True, editable=False)
    site_plan_height = models.PositiveIntegerField(null=True, editable=False)
    labels = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_plan_labels],
        help_text=LABELS_HELP,
    )

    objects = CampusQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "campuses"

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.labels = self.labels or []  # the admin's cleared box reads as None
        plan_sanitise(self.site_plan)
        self.site_plan_width, self.site_plan_height = _plan_size(self.site_plan)
        super().save(*args, **kwargs)


class BuildingQuerySet(models.QuerySet):
    def visible_to(self, user: User | AnonymousUser) -> BuildingQuerySet:
        """Buildings on the user's map: any grant over the place, or a camera they may see."""
        granted = scope_q(user, *Capability, building="id")
        if not granted:  # district-wide: Q() would vanish from the OR below
            return self.all()
        # Camera.objects.visible_to's rule, read from the building through its cameras (a
        # reverse relation: places import no devices). Grants without tags are in `granted`.
        cameras = scope_q(user, *VIEWING, building="id", tags="cameras__tags")
        # Through the tag join a building matches once per tag: select ids, not rows.
        return self.filter(id__in=Building.objects.filter(granted | cameras).values("id"))


class Building(models.Model):
    campus = models.ForeignKey(Campus, on_delete=models.PROTECT, related_name="buildings")
    name = models.CharField(max_length=200)
    # Where the building stands on its campus site plan, in site-plan coordinates.
    site_x = models.FloatField(null=True, blank=True)
    site_y = models.FloatField(null=True, blank=True)

    objects = BuildingQuerySet.as_manager()

    class Meta:
        ordering = ["campus__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campus", "name"], name="building_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class Floor(models.Model):
    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="floors")
    name = models.CharField(max_length=100)
    level = models.IntegerField(default=1, help_text="Sort order: 0 ground, -1 basement.")
    plan = models.FileField(
        upload_to=plan_upload_to,
        validators=[validate_plan],
        help_text=f"Floor plan image ({', '.join(PLAN_EXTENSIONS)}).",
    )
    plan_width = models.PositiveIntegerField(null=True, editable=False)
    plan_height = models.PositiveIntegerField(null=True, editable=False)
    labels = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_plan_labels],
        help_text=LABELS_HELP,
    )

    class Meta:
        ordering = ["building", "level"]
        constraints = [
            models.UniqueConstraint(fields=["building", "level"], name="floor_level_unique")
        ]

    def __str__(self) -> str:
        return f"{self.building} – {self.name}"

    def save(self, *args, **kwargs) -> None:
        self.labels = self.labels or []  # the admin's cleared box reads as None
        plan_sanitise(self.plan)
        self.plan_width, self.plan_height = _plan_size(self.plan)
        super().save(*args, **kwargs)


class Placed(models.Model):
    """Something placed at (x, y) on a floor plan of its building."""

    building = models.ForeignKey(Building, on_delete=models.PROTECT, related_name="%(class)ss")
    floor = models.ForeignKey(
        Floor, on_delete=models.SET_NULL, null=True, blank=True, related_name="%(class)ss"
    )
    x = models.FloatField(null=True, blank=True, help_text="Plan coordinates, from the left.")
    y = models.FloatField(null=True, blank=True, help_text="Plan coordinates, from the top.")

    class Meta:
        abstract = True

    def clean(self) -> None:
        super().clean()
        if self.floor_id and self.floor and self.floor.building_id != self.building_id:
            raise ValidationError({"floor": "The floor must be in the same building."})
        if (self.x is None) != (self.y is None):
            raise ValidationError("Give both x and y, or neither.")
        if self.x is not None and not self.floor_id:
            raise ValidationError({"floor": "A placement needs a floor."})

    @property
    def placement(self) -> dict | None:
        if self.floor_id is None or self.x is None:
            return None
        return {"floor": self.floor_id, "x": self.x, "y": self.y}


def _plan_size(field: models.fields.files.FieldFile) -> tuple[int | None, int | None]:
    if not field:
        return None, None
    return plan_size(field)
