"""A built manifest against the JSON Schema that docs/EVIDENCE.md publishes."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile

import jsonschema
import pytest
from django.conf import settings
from django.utils import timezone

from responder.core.models import Incident
from tests.evidence.evidence_helpers import built, export_post, exporter, recorded_camera, zip_path
from tests.servers import ROOT

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("evidence_roots")]


def documented_schema() -> dict:
    text = (ROOT / "docs" / "EVIDENCE.md").read_text()
    section = text.split("## Manifest schema", 1)[1]
    return json.loads(re.search(r"```json\n(.*?)\n```", section, re.S).group(1))


def test_a_built_manifest_is_valid_against_the_documented_schema():
    camera, start, _ = recorded_camera(20)
    incident = Incident.objects.create(
        campus=camera.building.campus, title="Forced door", grants_end_at=timezone.now()
    )
    client = exporter(camera)
    end = start + dt.timedelta(seconds=40)  # past the recording: a gap too
    export_id = export_post(client, [camera], start, end, incident=incident.pk).json()["id"]
    path = zip_path(built(export_id), settings.EVIDENCE_ROOT)

    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))

    jsonschema.Draft202012Validator.check_schema(documented_schema())
    jsonschema.validate(manifest, documented_schema(), cls=jsonschema.Draft202012Validator)
    assert manifest["incident"] == {"id": incident.pk, "title": "Forced door"}
    assert manifest["cameras"][0]["gaps"][0]["reason"] == "not_recorded"


def test_the_schema_refuses_a_manifest_missing_a_field():
    schema = documented_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"format": 1}, schema, cls=jsonschema.Draft202012Validator)
