"""LenelS2 NetBox through the NBAPI: sign in, catch up from the history, then stream.

StreamEvents only sends what happens while it is open. So each connection first opens the
stream, then reads GetAccessHistory after the persisted cursor page by page, and only then
reads the stream: what happened while the connector was down comes from the history, what
happens from now on from the stream, and what falls between the two is not lost (the
stream's events wait in the socket while the history is read).
"""

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
# GetAccessHistory answers "NOT FOUND" instead of an empty list when nothing matches.
NOT_FOUND = "NOT FOUND"


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


class CommandRefused(TransientError):
    """The controller answered, and refused the command (not a session or network error)."""


def nbapi_response(document: ET.Element) -> ET.Element:
    """The document's RESPONSE, or the error it reports."""
    response = document.find("RESPONSE")
    if response is None:
        raise TransientError(f"NBAPI answer without RESPONSE: {ET.tostring(document)[:200]!r}")
    if (error := response.findtext("APIERROR")) is not None:
        code = int(error) if error.strip().isdigit() else 0
        message = f"NBAPI APIERROR {error} ({API_ERRORS.get(code, 'unknown')})"
        raise SessionExpired(message) if code == 5 else CommandRefused(message)
    if (response.findtext("CODE") or "SUCCESS").strip() != "SUCCESS":
        detail = response.findtext("DETAILS/ERRMSG") or response.findtext("CODE")
        raise CommandRefused(f"NBAPI {response.get('command')} failed: {detail}")
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

    def access_history_after(self, log_id: int, *, page_size: int) -> list[dict[str, str]]:
        """Up to page_size access records with a higher LOGID, oldest first."""
        # With AFTERLOGID the controller answers in ascending LOGID order; without it,
        # newest first, which is why the cursor is always sent.
        params = {"AFTERLOGID": log_id, "MAXRECORDS": page_size}
        document = self._command("GetAccessHistory", params)
        if _not_found(document):
            return []
        records = nbapi_response(document).findall("DETAILS/ACCESSES/ACCESS")
        rows = [{child.tag: (child.text or "").strip() for child in record} for record in records]
        try:
            return sorted(rows, key=lambda row: int(row["LOGID"]))
        except (KeyError, ValueError) as exc:
            raise TransientError(
                f"GetAccessHistory answered a record without LOGID: {exc!r}"
            ) from None

    def _command(self, name: str, params: dict) -> ET.Element:
        if not self.session_id:
            self.login()
        body = nbapi_command(name, params=params, session_id=self.session_id)
        with self._post(body) as response:
            raw = response.read()
        documents = NetBoxDocuments().feed(raw)
        if not documents:
            raise TransientError(f"NBAPI {name} answered no document: {raw[:200]!r}")
        return documents[0]

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


def _not_found(document: ET.Element) -> bool:
    # Seen both as CODE "NOT FOUND" and as CODE FAIL with ERRMSG "NOT FOUND".
    response = document.find("RESPONSE")
    if response is None or response.find("APIERROR") is not None:
        return False
    code = (response.findtext("CODE") or "").strip().upper()
    detail = (response.findtext("DETAILS/ERRMSG") or "").strip().upper()
    return code == NOT_FOUND or (code == "FAIL" and detail == NOT_FOUND)


def access_event_fields(access: dict[str, str]) -> dict[str, str]:
    """A GetAccessHistory record in the StreamEvents tags the rest of this module reads."""
    # The guide: an invalid access is the one that carries a REASON code. LOGID is taken
    # for the activity log id StreamEvents calls ACTIVITYID (not yet checked on a controller).
    denied = access.get("REASON", "") not in ("", "0")
    fields = {
        "ACTIVITYID": access.get("LOGID", ""),
        "CDT": access.get("DTTM") or access.get("NODEDTTM", ""),
        "DESCNAME": "Access denied" if denied else "Access granted",
        "PERSONID": access.get("PERSONID", ""),
        "PORTALNAME": access.get("PORTALNAME", ""),
        "RDRNAME": access.get("READER", ""),
    }
    extra = ("READERKEY", "PORTALKEY", "TYPE", "REASON")
    return fields | {tag: access[tag] for tag in extra if access.get(tag)}


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
class CatchUp:
    """What this connection's history read covered, so the stream repeats none of it."""

    before: int | None = None  # the cursor when the connection opened; None: started live
    seen: set[int] = field(default_factory=set)
    complete: bool = True

    def covers(self, event_id: int, cursor: str) -> bool:
        if self.before is None:
            # Activity ids only grow: one at or before the cursor is already stored.
            return cursor.isdigit() and event_id <= int(cursor)
        # Not "at or before the cursor": the history holds only accesses, so an alarm the
        # stream sent while the history was read can be older than the cursor is now.
        return event_id <= self.before or event_id in self.seen


def _position_after(event_id: str, cursor: str) -> str:
    # The cursor only moves forward, even for such an older alarm from the overlap.
    if event_id.isdigit() and cursor.isdigit():
        return str(max(int(event_id), int(cursor)))
    return event_id


@dataclass
class NetBoxConnector:
    system: AccessSystem
    client: NetBoxClient
    tz: tzinfo
    stopper: Stopper = field(default_factory=Stopper)
    idle_delay: float = 1.0
    tally: Tally = field(default_factory=Tally)
    history_page_size: int = 200
    # A long outage is read over several connections rather than in one unbounded step.
    history_max_pages: int = 50

    def step(self) -> int:
        """One connection: catch up from the history, then read the stream until it ends."""
        try:
            return self._connect()
        except SessionExpired:
            log.info("%s: NBAPI session expired; signing in again", self.system.slug)
            self.client.session_id = ""
            return self._connect()

    def _connect(self) -> int:
        with self.stopper.blocking():
            response = self.client.stream()
        with response:
            # Opened first, read last: what happens during the catch-up waits in the socket,
            # so nothing falls between the end of the history and the start of the stream.
            catch_up = self._catch_up()
            if not catch_up.complete:
                return len(catch_up.seen)  # the next connection goes on from the cursor
            return len(catch_up.seen) + self._stream(response, catch_up)

    def _catch_up(self) -> CatchUp:
        cursor = cursor_position(self.system)
        if not cursor.isdigit():
            # First start: start live. Replaying the controller's whole history would raise
            # alarms for doors forced months ago.
            return CatchUp()
        catch_up = CatchUp(before=int(cursor), complete=False)
        try:
            self._history_read(catch_up)
        except CommandRefused as exc:
            # An older controller, or an API user without the right to read the log: live
            # alarms matter more than the gap, so stream anyway, and say what is missed.
            log.warning(
                "%s: no history after %s (%s); events while it was down are missed",
                self.system.slug,
                catch_up.before,
                exc,
            )
            catch_up.complete = True
        return catch_up

    def _history_read(self, catch_up: CatchUp) -> None:
        after = catch_up.before
        for _ in range(self.history_max_pages):
            with self.stopper.blocking():
                page = self.client.access_history_after(after, page_size=self.history_page_size)
            for access in page:
                if self.stopper.stopped:
                    return
                fields = access_event_fields(access)
                self._feed(fields, catch_up)
                catch_up.seen.add(int(fields["ACTIVITYID"]))
            if len(page) < self.history_page_size:
                catch_up.complete = True
                break
            if int(page[-1]["LOGID"]) <= after:
                raise TransientError(f"GetAccessHistory did not move past LOGID {after}")
            after = int(page[-1]["LOGID"])
        log.info(
            "%s: %d events from the history after %s%s",
            self.system.slug,
            len(catch_up.seen),
            catch_up.before,
            "" if catch_up.complete else "; more on the next connection",
        )

    def _stream(self, response: HTTPResponse, catch_up: CatchUp) -> int:
        seen = parts = 0
        documents = NetBoxDocuments()
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
                    fields = {child.tag: (child.text or "").strip() for child in event}
                    self._feed(fields, catch_up)
                    if seen % 100 == 0:
                        log.info("%s: so far %s", self.system.slug, self.tally.summary())
        log.info(
            "%s: StreamEvents ended after %d events; so far %s",
            self.system.slug,
            seen,
            self.tally.summary(),
        )
        return seen

    def _feed(self, fields: dict[str, str], catch_up: CatchUp) -> None:
        event_id = netbox_event_id(fields)
        cursor = cursor_position(self.system)
        if event_id.isdigit() and catch_up.covers(int(event_id), cursor):
            self.tally["already seen"] += 1
            return
        event_feed(
            system=self.system,
            position=_position_after(event_id, cursor),
            tally=self.tally,
            raw=fields,
            build=lambda: netbox_event_payload(fields, tz=self.tz),
        )

    def reset(self) -> None:
        self.client.session_id = ""
