"""LenelS2 NetBox through the NBAPI: sign in, then read StreamEvents as it arrives."""

from __future__ import annotations

import hashlib
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import tzinfo
from http.client import HTTPResponse

from accesslog.connectors.base import (
    SessionExpired,
    Stopper,
    Tally,
    TransientError,
    cursor_position,
    event_feed,
)
from accesslog.connectors.http import Endpoint, http_open
from accesslog.connectors.mapping import aware, event_type_of
from accesslog.connectors.xmlstream import NetBoxDocuments
from accesslog.models import AccessSystem

log = logging.getLogger("accesslog.connectors")

PATH = "/nbws/goforms/nbapi"  # NetBox 6; older controllers answer at /goforms/nbapi
# The tags StreamEvents is asked for; ACTIVITYID is the activity log's own id.
TAGS = [
    "ACTIVITYID",
    "CDT",
    "DESCNAME",
    "EVTNAME",
    "PERSONNAME",
    "PERSONID",
    "PORTALNAME",
    "RDRNAME",
    "NODENAME",
]
# NBAPI APIERROR codes; 5 is what an expired or unknown session gets.
API_ERRORS = {
    1: "API failed to initialise",
    2: "API not enabled",
    3: "invalid command",
    4: "unable to parse",
    5: "authentication failure",
    6: "unknown command",
}
STREAM_READ_TIMEOUT = 120.0  # NetBox pings an idle stream; silence this long is a dead link


def nbapi_command(name: str, *, params: dict | None = None, session_id: str = "") -> bytes:
    root = ET.Element("NETBOX-API", {"sessionid": session_id} if session_id else {})
    # tzoffset: times carry their UTC offset, where the controller supports it.
    command = ET.SubElement(root, "COMMAND", {"name": name, "num": "1", "dateformat": "tzoffset"})
    if params:
        _params_into(ET.SubElement(command, "PARAMS"), params)
    return ET.tostring(root)


def _params_into(element: ET.Element, params: dict) -> None:
    for key, value in params.items():
        child = ET.SubElement(element, key)
        if isinstance(value, dict):
            _params_into(child, value)
        elif value is not None:
            child.text = str(value)


def nbapi_response(document: ET.Element) -> ET.Element:
    """The document's RESPONSE, or the error it reports."""
    response = document.find("RESPONSE")
    if response is None:
        raise TransientError(f"NBAPI answer without RESPONSE: {ET.tostring(document)[:200]!r}")
    if (error := response.findtext("APIERROR")) is not None:
        code = int(error) if error.strip().isdigit() else 0
        message = f"NBAPI APIERROR {error} ({API_ERRORS.get(code, 'unknown')})"
        raise SessionExpired(message) if code == 5 else TransientError(message)
    if (response.findtext("CODE") or "SUCCESS").strip() != "SUCCESS":
        detail = response.findtext("DETAILS/ERRMSG") or response.findtext("CODE")
        raise TransientError(f"NBAPI {response.get('command')} failed: {detail}")
    return response


@dataclass
class NetBoxClient:
    endpoint: Endpoint
    username: str
    password: str
    session_id: str = field(default="", repr=False)

    def login(self) -> None:
        params = {"USERNAME": self.username, "PASSWORD": self.password}
        with self._post(nbapi_command("Login", params=params)) as response:
            body = response.read()
        document = NetBoxDocuments().feed(body)
        if not document:
            raise TransientError(f"NBAPI Login answered no document: {body[:200]!r}")
        nbapi_response(document[0])
        if not (session_id := document[0].get("sessionid")):
            raise TransientError("NBAPI Login answered no sessionid")
        self.session_id = session_id
        log.info("NBAPI: signed in as %s", self.username)

    def stream(self) -> HTTPResponse:
        """The open StreamEvents response; its parts arrive as events happen."""
        if not self.session_id:
            self.login()
        tags = {tag: None for tag in TAGS}
        command = nbapi_command(
            "StreamEvents", params={"TAGNAMES": tags}, session_id=self.session_id
        )
        return self._post(command, timeout=STREAM_READ_TIMEOUT)

    def _post(self, body: bytes, *, timeout: float | None = None) -> HTTPResponse:
        headers = {"Content-Type": "application/xml"}
        return http_open(
            self.endpoint, PATH, method="POST", body=body, headers=headers, timeout=timeout
        )


def netbox_event_id(fields: dict[str, str]) -> str:
    if activity := fields.get("ACTIVITYID"):
        return activity
    # Without an id, the event's own fields name it; two identical events in the same
    # second would be taken for one, which is why ACTIVITYID is asked for.
    canonical = "\x1f".join(f"{tag}={fields.get(tag, '')}" for tag in sorted(TAGS))
    return "h-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def netbox_door(fields: dict[str, str]) -> str:
    if portal := fields.get("PORTALNAME"):
        return portal
    node, reader = fields.get("NODENAME", ""), fields.get("RDRNAME", "")
    if node or reader:
        return f"{node}/{reader}" if node and reader else node or reader
    # A NetBox "event" (EVTNAME) with no portal, e.g. an alarm input: still a place IT
    # can map to a door, and kept as an unknown door until then.
    return f"event:{fields.get('EVTNAME', '')}"


def netbox_event_payload(fields: dict[str, str], *, tz: tzinfo) -> dict | None:
    event_type = event_type_of(fields.get("DESCNAME"), fields.get("EVTNAME"))
    if event_type is None:
        return None
    payload = {
        "source_event_id": netbox_event_id(fields),
        "type": str(event_type),
        "door": netbox_door(fields),
        "occurred_at": aware(fields["CDT"], tz).isoformat(),
        "details": {tag.lower(): value for tag, value in fields.items() if value},
    }
    if person := fields.get("PERSONNAME") or fields.get("PERSONID"):
        payload["person"] = person
    return payload


@dataclass
class NetBoxConnector:
    system: AccessSystem
    client: NetBoxClient
    tz: tzinfo
    stopper: Stopper = field(default_factory=Stopper)
    idle_delay: float = 1.0
    tally: Tally = field(default_factory=Tally)

    def step(self) -> int:
        """One StreamEvents connection, read until it ends or fails."""
        try:
            return self._stream()
        except SessionExpired:
            log.info("%s: NBAPI session expired; signing in again", self.system.slug)
            self.client.session_id = ""
            return self._stream()

    def _stream(self) -> int:
        seen = parts = 0
        documents = NetBoxDocuments()
        with self.stopper.blocking():
            response = self.client.stream()
        with response:
            while not self.stopper.stopped:
                with self.stopper.blocking():
                    chunk = response.read1(65536)
                if not chunk:
                    if not parts:
                        raise TransientError("StreamEvents closed without a single answer")
                    break
                for document in documents.feed(chunk):
                    parts += 1
                    event = nbapi_response(document).find("EVENT")
                    if event is not None:  # no EVENT: a keep-alive ping
                        seen += 1
                        self._feed({child.tag: (child.text or "").strip() for child in event})
                        if seen % 100 == 0:
                            log.info("%s: so far %s", self.system.slug, self.tally.summary())
        log.info(
            "%s: StreamEvents ended after %d events; so far %s",
            self.system.slug,
            seen,
            self.tally.summary(),
        )
        return seen

    def _feed(self, fields: dict[str, str]) -> None:
        position = netbox_event_id(fields)
        last = cursor_position(self.system)
        if position.isdigit() and last.isdigit() and int(position) <= int(last):
            # Activity ids only grow: one at or before the cursor is already stored.
            self.tally["already seen"] += 1
            return
        event_feed(
            system=self.system,
            position=position,
            tally=self.tally,
            raw=fields,
            build=lambda: netbox_event_payload(fields, tz=self.tz),
        )

    def reset(self) -> None:
        self.client.session_id = ""
