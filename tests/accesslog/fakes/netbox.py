"""A stand-in for a LenelS2 NetBox controller's NBAPI, built from public material only.

Where each thing it serves comes from (J-MaFf/s2-netbox-mcp, a public NBAPI client whose
docs/reference/nbapi-command-diff.md was compiled from the NBAPI guides v1 #API-UG-22 and
v2 #API2-UG-8, and whose GetAccessHistory was checked against a NetBox 6.2 controller):

- Transport: XML commands POSTed to /nbws/goforms/nbapi inside
  <NETBOX-API sessionid="…"><COMMAND name="…" num="1">; answers
  <NETBOX sessionid="…"><RESPONSE command="…">; a bad session gets <APIERROR>5</APIERROR>
  (the guide's APIERROR codes). Login takes USERNAME and PASSWORD.
- StreamEvents: multipart/related, one text/xml part per event (<RESPONSE
  command="StreamEvents"><EVENT>…) or keep-alive ping (a RESPONSE without EVENT), on a
  response that stays open; only the tags named in TAGNAMES are sent. Only events that
  happen while a stream is open reach it (`live=True`). `cut_in_record` ends the
  connection in the middle of an event's part, as a controller restart or a dropped link
  does.
- GetAccessHistory (s2-netbox-mcp src/tools/events.ts: STARTLOGID, AFTERLOGID, ORDER,
  MAXRECORDS; records DETAILS/ACCESSES/ACCESS with LOGID, PERSONID, READER, READERKEY,
  PORTALKEY, DTTM, NODEDTTM, TYPE, REASON, and no portal name; NEXTLOGID): with
  AFTERLOGID, records after it in ascending order; without it, the newest first. Nothing
  to answer is CODE "NOT FOUND". It holds accesses only, never alarms. Its LOGIDs are
  numbered apart from the stream's ACTIVITYIDs here: nothing public says they are one.
- GetEventHistory (src/tools/events.ts: EVENTNAME, STARTDTTM, ENDDTTM, NEXTKEY): the
  event (alarm) history, paged through NEXTKEY. ASSUMED, not in the public material
  found: its records' tags (DETAILS/EVENTS/EVENT with DTTM, DESCNAME, EVTNAME,
  PORTALKEY, READERKEY, NODENAME) and STARTDTTM's format ("YYYY-MM-DD HH:MM:SS", local).
- GetPortals (src/tools/portal.ts, src/guide/apiQuirks.ts): DETAILS/PORTALS/PORTAL with
  PORTALKEY, NAME and nested READERS/READER (READERKEY, NAME, PORTALORDER), paged through
  STARTFROMKEY and NEXTKEY. GetAPIVersion answers anything signed in (a ping).
- Times: `dateformat="tzoffset"` puts the offset after the time ("2026-11-28 08:14:09
  -06:00"); NODEDTTM is the node's own clock, which may keep another offset.
"""

from __future__ import annotations

import secrets
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from accesslog.connectors.mapping import aware
from tests.accesslog.fakes.server import FakeHTTPServer, QuietHandler

PATH = "/nbws/goforms/nbapi"
BOUNDARY = "NetBoxBoundary4f1c"
DEFAULT_MAXRECORDS = 20
ZONE = ZoneInfo("America/Chicago")


def stamp(moment: datetime, offset_minutes: int | None = None) -> str:
    zone = timezone(timedelta(minutes=offset_minutes)) if offset_minutes is not None else ZONE
    local = moment.astimezone(zone)
    sign = "+" if local.utcoffset() >= timedelta(0) else "-"
    minutes = abs(int(local.utcoffset().total_seconds() // 60))
    return f"{local:%Y-%m-%d %H:%M:%S} {sign}{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class FakeNetBox:
    username: str = "responder"
    password: str = "s3cret"
    portals: dict[str, str] = field(default_factory=dict)  # PORTALKEY -> NAME
    readers: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (name, portal)
    # The controller's logs.
    accesses: list[dict[str, str]] = field(default_factory=list)
    alarms: list[dict[str, str]] = field(default_factory=list)
    # What the next stream sends: events that happen while it is open.
    live: list[dict[str, str]] = field(default_factory=list)
    next_log_id: int = 5000
    next_activity_id: int = 91000
    node_offset: int = -300  # the node's clock keeps another offset than the server
    history_queries: list[dict[str, str]] = field(default_factory=list)
    event_history_queries: list[dict[str, str]] = field(default_factory=list)
    history_refused: bool = False
    sessions: set[str] = field(default_factory=set)
    logins: int = 0
    streams: int = 0
    pings: int = 0
    write_size: int = 65536
    cut_in_record: int | None = None  # the index of the live event cut mid-record
    # Called once the stream is open, before anything is sent: what happens meanwhile.
    on_stream_open: Callable[[], None] | None = None
    # Called after each event part is sent, with its index: lets a test hold the stream.
    after_event: Callable[[int], None] | None = None
    # The stream opens and then says nothing, not even a keep-alive, until released.
    silent: bool = False
    # The stream stays open, sending events as they happen and a keep-alive each second
    # (as a controller does), until released; by default it ends once it has sent all.
    hold_open: bool = False
    arrived: threading.Condition = field(default_factory=threading.Condition)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def portal_add(self, key: str, name: str, *readers: tuple[str, str]) -> None:
        self.portals[key] = name
        for reader_key, reader_name in readers:
            self.readers[reader_key] = (reader_name, key)

    def _reader_of(self, portal: str) -> tuple[str, str]:
        for key, (name, owner) in self.readers.items():
            if owner == portal:
                return key, name
        return "", ""

    def badge(
        self,
        portal: str,
        *,
        person: str = "_17",
        denied: bool = False,
        at: datetime | None = None,
        live: bool = True,
    ) -> dict[str, str]:
        """A badge read: in the access log, and on an open stream when `live`."""
        at = at or datetime.now(UTC)
        reader_key, reader_name = self._reader_of(portal)
        with self.lock:
            self.next_log_id += 1
            access = {
                "LOGID": str(self.next_log_id),
                "PERSONID": person,
                "READER": reader_name,
                "READERKEY": reader_key,
                "PORTALKEY": portal,
                "DTTM": stamp(at),
                "NODEDTTM": stamp(at, self.node_offset),
                "TYPE": "1",
                "REASON": "12" if denied else "",
            }
            self.accesses.append(access)
        if live:
            self._stream_add(
                at,
                DESCNAME="Access denied" if denied else "Access granted",
                PERSONID=person,
                PERSONNAME=f"Person {person}",
                PORTALKEY=portal,
                PORTALNAME=self.portals.get(portal, ""),
                READERKEY=reader_key,
                RDRNAME=reader_name,
            )
        return access

    def alarm(
        self,
        portal: str,
        description: str = "Door forced open",
        *,
        at: datetime | None = None,
        live: bool = True,
    ) -> dict[str, str]:
        """A door alarm: in the event history (never the access log), and live."""
        at = at or datetime.now(UTC)
        record = {
            "DTTM": stamp(at),
            "DESCNAME": description,
            "EVTNAME": "",
            "PORTALKEY": portal,
            "READERKEY": "",
            "NODENAME": "Node 1",
        }
        with self.lock:
            self.alarms.append(record)
        if live:
            self._stream_add(
                at, DESCNAME=description, PORTALKEY=portal, PORTALNAME=self.portals.get(portal, "")
            )
        return record

    def _stream_add(self, at: datetime, **tags: str) -> None:
        with self.lock:
            self.next_activity_id += 1
            self.live.append({"ACTIVITYID": str(self.next_activity_id), "CDT": stamp(at), **tags})
        with self.arrived:
            self.arrived.notify_all()

    def sessions_expire(self) -> None:
        with self.lock:
            self.sessions.clear()

    def restart(self) -> None:
        """The controller restarts: sessions end, what the stream had not sent is gone
        from it (the logs keep everything)."""
        with self.lock:
            self.sessions.clear()
            self.live.clear()

    def serve(self) -> FakeHTTPServer:
        return FakeHTTPServer(Handler, self)


def document(command: str, *, session_id: str = "", children: str = "") -> bytes:
    attributes = f' sessionid="{session_id}"' if session_id else ""
    return (
        f'<NETBOX{attributes}><RESPONSE command="{command}" num="1">{children}</RESPONSE></NETBOX>'
    ).encode()


def record_xml(fields: dict[str, str], *, tag: str) -> str:
    record = ET.Element(tag)
    for name, value in fields.items():
        ET.SubElement(record, name).text = value
    return ET.tostring(record, encoding="unicode")


def success(details: str) -> str:
    return f"<CODE>SUCCESS</CODE><DETAILS>{details}</DETAILS>"


NOT_FOUND = "<CODE>NOT FOUND</CODE>"


class Handler(QuietHandler):
    server: FakeHTTPServer

    @property
    def fake(self) -> FakeNetBox:
        return self.server.fake  # type: ignore[return-value]

    def do_POST(self) -> None:  # noqa: N802
        if self.path != PATH:
            return self.answer(410, b"Gone", "text/plain")
        try:
            root = ET.fromstring(self.body())
        except ET.ParseError:
            return self.xml(document("", children="<APIERROR>4</APIERROR>"))
        command = root.find("COMMAND")
        name = command.get("name") if command is not None else ""
        if name == "Login":
            return self.login(command)
        if root.get("sessionid") not in self.fake.sessions:
            return self.xml(document(name, children="<APIERROR>5</APIERROR>"))
        params = {child.tag: (child.text or "") for child in command.iterfind("PARAMS/*")}
        handlers = {
            "StreamEvents": lambda: self.stream(command),
            "GetAccessHistory": lambda: self.access_history(params),
            "GetEventHistory": lambda: self.event_history(params),
            "GetPortals": lambda: self.portals(params),
            "GetAPIVersion": self.api_version,
        }
        if name not in handlers:
            return self.xml(document(name, children="<APIERROR>6</APIERROR>"))
        handlers[name]()

    def xml(self, body: bytes) -> None:
        self.answer(200, body, "text/xml")

    def login(self, command: ET.Element) -> None:
        given = (command.findtext("PARAMS/USERNAME"), command.findtext("PARAMS/PASSWORD"))
        if given != (self.fake.username, self.fake.password):
            fail = "<CODE>FAIL</CODE><DETAILS><ERRMSG>Invalid login</ERRMSG></DETAILS>"
            return self.xml(document("Login", children=fail))
        session_id = secrets.token_hex(8)
        with self.fake.lock:
            self.fake.sessions.add(session_id)
            self.fake.logins += 1
        self.xml(document("Login", session_id=session_id, children="<CODE>SUCCESS</CODE>"))

    def api_version(self) -> None:
        with self.fake.lock:
            self.fake.pings += 1
        self.xml(document("GetAPIVersion", children=success("<APIVERSION>1.0</APIVERSION>")))

    def access_history(self, params: dict[str, str]) -> None:
        with self.fake.lock:
            self.fake.history_queries.append(params)
            history = list(self.fake.accesses)
        if self.fake.history_refused:
            fail = "<CODE>FAIL</CODE><DETAILS><ERRMSG>Permission denied</ERRMSG></DETAILS>"
            return self.xml(document("GetAccessHistory", children=fail))
        size = int(params.get("MAXRECORDS") or DEFAULT_MAXRECORDS)
        if params.get("AFTERLOGID"):
            page = [a for a in history if int(a["LOGID"]) > int(params["AFTERLOGID"])][:size]
        else:
            page = history[::-1][:size]
        if not page:
            return self.xml(document("GetAccessHistory", children=NOT_FOUND))
        accesses = "".join(record_xml(access, tag="ACCESS") for access in page)
        next_log_id = max(int(access["LOGID"]) for access in page) + 1
        details = f"<ACCESSES>{accesses}</ACCESSES><NEXTLOGID>{next_log_id}</NEXTLOGID>"
        self.xml(document("GetAccessHistory", children=success(details)))

    def event_history(self, params: dict[str, str], size: int = 3) -> None:
        with self.fake.lock:
            self.fake.event_history_queries.append(params)
            alarms = list(self.fake.alarms)
        start = aware(params["STARTDTTM"], ZONE) if params.get("STARTDTTM") else None
        found = [a for a in alarms if start is None or aware(a["DTTM"], ZONE) >= start]
        offset = int(params.get("NEXTKEY") or 0)
        page = found[offset : offset + size]
        if not page:
            return self.xml(document("GetEventHistory", children=NOT_FOUND))
        more = offset + size < len(found)
        events = "".join(record_xml(alarm, tag="EVENT") for alarm in page)
        next_key = str(offset + size) if more else "-1"
        details = f"<EVENTS>{events}</EVENTS><NEXTKEY>{next_key}</NEXTKEY>"
        self.xml(document("GetEventHistory", children=success(details)))

    def portals(self, params: dict[str, str], size: int = 2) -> None:
        keys = sorted(self.fake.portals, key=int)
        offset = keys.index(params["STARTFROMKEY"]) if params.get("STARTFROMKEY") else 0
        page = keys[offset : offset + size]
        parts = []
        for key in page:
            readers = "".join(
                f"<READER><READERKEY>{reader}</READERKEY><NAME>{name}</NAME>"
                f"<PORTALORDER>1</PORTALORDER></READER>"
                for reader, (name, owner) in self.fake.readers.items()
                if owner == key
            )
            parts.append(
                f"<PORTAL><PORTALKEY>{key}</PORTALKEY><NAME>{self.fake.portals[key]}</NAME>"
                f"<READERS>{readers}</READERS></PORTAL>"
            )
        next_key = keys[offset + size] if offset + size < len(keys) else "-1"
        details = f"<PORTALS>{''.join(parts)}</PORTALS><NEXTKEY>{next_key}</NEXTKEY>"
        self.xml(document("GetPortals", children=success(details)))

    def stream(self, command: ET.Element) -> None:
        tags = [child.tag for child in command.iterfind("PARAMS/TAGNAMES/*")]
        with self.fake.lock:
            self.fake.streams += 1
        # HTTP/1.0 and no Content-Length: the stream is open until the server closes it.
        self.send_response(200)
        self.send_header(
            "Content-Type", f'multipart/related; type="text/xml"; boundary={BOUNDARY}'
        )
        self.end_headers()
        if self.fake.silent:
            self.wfile.flush()
            self.fake.release.wait(10)
            return
        self.part(document("StreamEvents"))  # a ping
        if self.fake.on_stream_open:
            self.fake.on_stream_open()
        while True:
            self.send_live(tags)
            if not self.fake.hold_open or self.fake.release.is_set():
                return
            with self.fake.arrived:
                if not self.fake.live and not self.fake.arrived.wait(1.0):
                    self.part(document("StreamEvents"))  # the keep-alive

    def send_live(self, tags: list[str]) -> None:
        with self.fake.lock:
            events, self.fake.live = list(self.fake.live), []
        for index, fields in enumerate(events):
            sent = {tag: fields[tag] for tag in tags if tag in fields}
            xml = document("StreamEvents", children=record_xml(sent, tag="EVENT"))
            if index == self.fake.cut_in_record:
                self.part(xml, cut=len(xml) // 2)
                return
            self.part(xml)
            self.part(document("StreamEvents"))
            if self.fake.after_event:
                self.fake.after_event(index)

    def part(self, xml: bytes, *, cut: int | None = None) -> None:
        data = (
            f"--{BOUNDARY}\r\nContent-Type: text/xml\r\nContent-Length: {len(xml)}\r\n\r\n".encode()
            + xml
            + b"\r\n"
        )
        if cut is not None:
            data = data[: len(data) - len(xml) - 2 + cut]
        size = self.fake.write_size
        for start in range(0, len(data), size):
            self.wfile.write(data[start : start + size])
            self.wfile.flush()
