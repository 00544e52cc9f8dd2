"""LenelS2 NetBox through the NBAPI: sign in, catch up from the histories, then stream.

StreamEvents only sends what happens while it is open. So each connection first opens the
stream, then reads what happened while the connector was down: badge reads from
GetAccessHistory after the last LOGID read, door alarms from GetEventHistory since the
newest event time seen (less an overlap), and only then reads the stream. What falls
between the two waits in the socket and is recognised as the same event.

Keys, not names (docs/CONNECTORS.md): a door is its PORTALKEY (asked for in the stream's
TAGNAMES; history records carry it and no portal name). An event's id is made of what
both sources give: the door's key, the time to the second, the type and the person. The
stream's ACTIVITYID and the history's LOGID are not known to be one numbering, so
neither is the id, and only the history's own LOGID moves the history cursor.
"""

from __future__ import annotations

import hashlib
import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from http.client import HTTPResponse

from django.conf import settings
from django.utils import timezone

from accesslog.connectors.base import (
    SessionExpired,
    Stopper,
    Tally,
    TransientError,
    cursor_document,
    cursor_dump,
    cursor_position,
    cursor_save,
    event_feed,
    stored_ids,
)
from accesslog.connectors.health import health_contact, health_silence_warn
from accesslog.connectors.http import Endpoint, http_open
from accesslog.connectors.mapping import aware, event_type_of
from accesslog.connectors.xmlstream import NetBoxDocuments
from accesslog.models import AccessSystem
from accesslog.services import VendorDoor

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
    "PORTALKEY",
    "PORTALNAME",
    "READERKEY",
    "RDRNAME",
    "NODENAME",
]
# Alarms are read again from this far before the newest time seen: the controller's
# clock and the order in which it logs are not ours.
EVENT_OVERLAP = timedelta(seconds=60)
# NBAPI APIERROR codes; 5 is what an expired or unknown session gets.
API_ERRORS = {
    1: "API failed to initialise",
    2: "API not enabled",
    3: "invalid command",
    4: "unable to parse",
    5: "authentication failure",
    6: "unknown command",
}
# NetBox pings an idle stream; silence this long (CONNECTOR_SILENCE_SECONDS) is a dead link.
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

    def access_history_after(self, log_id: int | None, *, page_size: int) -> list[dict[str, str]]:
        """Up to page_size access records with a higher LOGID, oldest first; None: the
        newest page_size records (the controller answers newest first without AFTERLOGID)."""
        params = {"AFTERLOGID": log_id, "MAXRECORDS": page_size}
        document = self._command("GetAccessHistory", params)
        if _not_found(document):
            return []
        rows = _records(nbapi_response(document), "DETAILS/ACCESSES/ACCESS")
        try:
            return sorted(rows, key=lambda row: int(row["LOGID"]))
        except (KeyError, ValueError) as exc:
            raise TransientError(
                f"GetAccessHistory answered a record without LOGID: {exc!r}"
            ) from None

    def event_history_since(self, start: str, *, max_pages: int) -> list[dict[str, str]]:
        """The event records from `start` (the controller's own time format) on, page by
        page through NEXTKEY."""
        rows: list[dict[str, str]] = []
        next_key = None
        for _ in range(max_pages):
            document = self._command("GetEventHistory", {"STARTDTTM": start, "NEXTKEY": next_key})
            if _not_found(document):
                break
            response = nbapi_response(document)
            rows += _records(response, "DETAILS/EVENTS/EVENT")
            next_key = (response.findtext("DETAILS/NEXTKEY") or "").strip()
            if not next_key or next_key == "-1":
                break
        return rows

    def portals(self) -> list[dict[str, str]]:
        """Every portal (PORTALKEY, NAME) through GetPortals' STARTFROMKEY/NEXTKEY pages."""
        rows: list[dict[str, str]] = []
        start = None
        for _ in range(1000):
            document = self._command("GetPortals", {"STARTFROMKEY": start})
            if _not_found(document):
                break
            response = nbapi_response(document)
            rows += _records(response, "DETAILS/PORTALS/PORTAL")
            start = (response.findtext("DETAILS/NEXTKEY") or "").strip()
            if not start or start == "-1":
                break
        return rows

    def ping(self) -> bool:
        """Whether the controller answers a command at all (GetAPIVersion)."""
        try:
            nbapi_response(self._command("GetAPIVersion", {}))
        except (TransientError, OSError):
            return False
        return True

    def _command(self, name: str, params: dict) -> ET.Element:
        if not self.session_id:
            self.login()
        params = {key: value for key, value in params.items() if value is not None}
        body = nbapi_command(name, params=params, session_id=self.session_id)
        with self._post(body) as response:
            raw = response.read()
        documents = NetBoxDocuments().feed(raw)
        if not documents:
            raise TransientError(f"NBAPI {name} answered no document: {raw[:200]!r}")
        return documents[0]

    def stream(self, *, timeout: float) -> HTTPResponse:
        """The open StreamEvents response; its parts arrive as events happen."""
        if not self.session_id:
            self.login()
        tags = {tag: None for tag in TAGS}
        command = nbapi_command(
            "StreamEvents", params={"TAGNAMES": tags}, session_id=self.session_id
        )
        return self._post(command, timeout=timeout)

    def _post(self, body: bytes, *, timeout: float | None = None) -> HTTPResponse:
        headers = {"Content-Type": "application/xml"}
        return http_open(
            self.endpoint, PATH, method="POST", body=body, headers=headers, timeout=timeout
        )


def _records(response: ET.Element, path: str) -> list[dict[str, str]]:
    # Direct children only: a portal's nested READERS stay out of its fields.
    return [
        {child.tag: (child.text or "").strip() for child in record if not len(child)}
        for record in response.findall(path)
    ]


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
    # The guide: an invalid access is the one that carries a REASON code.
    denied = access.get("REASON", "") not in ("", "0")
    fields = {
        "CDT": access.get("DTTM") or access.get("NODEDTTM", ""),
        "DESCNAME": "Access denied" if denied else "Access granted",
        "PERSONID": access.get("PERSONID", ""),
        "PORTALKEY": access.get("PORTALKEY", ""),
        "READERKEY": access.get("READERKEY", ""),
        "RDRNAME": access.get("READER", ""),
    }
    extra = ("LOGID", "NODEDTTM", "TYPE", "REASON")
    return fields | {tag: access[tag] for tag in extra if access.get(tag)}


def history_event_fields(record: dict[str, str]) -> dict[str, str]:
    """A GetEventHistory record in the StreamEvents tags (its time may be DTTM)."""
    return {"CDT": record.get("DTTM", "")} | {k: v for k, v in record.items() if v}


def netbox_door(fields: dict[str, str]) -> str:
    """The door's key: the portal's PORTALKEY; a reader without a portal, or an event
    with neither (an alarm input), keyed as such so IT can still map it."""
    if portal := fields.get("PORTALKEY"):
        return portal
    if reader := fields.get("READERKEY"):
        return f"reader:{reader}"
    if name := fields.get("EVTNAME"):
        return f"event:{name}"
    return f"node:{fields.get('NODENAME', '')}/{fields.get('RDRNAME', '')}"


def netbox_event_id(fields: dict[str, str], *, tz: tzinfo) -> str:
    """The same for the stream's copy of an event and the history's."""
    event_type = event_type_of(fields.get("DESCNAME"), fields.get("EVTNAME"))
    moment = aware(fields["CDT"], tz).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    person = fields.get("PERSONID", "")
    canonical = "\x1f".join([netbox_door(fields), moment, str(event_type), person])
    return "nb-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def netbox_event_payload(fields: dict[str, str], *, tz: tzinfo) -> dict | None:
    event_type = event_type_of(fields.get("DESCNAME"), fields.get("EVTNAME"))
    if event_type is None:
        return None
    payload = {
        "source_event_id": netbox_event_id(fields, tz=tz),
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
    history_page_size: int = 200
    # A long outage is read over several connections rather than in one unbounded step.
    history_max_pages: int = 50
    # A first start reads this much history; 0 starts at "now" (and announces nothing old).
    backfill: timedelta = field(
        default_factory=lambda: timedelta(minutes=settings.CONNECTOR_BACKFILL_MINUTES)
    )
    silence: float = field(default_factory=lambda: float(settings.CONNECTOR_SILENCE_SECONDS))

    def step(self) -> int:
        """One connection: catch up from the histories, then read the stream until it ends."""
        try:
            return self._connect()
        except SessionExpired:
            log.info("%s: NBAPI session expired; signing in again", self.system.slug)
            self.client.session_id = ""
            return self._connect()

    def _connect(self) -> int:
        with self.stopper.blocking():
            response = self.client.stream(timeout=self.silence)
        with response:
            # Opened first, read last: what happens during the catch-up waits in the socket.
            seen, complete = self._catch_up()
            if not complete:
                return seen  # the next connection goes on from the cursor
            return seen + self._stream(response)

    # --- Cursor: {"log": last LOGID read, "events_at": newest event time seen} -------------

    def _cursor(self) -> dict:
        cursor = cursor_document(self.system)
        if cursor is not None:
            return cursor
        legacy = cursor_position(self.system)
        if legacy.isdigit():
            # Written by the version that took ACTIVITYID for a LOGID: the best guess left.
            cursor = {"log": int(legacy), "events_at": timezone.now().isoformat()}
        else:
            cursor = self._cursor_first()
        cursor_save(self.system, cursor)
        return cursor

    def _cursor_first(self) -> dict:
        start = timezone.now() - self.backfill
        log.info("%s: first start, reading events from %s on", self.system.slug, start)
        with self.stopper.blocking():
            newest = self.client.access_history_after(None, page_size=self.history_page_size)
        head = max((int(row["LOGID"]) for row in newest), default=0)
        cursor = {"log": head, "events_at": start.isoformat()}
        if self.backfill:
            # The newest page only: a backfill is for minutes, not for the whole log.
            for access in newest:
                fields = access_event_fields(access)
                if aware(fields["CDT"], self.tz) >= start:
                    self._feed(fields, cursor, known=set())
        return cursor

    def _advance(self, cursor: dict, fields: dict[str, str]) -> dict:
        moment = aware(fields["CDT"], self.tz).astimezone(UTC)
        newest = max(datetime.fromisoformat(cursor["events_at"]), moment)
        cursor = cursor | {"events_at": newest.isoformat()}
        if (log_id := fields.get("LOGID", "")).isdigit():
            cursor["log"] = max(int(cursor["log"]), int(log_id))
        return cursor

    def _feed(self, fields: dict[str, str], cursor: dict, *, known: set[str]) -> dict:
        try:
            cursor = self._advance(cursor, fields)
            event_id = netbox_event_id(fields, tz=self.tz)
        except (KeyError, ValueError) as exc:
            event_id = f"unreadable: {exc}"
        if event_id in known:
            self.tally["already seen"] += 1
            cursor_save(self.system, cursor)
            return cursor
        event_feed(
            system=self.system,
            position=cursor_dump(cursor),
            tally=self.tally,
            raw=fields,
            build=lambda: netbox_event_payload(fields, tz=self.tz),
        )
        known.add(event_id)
        return cursor

    def _known(self, rows: list[dict[str, str]]) -> set[str]:
        ids = []
        for fields in rows:
            try:
                ids.append(netbox_event_id(fields, tz=self.tz))
            except (KeyError, ValueError):
                continue
        return stored_ids(self.system, ids)

    # --- Catch-up ---------------------------------------------------------------------------

    def _catch_up(self) -> tuple[int, bool]:
        """Badge reads and door alarms since the cursor, fed together in time order."""
        cursor = self._cursor()
        try:
            accesses, complete = self._access_history(int(cursor["log"]))
        except CommandRefused as exc:
            # An older controller, or an API user without the right to read the log: live
            # alarms matter more than the gap, so stream anyway, and say what is missed.
            log.warning(
                "%s: no history after %s (%s); badge reads while it was down are missed",
                self.system.slug,
                cursor["log"],
                exc,
            )
            accesses, complete = [], True
        try:
            alarms = self._event_history(cursor)
        except CommandRefused as exc:
            log.warning(
                "%s: no event history since %s (%s); alarms while it was down are missed",
                self.system.slug,
                cursor["events_at"],
                exc,
            )
            alarms = []
        rows = self._in_time_order(accesses + alarms)
        if not complete and accesses:
            # The rest of the access log comes next connection: no alarm may pass it.
            last = self._moment(accesses[-1])
            rows = [row for row in rows if "LOGID" in row or self._moment(row) <= last]
        known = self._known(rows)
        for fields in rows:
            if self.stopper.stopped:
                return len(rows), False
            self._feed(fields, json_cursor(self.system), known=known)
        log.info("%s: %d events from the histories", self.system.slug, len(rows))
        return len(rows), complete

    def _moment(self, fields: dict[str, str]) -> datetime:
        return aware(fields["CDT"], self.tz)

    def _in_time_order(self, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        def key(row: dict[str, str]) -> tuple[datetime, int]:
            try:
                return self._moment(row), int(row.get("LOGID") or 0)
            except (KeyError, ValueError):
                return datetime.min.replace(tzinfo=UTC), 0  # fed first, logged and skipped

        return sorted(rows, key=key)

    def _access_history(self, after: int) -> tuple[list[dict[str, str]], bool]:
        rows: list[dict[str, str]] = []
        for _ in range(self.history_max_pages):
            with self.stopper.blocking():
                page = self.client.access_history_after(after, page_size=self.history_page_size)
            rows += [access_event_fields(access) for access in page]
            if len(page) < self.history_page_size:
                return rows, True
            if int(page[-1]["LOGID"]) <= after:
                raise TransientError(f"GetAccessHistory did not move past LOGID {after}")
            after = int(page[-1]["LOGID"])
        log.info("%s: the access log goes on past LOGID %s", self.system.slug, after)
        return rows, False

    def _event_history(self, cursor: dict) -> list[dict[str, str]]:
        """Door alarms raised while the connector was down (the access log has none)."""
        since = datetime.fromisoformat(cursor["events_at"]) - EVENT_OVERLAP
        # The controller's own format: local time, as `dateformat` asks for.
        start = since.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        with self.stopper.blocking():
            records = self.client.event_history_since(start, max_pages=self.history_max_pages)
        rows = [history_event_fields(record) for record in records]
        return [row for row in rows if event_type_of(row.get("DESCNAME"), row.get("EVTNAME"))]

    # --- The stream -------------------------------------------------------------------------

    def _stream(self, response: HTTPResponse) -> int:
        seen = parts = 0
        documents = NetBoxDocuments()
        known: set[str] = set()
        heard = time.monotonic()
        while not self.stopper.stopped:
            try:
                with self.stopper.blocking():
                    chunk = response.read1(65536)
            except TimeoutError:
                self._silent(time.monotonic() - heard)
            if not chunk:
                if not parts:
                    raise TransientError("StreamEvents closed without a single answer")
                break
            heard = time.monotonic()
            for document in documents.feed(chunk):
                parts += 1
                event = nbapi_response(document).find("EVENT")
                if event is None:  # a keep-alive ping: the link is alive
                    health_contact(system=self.system)
                    continue
                seen += 1
                fields = {child.tag: (child.text or "").strip() for child in event}
                self._feed(fields, json_cursor(self.system), known=known | self._known([fields]))
                if seen % 100 == 0:
                    log.info("%s: so far %s", self.system.slug, self.tally.summary())
        log.info(
            "%s: StreamEvents ended after %d events; so far %s",
            self.system.slug,
            seen,
            self.tally.summary(),
        )
        return seen

    def _silent(self, silent_for: float) -> None:
        """The stream sent nothing, not even a keep-alive, for the silence threshold."""
        if self.client.ping():
            health_silence_warn(system=self.system, silent_for=silent_for)
            raise TransientError(
                f"StreamEvents silent for {silent_for:.0f} s while the controller answers"
            )
        raise TransientError(f"StreamEvents silent for {silent_for:.0f} s; no answer to a ping")

    def reset(self) -> None:
        self.client.session_id = ""


def json_cursor(system: AccessSystem) -> dict:
    return cursor_document(system) or {"log": 0, "events_at": timezone.now().isoformat()}


def netbox_doors(client: NetBoxClient) -> list[VendorDoor]:
    """Every portal, keyed by PORTALKEY; a door created by name before is re-keyed."""
    return [
        VendorDoor(key=row["PORTALKEY"], name=row.get("NAME", ""), former_key=row.get("NAME", ""))
        for row in client.portals()
        if row.get("PORTALKEY")
    ]
