"""Create, rename and re-key an access system's doors from its own list (OnGuard readers,
NetBox portals), so district IT does not type keys by hand. `manage.py import_doors` and
the admin's *Import doors…* both call `doors_import`.

A preview is a plan and its digest; applying names the digest it previewed, and is refused
with the new plan if the controller's list (or our doors) changed in between, so what is
written is what was shown.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from http.client import HTTPException
from typing import TYPE_CHECKING

from django.db import models, transaction

from accesslog.connectors.base import TransientError
from accesslog.connectors.clients import (
    Connection,
    connection_from_env,
    connection_missing,
    door_list,
)
from accesslog.models import AccessSystem, Door, Event
from accesslog.services import VendorDoor, event_doors_link
from responder.core.audit import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.http import HttpRequest

    from maps.models import Building

# An admin page waits on the controller: give up well before gunicorn's 30 s worker timeout.
CONTROLLER_TIMEOUT = 10.0
ENV_FILE = "/etc/responder/responder.env"


def _max_length(name: str) -> int:
    field = Door._meta.get_field(name)
    assert isinstance(field, models.CharField) and field.max_length is not None
    return field.max_length


KEY_MAX, NAME_MAX = _max_length("external_id"), _max_length("name")


class DoorImportRefused(Exception):
    """Nothing was written; the message says why, in words for district IT."""


class CredentialsMissing(DoorImportRefused):
    def __init__(self, variables: list[str]) -> None:
        self.variables = variables
        super().__init__(
            f"Set {', '.join(variables)} in {ENV_FILE} (the environment the web service and "
            "the connector read), restart the web service, and try again. Nothing was changed."
        )


class ControllerSilent(DoorImportRefused):
    pass


class PlanChanged(DoorImportRefused):
    def __init__(self, plan: DoorPlan) -> None:
        self.plan = plan
        super().__init__(
            "The access system's list or our doors changed since the preview: nothing was "
            "written. This is the plan now; apply it if it is right."
        )


@dataclass(frozen=True)
class DoorChange:
    door_id: int
    key_was: str
    name_was: str
    key: str
    name: str

    @property
    def rekeyed(self) -> bool:
        return self.key != self.key_was

    @property
    def renamed(self) -> bool:
        return self.name != self.name_was


@dataclass(frozen=True)
class DoorPlan:
    system: AccessSystem
    building: Building | None
    created: list[VendorDoor] = field(default_factory=list)
    changed: list[DoorChange] = field(default_factory=list)
    unchanged: list[VendorDoor] = field(default_factory=list)
    applied: bool = False
    linked: int = 0

    @property
    def needs_building(self) -> bool:
        return bool(self.created) and self.building is None

    @property
    def rekeyed(self) -> list[DoorChange]:
        return [change for change in self.changed if change.rekeyed]

    @property
    def renamed(self) -> list[DoorChange]:
        return [change for change in self.changed if change.renamed and not change.rekeyed]

    @property
    def digest(self) -> str:
        """What the plan would write, hashed: equal digests, equal writes."""
        document = {
            "system": self.system.pk,
            "building": self.building.pk if self.building else None,
            "create": [[door.key, door.name] for door in self.created],
            "change": [[c.door_id, c.key_was, c.name_was, c.key, c.name] for c in self.changed],
            "keep": [[door.key, door.name] for door in self.unchanged],
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "renamed": len(self.renamed),
            "rekeyed": len(self.rekeyed),
            "kept": len(self.unchanged),
            "events_linked": self.linked,
        }

    def lines(self) -> list[str]:
        place = f"in {self.building}" if self.building else "(no building named)"
        return (
            [f"create {door.key}: {door.name} {place}" for door in self.created]
            + [f"change {c.key_was}: {c.name_was} -> {c.key}: {c.name}" for c in self.changed]
            + [f"keep   {door.key}: {door.name}" for door in self.unchanged]
        )


def doors_import(
    *,
    system: AccessSystem,
    building: Building | None,
    dry_run: bool,
    expected: str = "",
    connection: Connection | None = None,
    by: User | None = None,
    request: HttpRequest | None = None,
) -> DoorPlan:
    """Reads the system's door list and plans against our doors; unless dry_run, writes
    the plan with its audit row (`doors.imported`) and links the stored events of doors
    now known. New doors go to `building`, for IT to place on the plan.

    The connection defaults to the LENELS2_* environment. With `expected` (a preview's
    digest), a plan that differs is not written: PlanChanged carries it. Every refusal
    is a DoorImportRefused, with nothing written."""
    found = _door_list(system, connection)
    if dry_run:
        return door_plan(system=system, building=building, found=found)
    with transaction.atomic():
        # One import of a system at a time, and no edit of its doors under our feet.
        AccessSystem.objects.select_for_update().get(pk=system.pk)
        plan = door_plan(system=system, building=building, found=found, locked=True)
        if expected and plan.digest != expected:
            raise PlanChanged(plan)
        if plan.needs_building:
            door = plan.created[0]
            raise DoorImportRefused(f"{door.key} ({door.name}) is new: name a building")
        plan = replace(plan, applied=True, linked=_plan_write(plan))
        audit_record(
            action="doors.imported",
            request=request,
            user=by,
            obj=system,
            details={**plan.counts(), "building": building.pk if building else None},
        )
    return plan


def door_plan(
    *,
    system: AccessSystem,
    building: Building | None,
    found: list[VendorDoor],
    locked: bool = False,
) -> DoorPlan:
    """What importing `found` would do to the system's doors; reads only."""
    doors = Door.objects.filter(system=system).order_by("pk")
    ours = {door.external_id: door for door in (doors.select_for_update() if locked else doors)}
    plan = DoorPlan(system=system, building=building)
    claimed: dict[int, str] = {}
    keys: set[str] = set()
    for vendor in found:
        _check_fits(vendor, keys)
        door = ours.get(vendor.key) or ours.get(vendor.former_key or "\0")
        if door is None:
            plan.created.append(vendor)
            continue
        if door.pk in claimed:
            raise DoorImportRefused(
                f"{claimed[door.pk]} and {vendor.key} both match our door {door.external_id} "
                f"({door.name}): rename one in the access system first"
            )
        claimed[door.pk] = vendor.key
        if (door.external_id, door.name) == (vendor.key, vendor.name):
            plan.unchanged.append(vendor)
        else:
            plan.changed.append(
                DoorChange(door.pk, door.external_id, door.name, vendor.key, vendor.name)
            )
    return plan


def _check_fits(vendor: VendorDoor, keys: set[str]) -> None:
    if vendor.key in keys:
        raise DoorImportRefused(f"The access system lists two doors keyed {vendor.key!r}")
    keys.add(vendor.key)
    if len(vendor.key) > KEY_MAX or len(vendor.name) > NAME_MAX:
        raise DoorImportRefused(
            f"The door {vendor.key[:40]!r} has a key over {KEY_MAX} or a name over "
            f"{NAME_MAX} characters: shorten it in the access system"
        )


def _door_list(system: AccessSystem, connection: Connection | None) -> list[VendorDoor]:
    if connection is None:
        connection = _connection_from(system, os.environ)
    try:
        return door_list(system.kind, connection)
    except ValueError as exc:
        raise DoorImportRefused(f"{system}: {exc}") from None
    except (TransientError, OSError, HTTPException) as exc:
        raise ControllerSilent(
            f"Could not read the door list of {system} at {connection.url}: {exc}. Nothing "
            "was changed; check that the controller is up and reachable from this server "
            "and that the LENELS2_USERNAME account may sign in, then try again."
        ) from None


def _connection_from(system: AccessSystem, environ: Mapping[str, str]) -> Connection:
    if missing := connection_missing(system.kind, environ):
        raise CredentialsMissing(missing)
    return connection_from_env(environ, timeout=CONTROLLER_TIMEOUT)


def _plan_write(plan: DoorPlan) -> int:
    """Writes the plan; returns how many stored events it linked to their door."""
    for vendor in plan.created:
        assert plan.building is not None  # doors_import refuses a plan that needs one
        Door.objects.create(
            system=plan.system, external_id=vendor.key, name=vendor.name, building=plan.building
        )
    doors = Door.objects.in_bulk([change.door_id for change in plan.changed])
    for change in plan.changed:
        door = doors[change.door_id]
        door.external_id, door.name = change.key, change.name
        door.save(update_fields=["external_id", "name"])  # its signal refreshes ingest's cache
    return event_doors_link(events=Event.objects.filter(system=plan.system))
