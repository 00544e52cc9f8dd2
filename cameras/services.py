"""Writes for cameras: switching them on and off, and the CSV import district IT runs."""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from cameras.live import camera_sessions_stop
from cameras.models import Camera, MovedCredentials, Tag, Vendor, stream_credentials_move
from maps.models import Building, Floor

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "name", "building", "vendor", "model", "tags", "main_stream_url", "sub_stream_url",
    "username", "password", "floor", "x", "y", "heading", "field_of_view", "enabled",
)  # fmt: skip
REQUIRED_COLUMNS = ("name", "building", "main_stream_url")
MAX_ROWS = 5000
TRUE = {"true", "yes", "y", "1", "on"}
FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str


@dataclass
class CameraImportResult:
    cameras: list[Camera] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def cameras_switch(*, cameras: QuerySet[Camera], enabled: bool) -> int:
    """Switch cameras on or off; off stops their live sessions once this commits."""
    ids = list(cameras.values_list("pk", flat=True))
    count = Camera.objects.filter(pk__in=ids).update(enabled=enabled)
    if not enabled:
        transaction.on_commit(lambda: cameras_stop(camera_ids=ids))
    return count


def cameras_stop(*, camera_ids: Iterable[int]) -> None:
    for camera_id in camera_ids:
        camera_sessions_stop(camera_id=camera_id)


def camera_import_csv(*, file: IO, by: User) -> CameraImportResult:
    """Validate every row first; create the cameras only if all rows are good."""
    try:
        reader = csv.DictReader(io.StringIO(_text(file.read()), newline=""))
        if reader.fieldnames:
            reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
        header_errors = _header_errors(reader.fieldnames)
        if header_errors:
            return CameraImportResult(errors=header_errors)
        rows = _validated_rows(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        return CameraImportResult(
            errors=[RowError(0, f"This is not a readable CSV file: {error}")]
        )
    if not rows.ok:
        return CameraImportResult(errors=rows.errors)
    try:
        with transaction.atomic():
            for camera, tags in rows.cameras:
                camera.save()
                camera.tags.set(_tags(tags))
    except IntegrityError:
        # Someone added a camera of the same name between validation and now.
        return CameraImportResult(errors=[RowError(0, "A camera changed meanwhile: try again.")])
    logger.info("%s imported %d cameras", by, len(rows.cameras))
    return CameraImportResult(cameras=[camera for camera, _ in rows.cameras])


@dataclass
class _Rows:
    cameras: list[tuple[Camera, list[str]]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _validated_rows(reader: csv.DictReader) -> _Rows:
    places = _Places()
    rows = _Rows()
    first_line: dict[tuple[int, str], int] = {}
    for record in reader:
        line = reader.line_num
        if len(rows.cameras) + len(rows.errors) >= MAX_ROWS:
            rows.errors.append(RowError(line, f"Import at most {MAX_ROWS} cameras at a time."))
            break
        try:
            camera, tags = _camera(record, places)
        except ValidationError as error:
            rows.errors.append(RowError(line, _message(error)))
            continue
        key = (camera.building_id, camera.name)
        if key in first_line:
            message = (
                f"Duplicate name “{camera.name}” in its building (also line {first_line[key]})."
            )
            rows.errors.append(RowError(line, message))
            continue
        first_line[key] = line
        rows.cameras.append((camera, tags))
    if not rows.cameras and not rows.errors:
        rows.errors.append(RowError(1, "The file has no cameras."))
    return rows


def _camera(record: dict, places: _Places) -> tuple[Camera, list[str]]:
    if None in record:
        raise ValidationError("More cells than columns.")
    cell = {key: (value or "").strip() for key, value in record.items()}
    problems: dict[str, list[str]] = {}

    def parse(name: str, parser: Callable[[str], Any], default: Any = None) -> Any:
        if not cell.get(name):
            return default
        try:
            return parser(cell[name])
        except ValidationError as error:
            problems.setdefault(name, []).extend(error.messages)
            return default

    building = parse("building", places.building)
    try:
        # Credentials in a URL move to the encrypted fields: URLs are stored in the clear.
        streams = stream_credentials_move(
            main=cell["main_stream_url"],
            sub=cell.get("sub_stream_url", ""),
            username=cell.get("username") or None,
            password=cell.get("password") or None,
        )
    except ValidationError as error:
        problems.setdefault("main_stream_url", []).extend(error.messages)
        streams = MovedCredentials(cell["main_stream_url"], "", None, None, carried=False)
    camera = Camera(
        name=cell["name"],
        building=building,
        floor=parse("floor", lambda value: places.floor(building, value)) if building else None,
        vendor=parse("vendor", _vendor, Vendor.AXIS),
        model=cell.get("model", ""),
        main_stream_url=streams.main,
        sub_stream_url=streams.sub,
        username=streams.username,
        password=streams.password,
        x=parse("x", _number),
        y=parse("y", _number),
        heading=parse("heading", _number, 0),
        field_of_view=parse("field_of_view", _number, 90),
        enabled=parse("enabled", _boolean, True),
    )
    tags = parse("tags", _tag_slugs, [])
    if not cell.get("building"):
        problems.setdefault("building", []).append("This field cannot be blank.")
    exclude = [name for name in ("building", "floor") if name in problems or not building]
    try:
        camera.full_clean(exclude=exclude)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            problems.setdefault(name, []).extend(messages)
    if problems:
        raise ValidationError(problems)
    return camera, tags


class _Places:
    """The district's buildings and floors, read once for the whole file."""

    def __init__(self) -> None:
        self.buildings = list(Building.objects.select_related("campus"))
        self.floors = list(Floor.objects.all())

    def building(self, value: str) -> Building:
        campus_name, _, building_name = value.rpartition("/")
        campus_name, building_name = campus_name.strip().casefold(), building_name.strip()
        matches = [
            b
            for b in self.buildings
            if b.name.casefold() == building_name.casefold()
            and (
                not campus_name
                or campus_name in (b.campus.name.casefold(), b.campus.short_name.casefold())
            )
        ]
        if not matches:
            raise ValidationError(f"Unknown building “{value}”.")
        if len(matches) > 1:
            raise ValidationError(f"“{value}” is on several campuses: write “Campus / Building”.")
        return matches[0]

    def floor(self, building: Building, value: str) -> Floor:
        for floor in self.floors:
            if floor.building_id == building.id and value.casefold() in (
                floor.name.casefold(),
                str(floor.level),
            ):
                return floor
        raise ValidationError(f"Unknown floor “{value}” in {building}.")


def _vendor(value: str) -> str:
    if value.casefold() not in Vendor.values:
        raise ValidationError(f"Unknown vendor “{value}” (one of {', '.join(Vendor.values)}).")
    return value.casefold()


def _number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValidationError(f"“{value}” is not a number.") from None
    if not math.isfinite(number):
        raise ValidationError(f"“{value}” is not a number.")
    return number


def _boolean(value: str) -> bool:
    if value.casefold() in TRUE:
        return True
    if value.casefold() in FALSE:
        return False
    raise ValidationError(f"“{value}” is not yes or no.")


def _tag_slugs(value: str) -> list[str]:
    slugs = [slug.lower() for slug in re.split(r"[\s;,]+", value) if slug]
    for slug in slugs:
        validate_slug(slug)
        if len(slug) > (Tag._meta.get_field("slug").max_length or 0):
            raise ValidationError(f"The tag “{slug}” is too long.")
    return slugs


def _tags(slugs: Iterable[str]) -> list[Tag]:
    return [Tag.objects.get_or_create(slug=slug)[0] for slug in slugs]


def _header_errors(fieldnames: Sequence[str] | None) -> list[RowError]:
    if not fieldnames:
        return [RowError(1, "The file is empty: the first line names the columns.")]
    names = fieldnames
    errors = [
        RowError(1, f"Missing column “{name}”.") for name in REQUIRED_COLUMNS if name not in names
    ]
    errors += [
        RowError(1, f"Unknown column “{name}” (columns: {', '.join(CSV_COLUMNS)}).")
        for name in names
        if name not in CSV_COLUMNS
    ]
    if len(set(names)) != len(names):
        errors.append(RowError(1, "A column is named twice."))
    return errors


def _text(content: bytes | str) -> str:
    # utf-8-sig: spreadsheet programs often start the file with a byte-order mark.
    return content.decode("utf-8-sig") if isinstance(content, bytes) else content


def _message(error: ValidationError) -> str:
    if not hasattr(error, "error_dict"):
        return " ".join(error.messages)
    parts = []
    for name, messages in error.message_dict.items():
        text = " ".join(_friendly(message) for message in messages)
        parts.append(text if name == NON_FIELD_ERRORS else f"{name}: {text}")
    return "; ".join(parts)


def _friendly(message: str) -> str:
    if "already exists" in message:
        return "Duplicate name: this building already has a camera of that name."
    return message
