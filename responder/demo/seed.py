"""Writes the demo district. Every write goes through natural keys and compares first, so
a second run changes no row (and leaves no audit row)."""

from __future__ import annotations

import hashlib
import math
from typing import TypeVar

from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils.text import slugify

from accesslog.models import AccessSystem, Door, DoorCamera, SystemKind
from cameras.models import Camera, Tag, Vendor
from maps.models import Building, Campus, District, Floor
from maps.plans import plan_svg_clean
from responder.core import roles
from responder.core.models import IncidentRule
from responder.demo import drawing
from responder.demo.district import CAMPUSES, DISTRICT
from responder.demo.layout import BuildingSpec, CameraSpec, CampusSpec, floor_plan

M = TypeVar("M", bound=models.Model)

NEAREST = 3  # cameras linked to each door


def district_seed(*, camera_base_url: str) -> None:
    with transaction.atomic():
        district = upsert(District, {"name": DISTRICT}, {})
        system = upsert(
            AccessSystem,
            {"slug": "lenels2"},
            {"name": "LenelS2 OnGuard", "kind": SystemKind.ONGUARD},
        )
        panel = 0
        for campus_index, spec in enumerate(CAMPUSES):
            campus = _campus(district, spec)
            for building_index, building_spec in enumerate(spec.buildings):
                panel += 1
                building = upsert(
                    Building,
                    {"campus": campus, "name": building_spec.name},
                    {"site_x": building_spec.site[0], "site_y": building_spec.site[1]},
                )
                network = f"10.{10 + campus_index}.{building_index + 1}"
                _building(building, spec, building_spec, system, panel, network, camera_base_url)


def upsert(model: type[M], lookup: dict, values: dict) -> M:
    """get_or_create by a natural key, then save only the fields that differ."""
    obj, created = model._default_manager.get_or_create(**lookup, defaults=values)
    changed = [name for name, value in values.items() if getattr(obj, name) != value]
    if not created and changed:
        for name in changed:
            setattr(obj, name, values[name])
        obj.save()
    return obj


def _campus(district: District, spec: CampusSpec) -> Campus:
    campus = upsert(
        Campus,
        {"name": spec.name},
        {"district": district, "short_name": spec.short, "labels": drawing.site_labels(spec)},
    )
    _plan_set(campus, "site_plan", drawing.site_svg(spec))
    return campus


def _building(
    building: Building,
    campus_spec: CampusSpec,
    spec: BuildingSpec,
    system: AccessSystem,
    panel: int,
    network: str,
    base_url: str,
) -> None:
    device = 0
    for floor_spec in spec.floors:
        plan = floor_plan(campus_spec, spec, floor_spec)
        ground = floor_spec.level == min(f.level for f in spec.floors)
        lot = f"{campus_spec.short} {spec.parking}" if ground and spec.parking else ""
        floor = upsert(
            Floor,
            {"building": building, "level": floor_spec.level},
            {"name": floor_spec.name, "labels": drawing.floor_labels(plan, parking=lot)},
        )
        title = f"{campus_spec.short} {building.name} – {floor_spec.name}"
        _plan_set(floor, "plan", drawing.floor_svg(title, plan, parking=bool(lot)))
        cameras = [
            _camera(floor, spec, f"{network}.{floor.level * 40 + i + 1}", base_url)
            for i, spec in enumerate(plan.cameras)
        ]
        for door_spec in plan.doors:
            device += 1
            door = upsert(
                Door,
                {"system": system, "external_id": f"{panel}-{device}"},
                {
                    "name": door_spec.name,
                    "building": building,
                    "floor": floor,
                    "x": door_spec.x,
                    "y": door_spec.y,
                },
            )
            _door_cameras_set(door, _nearest(door, cameras))


def _plan_set(obj: Campus | Floor, field: str, content: bytes) -> None:
    # The same name plan_upload_to gives: an unchanged plan keeps its file and URL.
    content = plan_svg_clean(content)
    name = f"plans/{hashlib.sha256(content).hexdigest()[:20]}.svg"
    current = getattr(obj, field)
    if current.name == name and current.storage.exists(name):
        return
    if current.storage.exists(name):
        setattr(obj, field, name)
    else:
        setattr(obj, field, ContentFile(content, name="plan.svg"))
    obj.save()


def _camera(floor: Floor, spec: CameraSpec, address: str, base_url: str) -> Camera:
    outdoor = "exterior" in spec.tags
    vendor = Vendor.MOBOTIX if outdoor else Vendor.AXIS
    model = "M16B" if outdoor else ("M3086-V" if "hallway" in spec.tags else "P3265-LVE")
    main, sub = stream_urls(base_url, slugify(spec.name), vendor, address)
    camera = upsert(
        Camera,
        {"building": floor.building, "name": spec.name},
        {
            "floor": floor,
            "x": spec.x,
            "y": spec.y,
            "heading": spec.heading,
            "field_of_view": spec.field_of_view,
            "vendor": vendor,
            "model": model,
            "main_stream_url": main,
            "sub_stream_url": sub,
        },
    )
    tags = [Tag.objects.get_or_create(slug=slug)[0] for slug in spec.tags]
    if {t.id for t in camera.tags.all()} != {t.id for t in tags}:
        camera.tags.set(tags)
    return camera


def stream_urls(base_url: str, slug: str, vendor: str, address: str) -> tuple[str, str]:
    """Main and sub stream: the simulator's when base_url is set, else the camera's own."""
    base = base_url.rstrip("/")
    if base:
        main = f"{base}/{slug}/video.ts?size=1280x720&fps=15&kbps=1500&gop=15"
        if vendor == Vendor.MOBOTIX:  # MxPEG, as the camera sends by default
            return main, f"{base}/{slug}/faststream.jpg?stream=MxPEG&size=640x360&fps=5"
        return main, f"{base}/{slug}/video.ts?size=640x360&fps=10&kbps=250&gop=10"
    if vendor == Vendor.MOBOTIX:
        return (
            f"rtsp://{address}:554/stream0/mobotix.h264",
            f"http://{address}/control/faststream.jpg?stream=full&fps=5",
        )
    return (
        f"rtsp://{address}/axis-media/media.amp?resolution=1920x1080",
        f"rtsp://{address}/axis-media/media.amp?resolution=640x360&fps=10",
    )


def _nearest(door: Door, cameras: list[Camera]) -> list[Camera]:
    # Every demo camera and door is placed: x and y are set.
    def distance(camera: Camera) -> float:
        return math.dist((camera.x, camera.y), (door.x, door.y))  # type: ignore[arg-type]

    return sorted(cameras, key=lambda c: (distance(c), c.name))[:NEAREST]


def _door_cameras_set(door: Door, cameras: list[Camera]) -> None:
    current = list(door.door_cameras.order_by("rank").values_list("camera_id", flat=True))
    if current == [c.id for c in cameras]:
        return
    door.door_cameras.all().delete()
    DoorCamera.objects.bulk_create(
        DoorCamera(door=door, camera=camera, rank=rank) for rank, camera in enumerate(cameras)
    )


def incident_rule_seed() -> None:
    """A forced door or a duress alarm opens an incident: police and fire get live video."""
    rule = upsert(
        IncidentRule,
        {"name": "Forced door or duress"},
        {"event_types": ["door_forced", "duress"], "grant_hours": 4, "enabled": True},
    )
    groups = set(Group.objects.filter(name__in=[roles.POLICE, roles.FIRE]))
    if set(rule.responder_groups.all()) != groups:
        rule.responder_groups.set(groups)
