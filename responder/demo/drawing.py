"""Floor and site plans of the demo district: the drawing as SVG (rooms, corridors, doors),
and the names on it as labels the app draws (text baked into an image shrinks with it,
to 6 px on a phone)."""

from __future__ import annotations

from xml.sax.saxutils import escape

from responder.demo.layout import (
    BOTTOM,
    HALL_BOTTOM,
    HALL_TOP,
    HALL_Y,
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
    ".room{fill:#fff;stroke:#52606d;stroke-width:2}"
    ".hall{fill:#e4e7eb;stroke:#52606d;stroke-width:2}"
    ".outline{fill:none;stroke:#1f2933;stroke-width:6}"
    ".lot{fill:#cbd2d9;stroke:#7b8794;stroke-width:2}"
    ".stall{stroke:#fff;stroke-width:2}"
    ".door{stroke:#c81e1e;stroke-width:8}"
    ".building{fill:#f5f7fa;stroke:#1f2933;stroke-width:4}"
    ".road{fill:none;stroke:#9aa5b1;stroke-width:28}"
)


def _svg(title: str, width: int, height: int, body: list[str]) -> bytes:
    # The title names the drawing for screen readers and admins; it is never drawn.
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}"><title>{escape(title)}</title><style>{STYLE}</style>'
        f'<rect width="{width}" height="{height}" fill="#e6f4ea"/>'
    )
    return (head + "".join(body) + "</svg>").encode()


def _label(x: float, y: float, text: str, width: float | None = None) -> dict:
    """A name centred on (x, y); with a width, the app hides it when it no longer fits."""
    label: dict = {"text": text, "x": round(x), "y": round(y)}
    if width is not None:
        label["width"] = round(width)
    return label


def _rect(x: float, y: float, w: float, h: float, css: str) -> str:
    return f'<rect class="{css}" x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}"/>'


def floor_labels(plan: FloorPlan, *, parking: str = "") -> list[dict]:
    labels = [_label(WIDTH - 60, 50, "N ↑")]
    labels += [_label(r.x + r.w / 2, r.y + r.h / 2, r.name, r.w) for r in plan.rooms]
    labels.append(_label((LEFT + RIGHT) / 2, HALL_Y, "Corridor", RIGHT - LEFT))
    if parking:
        labels.append(_label((LEFT + RIGHT) / 2, (LOT_TOP + LOT_BOTTOM) / 2, parking))
    return labels


def floor_svg(title: str, plan: FloorPlan, *, parking: bool = False) -> bytes:
    body = _lot() if parking else []
    body.append(_rect(LEFT, HALL_TOP, RIGHT - LEFT, HALL_BOTTOM - HALL_TOP, "hall"))
    for room in plan.rooms:
        body.append(_rect(room.x, room.y, room.w, room.h, "room"))
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
    return _svg(title, WIDTH, HEIGHT, body)


def _lot() -> list[str]:
    body = [_rect(LEFT, LOT_TOP, RIGHT - LEFT, LOT_BOTTOM - LOT_TOP, "lot")]
    for x in range(LEFT + 40, RIGHT, 40):
        body.append(f'<line class="stall" x1="{x}" y1="{LOT_TOP}" x2="{x}" y2="{LOT_TOP + 50}"/>')
        body.append(
            f'<line class="stall" x1="{x}" y1="{LOT_BOTTOM - 50}" x2="{x}" y2="{LOT_BOTTOM}"/>'
        )
    return body


SITE_WIDTH, SITE_HEIGHT = 1200, 800
FOOTPRINT = (260, 130)


def site_labels(campus: CampusSpec) -> list[dict]:
    """The buildings' names are their pins' (map.js): here the rest of the site."""
    labels = [
        _label(SITE_WIDTH - 60, 40, "N ↑"),
        _label(SITE_WIDTH / 2, SITE_HEIGHT - 40, "River Road"),
    ]
    for building in campus.buildings:
        (x, y), (w, h) = building.site, FOOTPRINT
        if building.parking:
            labels.append(_label(x, y + h / 2 + 40, building.parking, w))
    return labels


def site_svg(campus: CampusSpec) -> bytes:
    body = [f'<path class="road" d="M 0 {SITE_HEIGHT - 40} H {SITE_WIDTH}"/>']
    for building in campus.buildings:
        body += _footprint(building)
    return _svg(f"{campus.name}: site plan", SITE_WIDTH, SITE_HEIGHT, body)


def _footprint(building: BuildingSpec) -> list[str]:
    (x, y), (w, h) = building.site, FOOTPRINT
    body = [_rect(x - w / 2, y - h / 2, w, h, "building")]
    if building.parking:
        body.append(_rect(x - w / 2, y + h / 2 + 15, w, 50, "lot"))
    return body
