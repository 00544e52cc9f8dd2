"""A stand-in for OnGuard's OpenAccess REST API, built from public material only.

Where each thing it serves comes from:

- Sign-in and sessions: POST /api/access/onguard/openaccess/authentication?version=1.0 with
  user_name, password and directory_id answers a session_token; every later request
  carries Session-Token and Application-Id headers; a session idles out after 15 minutes
  (a public OpenAccess middleware's README, "lenel-express-api": "A keepalive runs every
  5 minutes to prevent the 15-minute inactivity timeout"). Here `expire_after_pages`
  ends the session in the middle of a page walk, as that timeout does.
- Instances: GET /instances?type_name=…&filter=…&order_by=…&page_number=…&page_size=…
  answering page_number, page_size, total_pages, total_items, count, item_list of
  {property_value_map} (the OpenAccess 7.5 OpenAPI description's /instances).
- Lnl_LoggedEvent fields: SerialNumber, PanelID, DeviceID, SecondaryDeviceID, Time,
  Description, EventText, Type, SubType, CardNumber, AccessResult, PersonID, Duress
  (DataConduIT's class reference; the same list in erwindevreugd/PSDataConduIT,
  PSDataConduIT/Public/Get-LoggedEvent.ps1). SERIALNUMBER "uniquely identifies the
  instance of the event for a particular panel" (the LENEL MIB): every panel here has its
  own counter, and `panel_reset` starts one over, as a panel reset or replacement does.
- Time: a panel's events carry the offset of the zone it is set to (`Panel.offset`), or
  none at all (`offset=None`: the server's local time), as DataConduIT's CIM datetimes
  and OpenAccess's ISO times do.
- Lnl_Panel (PanelID, Name) and Lnl_Reader (PanelID, ReaderID, Name, HostName): the
  DataConduIT classes, as PSDataConduIT's Get-Panel.ps1 and Get-Reader.ps1 read them.
- filter: a WQL-like where clause (DataConduIT is WMI; OpenAccess takes the same form):
  comparisons joined by AND and OR, in parentheses, strings in double quotes. Times in a
  filter are compared as instants; how a real server parses a time literal is not in the
  public material (docs/CONNECTORS.md says what the connector sends).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

from accesslog.connectors.mapping import aware
from tests.accesslog.fakes.server import FakeHTTPServer, QuietHandler

API = "/api/access/onguard/openaccess"
SERVER_ZONE = ZoneInfo("America/Chicago")
CLASS_SPELLING = {
    "SERIALNUMBER": "SerialNumber",
    "PANELID": "PanelID",
    "DEVICEID": "DeviceID",
    "SECONDARYDEVICEID": "SecondaryDeviceID",
    "TIME": "Time",
    "DESCRIPTION": "Description",
    "EVENTTEXT": "EventText",
    "TYPE": "Type",
    "SUBTYPE": "SubType",
    "CARDNUMBER": "CardNumber",
    "ACCESSRESULT": "AccessResult",
    "PERSONID": "PersonID",
    "DURESS": "Duress",
    "READERID": "ReaderID",
    "NAME": "Name",
    "HOSTNAME": "HostName",
}


@dataclass
class Panel:
    panel_id: int
    name: str
    # Minutes east of UTC of the panel's clock; None: times without an offset.
    offset: int | None = -360
    serial: int = 0


@dataclass
class FakeOnGuard:
    username: str = "responder"
    password: str = "s3cret"
    directory_id: str = "id-1"
    application_id: str = "RESPONDER-TEST"
    panels: dict[int, Panel] = field(default_factory=dict)
    readers: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    # Statuses to answer the next /instances requests with, one each, before real answers.
    failures: list[int] = field(default_factory=list)
    # Spell properties as the class declares them (SerialNumber), not upper-cased.
    class_spelling: bool = False
    # Sessions end after this many more pages are served (None: they never idle out).
    expire_after_pages: int | None = None
    sign_ins: int = 0
    queries: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def panel_add(self, panel_id: int, name: str = "", *, offset: int | None = -360) -> Panel:
        with self.lock:
            panel = self.panels[panel_id] = Panel(panel_id, name or f"Panel {panel_id}", offset)
            return panel

    def panel_reset(self, panel_id: int) -> None:
        """The panel's serial counter starts over, as after a reset or a replacement."""
        with self.lock:
            self.panels[panel_id].serial = 0

    def panel_ahead(self, panel_id: int, serial: int) -> None:
        with self.lock:
            self.panels[panel_id].serial = serial

    def reader_add(self, panel_id: int, reader_id: int, name: str) -> dict:
        reader = {"PANELID": panel_id, "READERID": reader_id, "NAME": name, "HOSTNAME": ""}
        with self.lock:
            self.readers.append(reader)
        return reader

    def event_add(self, *, at: datetime | None = None, **fields: object) -> dict:
        """An event logged now (or `at`) on its panel, with the panel's next serial."""
        with self.lock:
            panel_id = int(fields.pop("PANELID", 1))
            panel = self.panels.get(panel_id) or self.panels.setdefault(
                panel_id, Panel(panel_id, f"Panel {panel_id}")
            )
            panel.serial += 1
            event = {
                "SERIALNUMBER": panel.serial,
                "PANELID": panel_id,
                "DEVICEID": 1,
                "SECONDARYDEVICEID": 0,
                "TIME": panel_time(at or datetime.now(UTC), panel.offset),
                "DESCRIPTION": "Access Granted",
                "EVENTTEXT": "",
                "TYPE": 0,
                "SUBTYPE": 0,
                "CARDNUMBER": 0,
                "ACCESSRESULT": 0,
                "PERSONID": 0,
                **fields,
            }
            self.events.append(event)
            return event

    def sessions_expire(self) -> None:
        with self.lock:
            self.tokens.clear()

    def serve(self) -> FakeHTTPServer:
        return FakeHTTPServer(Handler, self)


def panel_time(moment: datetime, offset: int | None) -> str:
    if offset is None:
        return moment.astimezone(SERVER_ZONE).replace(tzinfo=None).isoformat(timespec="seconds")
    zone = timezone(timedelta(minutes=offset))
    return moment.astimezone(zone).isoformat(timespec="seconds")


# --- The filter: comparisons, AND, OR, parentheses -----------------------------------------

TOKEN = re.compile(r'\s*(?:(\()|(\))|(AND|OR)\b|(\w+)\s*(>=|<=|<>|=|>|<)\s*("[^"]*"|-?\d+))', re.I)


class FilterError(ValueError):
    pass


def filter_matches(text: str, row: dict) -> bool:
    tokens, position = [], 0
    text = text.strip()
    if not text:
        return True
    while position < len(text):
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"cannot parse filter at {text[position:]!r}")
        tokens.append(match.groups())
        position = match.end()
    value, rest = _disjunction(tokens, row)
    if rest:
        raise FilterError("unbalanced filter")
    return value


def _disjunction(tokens: list, row: dict) -> tuple[bool, list]:
    value, tokens = _conjunction(tokens, row)
    while tokens and (tokens[0][2] or "").upper() == "OR":
        other, tokens = _conjunction(tokens[1:], row)
        value = value or other
    return value, tokens


def _conjunction(tokens: list, row: dict) -> tuple[bool, list]:
    value, tokens = _term(tokens, row)
    while tokens and (tokens[0][2] or "").upper() == "AND":
        other, tokens = _term(tokens[1:], row)
        value = value and other
    return value, tokens


def _term(tokens: list, row: dict) -> tuple[bool, list]:
    if not tokens:
        raise FilterError("filter ends early")
    opening, _, _, name, operator, literal = tokens[0]
    if opening:
        value, tokens = _disjunction(tokens[1:], row)
        if not tokens or not tokens[0][1]:
            raise FilterError("missing )")
        return value, tokens[1:]
    if not name:
        raise FilterError(f"unexpected {tokens[0]}")
    return _compare(row.get(name.upper()), operator, literal), tokens[1:]


def _compare(field_value: object, operator: str, literal: str) -> bool:
    if literal.startswith('"'):
        text = literal[1:-1]
        if isinstance(field_value, str) and _is_time(text):
            left, right = aware(field_value, SERVER_ZONE), aware(text, SERVER_ZONE)
        else:
            left, right = str(field_value), text
    else:
        left, right = int(field_value or 0), int(literal)
    return {
        "=": left == right,
        "<>": left != right,
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[operator]


def _is_time(text: str) -> bool:
    try:
        aware(text, SERVER_ZONE)
    except ValueError:
        return False
    return True


# --- HTTP ----------------------------------------------------------------------------------


class Handler(QuietHandler):
    server: FakeHTTPServer

    @property
    def fake(self) -> FakeOnGuard:
        return self.server.fake  # type: ignore[return-value]

    def reply(self, status: int, payload: dict) -> None:
        self.answer(status, json.dumps(payload).encode(), "application/json")

    def error(self, status: int, message: str) -> None:
        self.reply(status, {"error": {"code": f"openaccess.{status}", "message": message}})

    def do_POST(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if url.path != f"{API}/authentication" or parse_qs(url.query).get("version") != ["1.0"]:
            return self.error(404, "not found")
        if self.headers.get("Application-Id") != self.fake.application_id:
            return self.error(401, "unlicensed application")
        body = json.loads(self.body() or b"{}")
        wanted = (self.fake.username, self.fake.password, self.fake.directory_id)
        if (body.get("user_name"), body.get("password"), body.get("directory_id")) != wanted:
            return self.error(401, "invalid credentials")
        token = secrets.token_hex(16)
        with self.fake.lock:
            self.fake.tokens.add(token)
            self.fake.sign_ins += 1
        self.reply(200, {"session_token": token, "token_expiration_time": "", "version": "1.0"})

    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        if url.path != f"{API}/instances":
            return self.error(404, "not found")
        if self.headers.get("Application-Id") != self.fake.application_id:
            return self.error(401, "unlicensed application")
        with self.fake.lock:
            if self.headers.get("Session-Token") not in self.fake.tokens:
                return self.error(401, "invalid session token")
            if self.fake.failures:
                return self.error(self.fake.failures.pop(0), "server trouble")
            self.fake.queries.append(query)
            rows = self._rows(query.get("type_name", ""))
            if self.fake.expire_after_pages is not None:
                self.fake.expire_after_pages -= 1
                if self.fake.expire_after_pages <= 0:
                    self.fake.tokens.clear()
                    self.fake.expire_after_pages = None
        if rows is None:
            return self.error(400, f"unknown type_name {query.get('type_name')!r}")
        try:
            found = [row for row in rows if filter_matches(query.get("filter", ""), row)]
        except (FilterError, ValueError) as exc:
            return self.error(400, str(exc))
        order = query.get("order_by", "").upper()
        if order:
            found.sort(key=lambda row: _order_key(row, order))
        size, number = int(query.get("page_size", 10)), int(query.get("page_number", 1))
        page = found[(number - 1) * size : number * size]
        if self.fake.class_spelling:
            page = [{CLASS_SPELLING.get(k, k): v for k, v in row.items()} for row in page]
        self.reply(
            200,
            {
                "page_number": number,
                "page_size": size,
                "total_pages": max(1, -(-len(found) // size)),
                "total_items": len(found),
                "count": len(page),
                "type_name": query.get("type_name"),
                "item_list": [{"property_value_map": row} for row in page],
                "version": "1.0",
            },
        )

    def _rows(self, type_name: str) -> list[dict] | None:
        if type_name == "Lnl_LoggedEvent":
            return list(self.fake.events)
        if type_name == "Lnl_Panel":
            return [{"PANELID": p.panel_id, "NAME": p.name} for p in self.fake.panels.values()]
        if type_name == "Lnl_Reader":
            return list(self.fake.readers)
        return None


def _order_key(row: dict, order: str) -> object:
    value = row.get(order)
    if order == "TIME":
        return aware(str(value), SERVER_ZONE)
    return value if value is not None else -1
