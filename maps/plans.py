"""Floor and site plan images: accepted formats, their size, versioned file names, and
SVGs made passive before they are stored."""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile
from PIL import Image, UnidentifiedImageError
from py_svg_hush import filter_svg

if TYPE_CHECKING:
    from maps.models import Campus, Floor

PLAN_EXTENSIONS = ("svg", "png", "webp")
RASTER_FORMATS = {"png": "PNG", "webp": "WEBP"}
CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png", "webp": "image/webp"}


def plan_upload_to(instance: Campus | Floor, filename: str) -> str:
    # The name carries the content's hash: a new plan gets a new URL, so the old one
    # may be cached forever (offline tablets keep it).
    field_file = instance.plan if hasattr(instance, "plan") else instance.site_plan
    digest = _digest(field_file)
    return f"plans/{digest}{PurePath(filename).suffix.lower()}"


def plan_sanitise(field_file: FieldFile) -> None:
    """An SVG about to be stored loses its scripts, event handlers, foreign objects and
    references to other hosts (svg-hush): a plan is a drawing, and an SVG opened on its
    own runs with our origin. Before the name is taken, so the name hashes what is kept."""
    # _committed: True once stored; a file only being assigned is still to be sanitised.
    committed = field_file._committed  # type: ignore[attr-defined]
    if not field_file or committed or plan_extension(field_file.name or "") != "svg":
        return
    field_file.seek(0)
    field_file.file = ContentFile(plan_svg_clean(field_file.read()), name=field_file.name)


def plan_svg_clean(content: bytes) -> bytes:
    """The SVG as stored; cleaning it again changes nothing."""
    try:
        return filter_svg(content)
    except ValueError as error:
        raise ValidationError("This SVG could not be read.") from error


LABEL_KEYS = {"text", "x", "y", "width"}


def validate_plan_labels(labels: object) -> None:
    """Names drawn over a plan by the app at a size people can read, never shrunk with it:
    [{"text": "Room 101", "x": 300, "y": 200, "width": 180}], in plan coordinates (x from
    the left, y from the top); width, if given, is the room's: the name hides when it no
    longer fits."""
    if not isinstance(labels, list):
        raise ValidationError('Labels are a list: [{"text": …, "x": …, "y": …}].')
    for n, label in enumerate(labels, start=1):
        if not isinstance(label, dict) or not {"text", "x", "y"} <= label.keys() <= LABEL_KEYS:
            raise ValidationError(f"Label {n}: give text, x and y (and width if you like).")
        text = label["text"]
        if not isinstance(text, str) or not 0 < len(text.strip()) <= 60:
            raise ValidationError(f"Label {n}: its text is 1 to 60 characters.")
        numbers = [label[key] for key in ("x", "y", "width") if key in label]
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in numbers):
            raise ValidationError(f"Label {n}: x, y and width are numbers.")
        if label.get("width", 1) <= 0:
            raise ValidationError(f"Label {n}: a width is more than 0.")


def plan_extension(name: str) -> str:
    return PurePath(name).suffix.lower().lstrip(".")


def validate_plan(file: File) -> None:
    extension = PurePath(file.name or "").suffix.lower().lstrip(".")
    if extension not in PLAN_EXTENSIONS:
        raise ValidationError(f"A plan must be one of {', '.join(PLAN_EXTENSIONS)}.")
    plan_size(file)


def plan_size(file: File) -> tuple[int, int]:
    extension = PurePath(file.name or "").suffix.lower().lstrip(".")
    file.seek(0)
    try:
        if extension == "svg":
            return _svg_size(file.read())
        with Image.open(file, formats=[RASTER_FORMATS[extension]]) as image:
            return image.size
    except (UnidentifiedImageError, KeyError, OSError) as error:
        raise ValidationError(f"This is not a readable {extension} image.") from error
    finally:
        file.seek(0)


def _svg_size(content: bytes) -> tuple[int, int]:
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError as error:
        raise ValidationError("This SVG is not well-formed XML.") from error
    if not root.tag.endswith("svg"):
        raise ValidationError("This file is not an SVG image.")
    view_box = root.get("viewBox", "").replace(",", " ").split()
    if len(view_box) == 4:
        width, height = float(view_box[2]), float(view_box[3])
    else:
        width, height = _svg_length(root.get("width")), _svg_length(root.get("height"))
    if width <= 0 or height <= 0:
        raise ValidationError("An SVG plan needs a viewBox or a width and height.")
    return round(width), round(height)


def _svg_length(value: str | None) -> float:
    try:
        return float((value or "0").removesuffix("px"))
    except ValueError:
        return 0


def _digest(field_file: File) -> str:
    sha = hashlib.sha256()
    field_file.seek(0)
    for chunk in field_file.chunks():
        sha.update(chunk)
    field_file.seek(0)
    return sha.hexdigest()[:20]
