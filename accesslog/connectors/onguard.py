"""LenelS2 OnGuard through OpenAccess (REST): poll each panel's logged events.

`Lnl_LoggedEvent.SERIALNUMBER` numbers the events of one panel, not of the system (the
LENEL MIB and DataConduIT's class reference: "uniquely identifies the instance of the event
for a particular panel"), and a panel's counter starts over when the panel is reset. So
the cursor is kept per panel (docs/CONNECTORS.md): the highest serial read, the newest
event time read, and since when the current serial count runs. Each poll asks, per panel,
for events with a higher serial in the current count (a panel's buffer uploaded after an
outage carries old times but new serials) or a time at or after the newest one (a count
that started over), and drops those already stored. An event's id is panel, serial and
time: serials repeat after a reset, the three together do not.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Max, Q
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
from accesslog.connectors.http import Endpoint, HTTPStatusError, http_open
from accesslog.connectors.mapping import aware, event_type_of
from accesslog.models import AccessSystem, Event, EventType
from accesslog.services import VendorDoor

log = logging.getLogger("accesslog.connectors")

API = "/api/access/onguard/openaccess"
VERSION = "1.0"
# Lnl_LoggedEvent.ACCESSRESULT (DataConduIT): 0 other, 1 unknown, 2 granted, 3 denied, 4 n/a.
ACCESS_RESULTS = {2: EventType.ACCESS_GRANTED, 3: EventType.ACCESS_DENIED}


@dataclass
class OnGuardClient:
    endpoint: Endpoint
    username: str
    password: str
    directory_id: str
    application_id: str
    session_token: str = field(default="", repr=False)

    def authenticate(self) -> None:
        body = {
            "user_name": self.username,
            "password": self.password,
            "directory_id": self.directory_id,
        }
        answer = self._request("POST", "/authentication", body=body, signed_in=False)
        token = answer.get("session_token")
        if not token:
            raise TransientError(f"OpenAccess sign-in answered no session_token: {answer}")
        self.session_token = token
        log.info("OpenAccess: signed in as %s", self.username)

    def instances(
        self,
        type_name: str,
        *,
        where: str = "",
        order_by: str = "",
        page_size: int = 100,
        max_pages: int = 50,
    ) -> list[dict]:
        """Every instance of a class that matches, walking the pages (up to max_pages).

        A session that expires during the walk is signed in again and the walk goes on at
        the same page (OpenAccess idles sessions out; `_get` retries once)."""
        rows: list[dict] = []
        for page_number in range(1, max_pages + 1):
            query = {"type_name": type_name, "page_number": page_number, "page_size": page_size}
            query |= {"filter": where} if where else {}
            query |= {"order_by": order_by} if order_by else {}
            answer = self._get("/instances", query)
            try:
                rows += [_upper_keys(item["property_value_map"]) for item in answer["item_list"]]
                total_pages = int(answer.get("total_pages") or 1)
            except (KeyError, TypeError, ValueError) as exc:
                raise TransientError(f"OpenAccess answered an unexpected shape: {exc!r}") from None
            if page_number >= total_pages or len(answer["item_list"]) < page_size:
                break
        return rows

    def _get(self, path: str, query: dict) -> dict:
        if not self.session_token:
            self.authenticate()
        try:
            return self._request("GET", path, query=query)
        except SessionExpired:
            # The session timed out (OpenAccess idles them out): sign in once more.
            self.authenticate()
            return self._request("GET", path, query=query)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict | None = None,
        body: dict | None = None,
        signed_in: bool = True,
    ) -> dict:
        headers = {
            "Application-Id": self.application_id,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if signed_in:
            headers["Session-Token"] = self.session_token
        url = f"{API}{path}?{urlencode({'version': VERSION, **(query or {})})}"
        data = json.dumps(body).encode() if body is not None else None
        try:
            with http_open(self.endpoint, url, method=method, body=data, headers=headers) as r:
                raw = r.read()
        except HTTPStatusError as exc:
            if exc.status == 401 and signed_in:
                raise SessionExpired(str(exc)) from None
            raise
        try:
            return json.loads(raw)
        except ValueError:
            raise TransientError(f"OpenAccess answered non-JSON: {raw[:200]!r}") from None


def _upper_keys(values: dict) -> dict:
    # OpenAccess spells properties as the class defines them (SerialNumber, PanelID);
    # DataConduIT queries upper-case them. Either way, one spelling here.
    return {key.upper(): value for key, value in values.items()}


def _text(value: object) -> str:
    return "" if value in (None, 0, "0") else str(value)


def event_time(row: dict, *, tz: tzinfo) -> datetime:
    return aware(str(row["TIME"]), tz).astimezone(UTC)


def onguard_event_id(row: dict, *, tz: tzinfo) -> str:
    """Panel, serial and the event's UTC second (accesslog/migrations/0002 gives stored
    events the same form)."""
    stamp = event_time(row, tz=tz).strftime("%Y%m%dT%H%M%SZ")
    return f"{row['PANELID']}:{int(row['SERIALNUMBER'])}:{stamp}"


def logged_event_payload(row: dict, *, tz: tzinfo) -> dict | None:
    """The ingest payload of an Lnl_LoggedEvent, or None for a kind we do not map."""
    description, event_text = row.get("DESCRIPTION") or "", row.get("EVENTTEXT") or ""
    event_type: EventType | None
    if row.get("DURESS") in (True, "true", "True", 1):
        event_type = EventType.DURESS
    else:
        event_type = event_type_of(description, event_text) or ACCESS_RESULTS.get(
            int(row.get("ACCESSRESULT") or 0)
        )
    if event_type is None:
        return None
    payload = {
        "source_event_id": onguard_event_id(row, tz=tz),
        "type": str(event_type),
        "door": f"{row.get('PANELID')}-{row.get('DEVICEID')}",
        "occurred_at": aware(str(row["TIME"]), tz).isoformat(),
        "details": {
            key.lower(): row.get(key)
            for key in (
                "DESCRIPTION",
                "EVENTTEXT",
                "TYPE",
                "SUBTYPE",
                "ACCESSRESULT",
                "PANELID",
                "DEVICEID",
                "SECONDARYDEVICEID",
            )
            if row.get(key) not in (None, "")
        },
    }
    if credential := _text(row.get("CARDNUMBER")):
        payload["credential"] = credential
    if person := _text(row.get("PERSONID")):
        payload["person"] = person
    return payload


# Times read again on every poll, and how far a new panel's watermark reaches back: the
# same second is logged in two polls, and a panel's clock and ours differ a little.
OVERLAP = timedelta(seconds=5)
PANEL_REFRESH_SECONDS = 60.0


def filter_time(moment: datetime) -> str:
    # ISO 8601 in UTC, quoted like any string literal of the filter (docs/CONNECTORS.md).
    return '"' + moment.astimezone(UTC).isoformat(timespec="seconds") + '"'


def panel_filter(panel: str, state: dict) -> str:
    serial, since = int(state["serial"]), datetime.fromisoformat(state["since"])
    newest = datetime.fromisoformat(state["time"]) - OVERLAP
    return (
        f"PanelID = {int(panel)} AND ((SerialNumber > {serial} AND Time >= "
        f"{filter_time(since - OVERLAP)}) OR Time >= {filter_time(newest)})"
    )


def panel_state_after(state: dict, serial: int, moment: datetime) -> dict:
    """The panel's cursor past one new event."""
    if serial > int(state["serial"]):
        state = state | {"serial": serial}
    else:
        # A new event at or below the last serial: the panel's count started over.
        state = state | {"serial": serial, "since": moment.isoformat()}
    newest = max(datetime.fromisoformat(state["time"]), moment)
    return state | {"time": newest.isoformat()}


@dataclass
class OnGuardConnector:
    system: AccessSystem
    client: OnGuardClient
    tz: tzinfo
    stopper: Stopper = field(default_factory=Stopper)
    page_size: int = 100
    max_pages: int = 50
    idle_delay: float = 2.0
    # A first start reads this much history; 0 starts at "now" (and announces nothing old).
    backfill: timedelta = field(
        default_factory=lambda: timedelta(minutes=settings.CONNECTOR_BACKFILL_MINUTES)
    )
    tally: Tally = field(default_factory=Tally)
    panels: list[str] = field(default_factory=list)
    panels_listed_at: float = float("-inf")

    def step(self) -> int:
        # The cursor is read from the database each time: it is the only truth.
        cursor = self._cursor()
        self._panels_refresh(cursor)
        seen = 0
        for panel in self.panels:
            if self.stopper.stopped:
                break
            seen += self._panel_poll(panel)
        return seen

    def _cursor(self) -> dict:
        cursor = cursor_document(self.system)
        if cursor is None:
            cursor = self._cursor_first(cursor_position(self.system))
            cursor_save(self.system, cursor)
        return cursor

    def _cursor_first(self, legacy: str) -> dict:
        now = timezone.now()
        start = now - self.backfill
        if legacy.isdigit():
            # Written by the version with one serial for the whole system: each panel goes
            # on from its newest stored event (the ids were migrated per panel).
            newest = (
                Event.objects.filter(system=self.system)
                .values("details__panelid")
                .annotate(newest=Max("occurred_at"))
                .values_list("newest", flat=True)
            )
            start = min(newest, default=now)
        else:
            log.info("%s: first start, reading events from %s on", self.system.slug, start)
        return {"start": start.isoformat(), "listed_at": start.isoformat(), "panels": {}}

    def _panels_refresh(self, cursor: dict) -> None:
        fresh = time.monotonic() - self.panels_listed_at < PANEL_REFRESH_SECONDS
        if fresh and all(panel in cursor["panels"] for panel in self.panels):
            return
        listed_at = timezone.now()
        with self.stopper.blocking():
            rows = self.client.instances("Lnl_Panel", page_size=self.page_size)
        self.panels = sorted({str(row["PANELID"]) for row in rows}, key=int)
        self.panels_listed_at = time.monotonic()
        new = [panel for panel in self.panels if panel not in cursor["panels"]]
        if new:
            # A panel first seen now has logged nothing before the previous listing.
            since = datetime.fromisoformat(cursor["listed_at"]) - OVERLAP
            for panel in new:
                cursor["panels"][panel] = self._panel_start(panel, since)
            log.info("%s: panels %s from %s on", self.system.slug, ", ".join(new), since)
        cursor["listed_at"] = listed_at.isoformat()
        cursor_save(self.system, cursor)

    def _panel_start(self, panel: str, since: datetime) -> dict:
        newest = (
            Event.objects.filter(system=self.system)
            .filter(Q(details__panelid=int(panel)) | Q(details__panelid=panel))
            .order_by("-occurred_at")
            .values_list("occurred_at", "source_event_id")
            .first()
        )
        if newest is not None and newest[0] >= since:
            # Upgraded from the single-serial cursor: go on from the newest stored event.
            serial = int(newest[1].split(":")[1]) if newest[1].count(":") == 2 else 0
            return {"serial": serial, "time": newest[0].isoformat(), "since": since.isoformat()}
        return {"serial": 0, "time": since.isoformat(), "since": since.isoformat()}

    def _panel_poll(self, panel: str) -> int:
        state = json.loads(cursor_position(self.system))["panels"][panel]
        with self.stopper.blocking():
            rows = self.client.instances(
                "Lnl_LoggedEvent",
                where=panel_filter(panel, state),
                order_by="SerialNumber",
                page_size=self.page_size,
                max_pages=self.max_pages,
            )
        rows = [row for row in rows if str(row.get("PANELID")) == panel and self._readable(row)]
        rows.sort(key=lambda row: (event_time(row, tz=self.tz), int(row["SERIALNUMBER"])))
        known = stored_ids(self.system, [onguard_event_id(r, tz=self.tz) for r in rows])
        new = 0
        for row in rows:
            if self.stopper.stopped:
                break
            if onguard_event_id(row, tz=self.tz) in known:
                self.tally["already seen"] += 1
                continue
            state = panel_state_after(state, int(row["SERIALNUMBER"]), event_time(row, tz=self.tz))
            event_feed(
                system=self.system,
                position=self._position(panel, state),
                tally=self.tally,
                raw=row,
                build=functools.partial(logged_event_payload, row, tz=self.tz),
            )
            new += 1
        if new:
            log.info("%s: panel %s: so far %s", self.system.slug, panel, self.tally.summary())
        return new

    def _readable(self, row: dict) -> bool:
        # Without a serial or a time an event can be neither placed nor known again:
        # logged in full and counted, never allowed to stop the panel's feed.
        try:
            onguard_event_id(row, tz=self.tz)
        except (KeyError, TypeError, ValueError) as exc:
            self.tally["unreadable"] += 1
            log.warning("%s: unreadable event skipped (%r); raw: %s", self.system.slug, exc, row)
            return False
        return True

    def _position(self, panel: str, state: dict) -> str:
        cursor = json.loads(cursor_position(self.system))
        cursor["panels"][panel] = state
        return cursor_dump(cursor)

    def reset(self) -> None:
        self.client.session_token = ""
        self.panels_listed_at = float("-inf")


def onguard_doors(client: OnGuardClient) -> list[VendorDoor]:
    """Every reader (a door here is a panel's reader: its events name PanelID, DeviceID)."""
    rows = client.instances("Lnl_Reader", page_size=500)
    return [
        VendorDoor(key=f"{row['PANELID']}-{row['READERID']}", name=str(row.get("NAME") or ""))
        for row in sorted(rows, key=lambda row: (int(row["PANELID"]), int(row["READERID"])))
    ]
