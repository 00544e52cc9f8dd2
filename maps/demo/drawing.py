"""Floor and site plans of the demo district as SVG: rooms, corridors, doors, labels."""

from __future__ import annotations

from xml.sax.saxutils import escape

from maps.demo.layout import (
    BOTTOM,
    HALL_BOTTOM,
    HALL_TOP,
    HEIGHT,
    LEFT,
    LOT_BOTTOM,
    LOT_TOP,
    RIGHT,
    TOP,
    WIDTH,
    BuildingSpec,
    CampusSpec,
    FloorPlan,
)

STYLE = (
    "text{font-family:Helvetica,Arial,sans-serif;fill:#1f2933}"
    ".room{fill:#fff;stroke:#52606d;stroke-width:2}"
    ".hall{fill:#e4e7eb;stroke:#52606d;stroke-width:2}"
    ".outline{fill:none;stroke:#1f2933;stroke-width:6}"
    ".lot{fill:#cbd2d9;stroke:#7b8794;stroke-width:2}"
    ".stall{stroke:#fff;stroke-width:2}"
    ".door{stroke:#c81e1e;stroke-width:8}"
    ".building{fill:#f5f7fa;stroke:#1f2933;stroke-width:4}"
    ".road{fill:none;stroke:#9aa5b1;stroke-width:28}"
)


def _svg(width: int, height: int, body: list[str]) -> bytes:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><style>{STYLE}</style>'
        f'<rect width="{width}" height="{height}" fill="#e6f4ea"/>'
    )
    return (head + "".join(body) + "</svg>").encode()


def _text(x: float, y: float, text: str, size: int = 16, weight: str = "normal") -> str:
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" '
        f'text-anchor="middle" dominant-baseline="middle">{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, css: str) -> str:
    return f'<rect class="{css}" x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}"/>'


def floor_svg(title: str, plan: FloorPlan, *, parking: str = "") -> bytes:
    body = [_text(WIDTH / 2, 50, title, 28, "bold"), _text(WIDTH - 60, 50, "N ↑", 22, "bold")]
    if parking:
        body += _lot(parking)
    body.append(_rect(LEFT, HALL_TOP, RIGHT - LEFT, HALL_BOTTOM - HALL_TOP, "hall"))
    body.append(_text((LEFT + RIGHT) / 2, (HALL_TOP + HALL_BOTTOM) / 2, "Corridor", 14))
    for room in plan.rooms:
        body.append(_rect(room.x, room.y, room.w, room.h, "room"))
        size = 15 if room.w > 110 else 12
        body.append(_text(room.x + room.w / 2, room.y + room.h / 2, room.name, size))
    body.append(_rect(LEFT, TOP, RIGHT - LEFT, BOTTOM - TOP, "outline"))
    for door in plan.doors:
        horizontal = (
            door.y in (TOP, BOTTOM)
            or HALL_TOP <= door.y <= HALL_BOTTOM
            and (door.x not in (LEFT, RIGHT))
        )
        dx, dy = (18, 0) if horizontal else (0, 18)
        body.append(
            f'<line class="door" x1="{door.x - dx:.0f}" y1="{door.y - dy:.0f}" '
            f'x2="{door.x + dx:.0f}" y2="{door.y + dy:.0f}"/>'
        )
    return _svg(WIDTH, HEIGHT, body)


def _lot(name: str) -> list[str]:
    body = [_rect(LEFT, LOT_TOP, RIGHT - LEFT, LOT_BOTTOM - LOT_TOP, "lot")]
    for x in range(LEFT + 40, RIGHT, 40):
        body.append(f'<line class="stall" x1="{x}" y1="{LOT_TOP}" x2="{x}" y2="{LOT_TOP + 50}"/>')
        body.append(
            f'<line class="stall" x1="{x}" y1="{LOT_BOTTOM - 50}" x2="{x}" y2="{LOT_BOTTOM}"/>'
        )
    body.append(_text((LEFT + RIGHT) / 2, (LOT_TOP + LOT_BOTTOM) / 2, name, 18, "bold"))
    return body


SITE_WIDTH, SITE_HEIGHT = 1200, 800
FOOTPRINT = (260, 130)


def site_svg(campus: CampusSpec) -> bytes:
    body = [
        _text(SITE_WIDTH / 2, 40, f"{campus.name} – Site Plan", 28, "bold"),
        _text(SITE_WIDTH - 60, 40, "N ↑", 22, "bold"),
        f'<path class="road" d="M 0 {SITE_HEIGHT - 40} H {SITE_WIDTH}"/>',
        _text(SITE_WIDTH / 2, SITE_HEIGHT - 40, "River Road", 14),
    ]
    for building in campus.buildings:
        body += _footprint(building)
    return _svg(SITE_WIDTH, SITE_HEIGHT, body)


def _footprint(building: BuildingSpec) -> list[str]:
    (x, y), (w, h) = building.site, FOOTPRINT
    body = [_rect(x - w / 2, y - h / 2, w, h, "building"), _text(x, y, building.name, 18, "bold")]
    if building.parking:
        body.append(_rect(x - w / 2, y + h / 2 + 15, w, 50, "lot"))
        body.append(_text(x, y + h / 2 + 40, building.parking, 13))
    return body
