"""The demo district on paper: campuses, buildings, floors, rooms, cameras and doors.

Pure data and geometry (plan coordinates, 1200 × 900, the building at 100–1100 × 150–650
with a corridor along its length); seed.py writes it to the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WIDTH, HEIGHT = 1200, 900
LEFT, RIGHT, TOP, BOTTOM = 100, 1100, 150, 650
HALL_TOP, HALL_BOTTOM = 370, 430
HALL_Y = (HALL_TOP + HALL_BOTTOM) / 2
LOT_TOP, LOT_BOTTOM = 700, 880


@dataclass(frozen=True)
class Room:
    name: str
    weight: float = 1
    camera: str = ""  # a tag: the room gets a camera looking into it
    door: bool = False  # an access-controlled door from the corridor


@dataclass(frozen=True)
class FloorSpec:
    name: str
    level: int
    north: tuple[Room, ...]
    south: tuple[Room, ...]


@dataclass(frozen=True)
class BuildingSpec:
    name: str
    label: str  # in camera names: "HS <label> Entrance – Lobby"
    floors: tuple[FloorSpec, ...]
    entrances: tuple[str, ...]  # sides of the ground floor with doors: south, east, west, north
    parking: str = ""  # a lot drawn south of the ground floor: its name
    site: tuple[float, float] = (600, 400)  # centre on the campus site plan


@dataclass(frozen=True)
class CampusSpec:
    name: str
    short: str
    buildings: tuple[BuildingSpec, ...]


@dataclass(frozen=True)
class Rect:
    name: str
    x: float
    y: float
    w: float
    h: float
    north: bool


@dataclass
class CameraSpec:
    name: str
    x: float
    y: float
    heading: float
    tags: tuple[str, ...]
    field_of_view: float = 90


@dataclass
class DoorSpec:
    name: str
    x: float
    y: float


@dataclass
class FloorPlan:
    spec: FloorSpec
    rooms: list[Rect]
    cameras: list[CameraSpec] = field(default_factory=list)
    doors: list[DoorSpec] = field(default_factory=list)


def rooms_of(floor: FloorSpec) -> list[Rect]:
    rects = []
    for north, rooms, top, bottom in (
        (True, floor.north, TOP, HALL_TOP),
        (False, floor.south, HALL_BOTTOM, BOTTOM),
    ):
        total, x = sum(room.weight for room in rooms), float(LEFT)
        for room in rooms:
            width = (RIGHT - LEFT) * room.weight / total
            rects.append(Rect(room.name, x, top, width, bottom - top, north))
            x += width
    return rects


def floor_plan(campus: CampusSpec, building: BuildingSpec, floor: FloorSpec) -> FloorPlan:
    plan = FloorPlan(floor, rooms_of(floor))
    prefix = f"{campus.short} {building.label}"
    _hallway(plan, f"{prefix} {floor.name} Hallway")
    _rooms(plan, campus.short, building)
    if floor.level == min(f.level for f in building.floors):
        for side in building.entrances:
            _entrance(plan, prefix, side)
        _corners(plan, prefix)
        if building.parking:
            _parking(plan, f"{campus.short} {building.parking}")
    return plan


def _hallway(plan: FloorPlan, name: str) -> None:
    plan.cameras += [
        CameraSpec(f"{name} – West", LEFT + 20, HALL_Y, 90, ("hallway",)),
        CameraSpec(f"{name} – East", RIGHT - 20, HALL_Y, 270, ("hallway",)),
    ]


def _rooms(plan: FloorPlan, short: str, building: BuildingSpec) -> None:
    specs = {room.name: room for room in (*plan.spec.north, *plan.spec.south)}
    for rect in plan.rooms:
        room, middle = specs[rect.name], rect.x + rect.w / 2
        wall = rect.y + rect.h if rect.north else rect.y
        inside = wall - 15 if rect.north else wall + 15
        if room.camera:
            # From the corridor wall, looking across the room.
            heading = 0 if rect.north else 180
            name = f"{short} {room.name}"
            plan.cameras.append(CameraSpec(name, middle + 25, inside, heading, (room.camera,)))
        if room.door:
            plan.doors.append(
                DoorSpec(f"{short} {building.label} – {room.name} Door", middle, wall)
            )


ENTRANCES = {
    # side: door position, inside camera (x, y, heading), outside camera heading
    "south": ((600, BOTTOM), (600, BOTTOM - 40, 180), 180),
    "north": ((600, TOP), (600, TOP + 40, 0), 0),
    "east": ((RIGHT, HALL_Y), (RIGHT - 45, HALL_Y + 20, 90), 90),
    "west": ((LEFT, HALL_Y), (LEFT + 45, HALL_Y + 20, 270), 270),
}


def _entrance(plan: FloorPlan, prefix: str, side: str) -> None:
    (x, y), (ix, iy, heading), out = ENTRANCES[side]
    title = "Entrance" if side == "south" else f"– {side.title()} Doors"
    inside = f"{prefix} Entrance – Lobby" if side == "south" else f"{prefix} {title}"
    outside = f"{prefix} Entrance – Exterior" if side == "south" else f"{inside} Exterior"
    dx, dy = {"south": (0, 12), "north": (0, -12), "east": (12, 0), "west": (-12, 0)}[side]
    plan.cameras += [
        CameraSpec(inside, ix, iy, heading, ("entrance",), 100),
        CameraSpec(outside, x + dx, y + dy, out, ("entrance", "exterior"), 110),
    ]
    door_name = f"{prefix} Main Entrance" if side == "south" else f"{prefix} {title}"
    plan.doors.append(DoorSpec(door_name.replace("  ", " "), x, y))


def _corners(plan: FloorPlan, prefix: str) -> None:
    for label, x, y, heading in (
        ("NW", LEFT, TOP, 315),
        ("NE", RIGHT, TOP, 45),
        ("SE", RIGHT, BOTTOM, 135),
        ("SW", LEFT, BOTTOM, 225),
    ):
        name = f"{prefix} Exterior – {label} Corner"
        plan.cameras.append(CameraSpec(name, x, y, heading, ("exterior",), 110))


def _parking(plan: FloorPlan, lot: str) -> None:
    middle = (LOT_TOP + LOT_BOTTOM) / 2
    for label, x, heading in (("West", 200, 90), ("Center", 600, 180), ("East", 1000, 270)):
        camera = CameraSpec(f"{lot} – {label}", x, middle, heading, ("parking", "exterior"), 100)
        plan.cameras.append(camera)
