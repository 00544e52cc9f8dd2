// The alarm feed: /ws/events, resumed from the last seq seen, each event shown once.
// Server frames (responder/alarms/consumers.py): event, live, reset, ping, ack (someone
// acknowledged an event), incident (relayed to incidents.js), camera (a camera went offline
// or came back); unknown ones are ignored. REST (`events/?after=`) fills in after a reset,
// stands in while the socket cannot connect, and brings acks missed meanwhile once back.
import { api, ApiError } from "./api.js";
import { PING_EVERY, reconnectDelay, SILENT_LIMIT } from "./link.js";
import { ago, h, mount } from "./dom.js";
import { Takeover, TAKES_OVER } from "./takeover.js";
import { EVENT_KINDS as KINDS } from "./words.js";

export const SEVERITIES = {
  alarm: { label: "Alarm", glyph: "!" },
  warning: { label: "Warning", glyph: "▲" },
  notice: { label: "Notice", glyph: "i" },
  info: { label: "Info", glyph: "·" },
};
const DOOR_STATES = { door_forced: "forced", door_held: "held" };
const KEEP = 200; // events kept in the list and on the device
const STORED = 100;
const SHOW_INFO = "responder.feed.info";
const POLL_EVERY = 10000;
const BACKFILL = 500; // seqs looked back over on a device's first start
const CAMERA_FINE = new Set(["online", "ok", "live", "recovered"]); // camera frames' "back" states
const NO_RETRY = { 4403: "This address is not allowed to receive alarms.", 4404: "No alarms are in your scope." };

export function startFeed(ctx, panel) {
  const feed = new Feed(ctx, panel);
  feed.connect();
  return { stop: () => feed.stop() };
}

class Feed {
  constructor(ctx, panel) {
    this.ctx = ctx;
    this.key = `responder.feed.${ctx.me.user?.id ?? ctx.me.user?.username ?? "me"}`;
    this.events = new Map(); // seq -> record
    this.items = new Map(); // seq -> <li>
    this.seq = 0;
    this.attempt = 0;
    this.stopped = false;
    this.missed = null; // seqs received while catching up after a dropped link
    this.unrung = []; // alarms replayed while catching up: they ring once acks are known
    this.lastFrame = null; // ms: when the server was last heard from
    this.load();
    this.status = h("p.feed-status", { role: "status", "data-state": "connecting" }, "Connecting…");
    this.note = h("p.feed-note", { role: "status", hidden: true });
    this.list = h("ol.feed", { "aria-label": "Alarm feed" });
    this.empty = h("p.empty", {}, "No alarms yet. New ones appear here at once.");
    // Responders act on alarms; "Access granted" and its kind wait behind this switch.
    this.infoSwitch = h("input", { type: "checkbox", onchange: () => this.filterInfo(this.infoSwitch.checked) });
    this.infoLabel = h("span", {}, "Show info events");
    const filter = h("label.info-filter", {}, this.infoSwitch, this.infoLabel);
    this.cameraNotes = new Map(); // camera id -> <li>, while the camera is offline
    this.troubles = h("ul.camera-troubles", { "aria-label": "Cameras offline", hidden: true });
    mount(panel, h("header.feed-head", {}, h("h2", {}, "Alarms"), this.status), filter, this.note, this.troubles, this.empty, this.list);
    this.filterInfo(localStorage.getItem(SHOW_INFO) === "1");
    this.takeover = new Takeover(ctx, this.actions());
    for (const record of [...this.events.values()].sort((a, b) => a.seq - b.seq)) {
      this.render(record);
      this.doorChanged(record);
    }
    this.refreshed();
    this.clock = setInterval(() => this.tick(), 30000);
    this.linkClock = setInterval(() => this.linkTick(), 1000);
    this.sound = new Alarm();
    // The browser knows first: no waiting for a ping to go unanswered.
    this.onOffline = () => this.wentOffline();
    this.onOnline = () => this.cameOnline();
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("online", this.onOnline);
    // A camera that plays in the live view is evidently back: its notice goes.
    this.onPlaying = (event) => this.cameraFine(event.detail.id);
    window.addEventListener("responder:camera-playing", this.onPlaying);
  }

  // --- The socket ------------------------------------------------------------------

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    // The last seq in the URL: the replay starts at the accept, with no wait for a message
    // that a busy daphne may read late (the message stays for an older server).
    const resume = this.seq > 0 ? `?after=${this.seq}` : "";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/events${resume}`);
    this.socket = socket;
    this.opened = false;
    this.catchingUp = this.seq > 0;
    socket.onopen = () => {
      this.opened = true;
      this.heard();
      this.state("catching-up", "Connected, catching up…");
      // Without a resume the server starts live; a first visit has nothing to resume.
      if (this.seq > 0) socket.send(JSON.stringify({ type: "resume", after: this.seq }));
      this.watch();
      clearInterval(this.pinger);
      this.pinger = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send('{"type":"ping"}'), PING_EVERY);
    };
    socket.onmessage = (message) => {
      this.heard();
      this.watch();
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      this.frame(frame);
    };
    socket.onclose = (close) => this.closed(socket, close.code);
  }

  frame(frame) {
    switch (frame.type) {
      case "event":
        return this.add({ ...frame.event, seq: frame.seq }, { fresh: true, replayed: this.catchingUp });
      case "live":
        return this.live(frame.seq);
      case "reset":
        return this.reset(frame.seq);
      case "ack":
        return this.acked(frame);
      case "incident":
        return window.dispatchEvent(new CustomEvent("responder:incident", { detail: frame }));
      case "camera":
        return this.camera(frame);
      default:
        // ping, pong, and frames this version does not know yet
        if (frame.type && frame.type !== "ping" && frame.type !== "pong") window.dispatchEvent(new CustomEvent(`responder:${frame.type}`, { detail: frame }));
    }
  }

  live(seq) {
    const resumed = this.catchingUp;
    const wasPolling = Boolean(this.poller);
    this.attempt = 0;
    this.stopPolling();
    // The server answers again: screens showing saved data may fetch fresh (app.js). A
    // poll sent just before the link came back may have been answered from the cache.
    if (resumed || wasPolling) window.dispatchEvent(new CustomEvent("responder:link-up"));
    // A first start on this device: the recent past comes over REST, quietly.
    if (this.seq === 0 && seq > 0) this.fetchAfter(Math.max(0, seq - BACKFILL), { upTo: seq }).catch(() => {});
    this.advance(seq);
    this.catchingUp = false;
    this.state("live", "Live");
    const unrung = this.unrung;
    this.unrung = [];
    // A replayed alarm someone acknowledged meanwhile does not ring: the acks come first.
    if (resumed) this.refreshAcks(seq).finally(() => this.raiseUnanswered(unrung));
    this.sendQueued();
    if (this.missed) {
      const n = this.missed.length;
      this.say(n ? `Back online: ${n} ${n === 1 ? "event" : "events"} came in while the link was down.` : "Back online: nothing was missed.");
      for (const seq of this.missed) {
        const record = this.events.get(seq);
        if (!record) continue; // trimmed meanwhile
        record.missed = true;
        this.fill(this.items.get(seq), record);
      }
      this.missed = null;
      this.persist();
    }
  }

  closed(socket, code) {
    clearTimeout(this.silence);
    clearInterval(this.pinger);
    if (this.stopped || socket !== this.socket) return;
    this.socket = null;
    if (code === 4401) return this.ctx.signedOut("Your session has ended. Sign in again.");
    if (NO_RETRY[code]) {
      this.state("refused", NO_RETRY[code]);
      // A grant may come later (an incident): look again now and then, quietly.
      this.retry = setTimeout(() => this.connect(), 5 * 60 * 1000);
      return;
    }
    this.missed ||= [];
    if (!this.opened || this.attempt >= 2) this.startPolling();
    const wait = reconnectDelay(this.attempt);
    this.attempt += 1;
    if (navigator.onLine === false) this.state("offline", "Offline");
    else this.state("reconnecting", "Reconnecting…");
    this.linkTick();
    this.retry = setTimeout(() => this.connect(), wait * 1000);
  }

  wentOffline() {
    if (this.stopped) return;
    this.state("offline", "Offline");
    this.linkTick();
    this.socket?.close(); // reconnecting (and polling) as after any drop
  }

  // Back: connect now, not at the end of a backoff grown while offline; a socket still
  // trying from then is dropped (closed() ignores a socket no longer current).
  cameOnline() {
    if (this.stopped || this.socket?.readyState === WebSocket.OPEN) return;
    clearTimeout(this.retry);
    this.attempt = 0;
    const old = this.socket;
    this.socket = null;
    old?.close();
    this.connect();
  }

  heard() {
    this.lastFrame = Date.now();
  }

  // Not live: how long since the server was last heard from, counted as it grows.
  linkTick() {
    const name = this.status.dataset.state;
    if (!["offline", "reconnecting", "polling"].includes(name)) return;
    const base = { offline: "Offline", reconnecting: "Reconnecting…", polling: `No live link: checking every ${POLL_EVERY / 1000} s.` }[name];
    const since = this.lastFrame ? ` Last heard ${ago(new Date(this.lastFrame).toISOString())}.` : "";
    this.status.textContent = `${base}${since}`;
  }

  // A link can die without a close (a tunnel, a sleeping radio): no frame for too long.
  watch() {
    clearTimeout(this.silence);
    const socket = this.socket;
    this.silence = setTimeout(() => socket?.close(), SILENT_LIMIT);
  }

  // --- REST: after a reset, and while the socket is out ----------------------------

  async reset(seq) {
    // Too far behind, or the scope shrank: what is held may be stale; start again from REST.
    this.catchingUp = false; // what REST brings now is current: no second pass at live
    this.events.clear();
    this.items.clear();
    this.list.replaceChildren();
    this.missed = null;
    const from = Math.max(0, seq - 1000);
    this.seq = Math.max(this.seq, seq);
    try {
      await this.fetchAfter(from, { upTo: seq });
      this.say("The list was reloaded from the server.");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
    this.refreshed();
  }

  async fetchAfter(after, { upTo = Infinity, fresh = false } = {}) {
    let path = `events/?after=${after}&limit=500`;
    for (let page = 0; path && page < 10; page += 1) {
      const body = await api(path);
      for (const record of body.results) if (record.seq <= upTo) this.add(record, { fresh });
      path = body.next && body.last_seq < upTo ? `events/?after=${body.last_seq}&limit=500` : null;
    }
  }

  // Acks are notices, sent only to sockets live at the time and not replayed, and event
  // frames carry none: back from a drop (or a reload), one quiet pass over what is held.
  async refreshAcks(upTo) {
    if (this.refreshing || !this.events.size) return;
    this.refreshing = true;
    try {
      await this.fetchAfter(Math.min(...this.events.keys()) - 1, { upTo });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    } finally {
      this.refreshing = false;
    }
  }

  startPolling() {
    if (this.poller) return;
    const poll = async () => {
      try {
        const before = this.seq;
        // A device with nothing seen yet takes the past quietly: no ringing for old alarms.
        await this.fetchAfter(this.seq, { fresh: before > 0 });
        this.advance(this.seq);
        if (this.socket === null || !this.opened) {
          if (navigator.onLine !== false) this.state("polling", `No live link: checking every ${POLL_EVERY / 1000} s.`);
          this.linkTick();
        }
        if (this.seq > before) this.persist();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
      }
    };
    poll();
    this.poller = setInterval(poll, POLL_EVERY);
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = null;
  }

  // --- The list --------------------------------------------------------------------

  add(record, { fresh, replayed = false }) {
    if (this.stopped) return;
    const held = this.events.get(record.seq);
    if (held) {
      // A replay overlapping what polling brought, or REST knowing of acks this device missed.
      const news = (record.acks || []).some((ack) => !held.acks.some((a) => a.user === ack.user));
      if (news) this.acked({ seq: record.seq, event: record.id, acks: record.acks });
      return;
    }
    record.acks ||= [];
    this.events.set(record.seq, record);
    this.render(record);
    this.advance(record.seq);
    this.doorChanged(record);
    this.ctx.map?.noteEvent?.(record); // a door's sheet lists its last events (map.js)
    if (record.incident) window.dispatchEvent(new CustomEvent("responder:incident", { detail: { event: record } }));
    if (this.missed && this.catchingUp) this.missed.push(record.seq);
    // A late event (older than ALARM_MAX_AGE_SECONDS when it reached the server) is shown, never rung.
    if (fresh && TAKES_OVER.has(record.severity) && !record.late && !record.acks.length) {
      if (replayed) this.unrung.push(record.seq);
      else this.takeover.raise(record);
    }
    this.trim();
    this.refreshed();
  }

  // Replayed alarms take over once what was acknowledged meanwhile is known.
  raiseUnanswered(seqs) {
    for (const seq of seqs) {
      const record = this.events.get(seq);
      if (record && !record.acks.length && !record.queued) this.takeover.raise(record);
    }
  }

  render(record) {
    const item = h(
      `li.event.severity-${record.severity}`,
      { "data-seq": record.seq, "data-event-id": record.id },
    );
    this.fill(item, record);
    this.items.set(record.seq, item);
    // Newest first: before the first item with a lower seq.
    const after = [...this.list.children].find((other) => Number(other.dataset.seq) < record.seq);
    this.list.insertBefore(item, after || null);
  }

  // The door's pin shows its newest unacknowledged forced or held alarm.
  doorChanged(record) {
    const state = DOOR_STATES[record.type];
    if (state && record.door && !record.acks.length) this.ctx.map?.setDoorState(record.door.id, state);
  }

  fill(item, record) {
    const severity = SEVERITIES[record.severity] || SEVERITIES.info;
    const door = record.door;
    const when = new Date(record.occurred_at);
    const cameras = (record.cameras || []).map((id) => this.ctx.cameras(id)).filter(Boolean).slice(0, 3);
    const acked = record.acks.length > 0;
    const queued = !acked && Boolean(record.queued);
    const place = this.place(record);
    item.classList.toggle("acked", acked);
    item.classList.toggle("queued", queued);
    item.classList.toggle("missed", Boolean(record.missed));
    mount(
      item,
      h(
        "div.event-head",
        {},
        h("span.severity", {}, h("span.glyph", { "aria-hidden": "true" }, severity.glyph), severity.label),
        h("strong.kind", {}, KINDS[record.type] || record.type),
        h("time", { datetime: record.occurred_at, title: when.toLocaleString() }, `${clock(when)} · ${ago(record.occurred_at)}`),
        record.missed ? h("span.missed-tag", {}, "Missed while offline") : null,
      ),
      h("p.where", {}, door ? door.name : "Unmapped door"),
      place ? h("p.location", {}, place) : null,
      acked
        ? h("p.acks", {}, `Acknowledged by ${record.acks.map((ack) => `${ack.name || ack.user} at ${clock(new Date(ack.at))}`).join(", ")}`)
        : null,
      queued ? h("p.ack-queued", { role: "status" }, "Acknowledgement not sent yet: no connection. It goes as soon as the link is back.") : null,
      record.ackError && !acked ? h("p.ack-error", { role: "alert" }, `Not acknowledged: ${record.ackError}`) : null,
      !cameras.length && door && !this.mayWatch() ? h("p.no-cameras", {}, this.noCameras()) : null,
      h(
        "div.actions",
        {},
        record.severity === "info"
          ? null
          : h(
              "button.ack",
              { type: "button", disabled: acked || queued || record.acking, onclick: () => this.acknowledge(record) },
              acked ? "Acknowledged" : queued ? "Queued" : record.acking ? "Acknowledging…" : "Acknowledge",
            ),
        door && door.floor
          ? h("button", { type: "button", onclick: () => this.ctx.show("map", { kind: "door", id: door.id }) }, "Show on map")
          : null,
        // Recorded playback from 30 s before the alarm at the door's cameras (playback.js).
        cameras.length && this.ctx.me.capabilities?.includes("recorded")
          ? h("button.what-happened", { type: "button", onclick: () => this.ctx.openPlayback({ cameras: cameras.map((c) => c.id), start: new Date(when.getTime() - 30000), title: door ? door.name : "" }) }, "What happened")
          : null,
      ),
      cameras.length
        ? h(
            "div.cameras",
            { role: "group", "aria-label": "Nearest cameras" },
            cameras.map((camera) =>
              h("button.camera", { type: "button", "aria-label": `Camera ${camera.name}`, onclick: () => this.ctx.openCamera(camera.id) }, "▶ ", camera.name),
            ),
          )
        : null,
    );
  }

  // Without a connection the acknowledgement waits on the device, shown on its own card,
  // and goes once the link is back; the alarm stops ringing meanwhile (someone answered).
  async acknowledge(record) {
    if (record.acking || record.acks.length) return;
    record.acking = true;
    record.ackError = null;
    this.takeover.drop(record.seq);
    this.redraw(record);
    try {
      const updated = await api(`events/${record.id}/ack`, { method: "POST" });
      record.queued = false;
      this.acked({ event: record.id, acks: updated.acks });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 0) record.queued = true;
      else record.ackError = error.message;
    } finally {
      record.acking = false;
      this.redraw(record);
      this.persist();
    }
  }

  sendQueued() {
    for (const record of this.events.values()) if (record.queued && !record.acks.length) {
      record.queued = false;
      this.acknowledge(record);
    }
  }

  redraw(record) {
    const item = this.items.get(record.seq);
    if (item) this.fill(item, record);
  }

  filterInfo(show) {
    this.infoSwitch.checked = show;
    this.list.classList.toggle("hide-info", !show);
    localStorage.setItem(SHOW_INFO, show ? "1" : "0");
    this.refreshed();
  }

  // --- What the takeover and the cards say and do -------------------------------------

  actions() {
    return {
      label: (record) => KINDS[record.type] || record.type,
      place: (record) => this.place(record),
      acknowledge: (record) => this.acknowledge(record),
      ring: (record) => this.sound.ring(record.severity),
      watchable: (record) => (record.cameras || []).filter((id) => this.ctx.cameras(id)),
      watch: (record) => this.ctx.watch((record.cameras || []).filter((id) => this.ctx.cameras(id))),
      map: (record) => this.ctx.show("map", { kind: "door", id: record.door.id }),
      noCameras: () => this.noCameras(),
    };
  }

  // "Campus › Building › Floor": the server's names, or the device's map when an older
  // server sent none.
  place(record) {
    const where = record.location || this.ctx.placeOf?.(record.door) || null;
    return where ? [where.campus, where.building, where.floor].filter(Boolean).join(" › ") : "";
  }

  mayWatch() {
    const held = this.ctx.me.capabilities || [];
    return held.includes("live") || held.includes("recorded");
  }

  noCameras() {
    return this.mayWatch() ? "No camera you may watch covers this door." : roleCameraNote(this.ctx.me);
  }

  // From our own POST ({event: id, acks}) or from the socket ({type: "ack", seq, event: id,
  // acks: [{user, name, at}]}); an older server may send one {ack} instead of the list.
  acked(frame) {
    const id = frame.event?.id ?? frame.event;
    const bySeq = frame.seq != null ? this.events.get(frame.seq) : null;
    const record = bySeq && bySeq.id === id ? bySeq : [...this.events.values()].find((r) => r.id === id);
    if (!record) return;
    // Acknowledgements are never withdrawn: two lists crossing on the wire merge, so an
    // older, shorter list arriving last takes nothing away.
    const byUser = new Map(record.acks.map((ack) => [ack.user, ack]));
    for (const ack of frame.acks || []) byUser.set(ack.user, ack);
    record.acks = [...byUser.values()].sort((a, b) => a.at.localeCompare(b.at));
    if (record.acks.length) {
      record.queued = false;
      this.takeover.drop(record.seq);
    }
    const item = this.items.get(record.seq);
    if (item) this.fill(item, record);
    if (record.door && DOOR_STATES[record.type] && !this.doorAlarmed(record.door.id)) this.ctx.map?.setDoorState(record.door.id, "normal");
    this.refreshed();
  }

  // {type: "camera", severity, state, camera: {id, name, building, floor}, stream, reason, at}:
  // a camera in trouble (offline) is listed above the feed. The server says when a camera
  // goes, not when it comes back: the notice goes when a frame says so, when the camera
  // plays in the live view (live.js says), or when the user dismisses it.
  camera(frame) {
    const camera = frame.camera || {};
    if (camera.id == null) return;
    const name = camera.name || this.ctx.cameras(camera.id)?.name || `Camera ${camera.id}`;
    const old = this.cameraNotes.get(camera.id);
    if (!CAMERA_FINE.has(frame.state)) {
      const severity = SEVERITIES[frame.severity] || SEVERITIES.warning;
      const at = frame.at ? new Date(frame.at) : new Date();
      const line = h(
        `li.camera-trouble.severity-${frame.severity || "warning"}`,
        { "data-camera-id": camera.id },
        h("span.glyph", { "aria-hidden": "true" }, severity.glyph),
        h("strong", {}, `${name} is ${frame.state || "offline"}`),
        frame.reason ? h("span.reason", {}, frame.reason) : null,
        h("time", { datetime: at.toISOString() }, ` since ${clock(at)}`),
        h("button.quiet.dismiss", { type: "button", "aria-label": `Dismiss: ${name} is offline`, onclick: () => this.cameraFine(camera.id) }, "Dismiss"),
      );
      if (old) old.replaceWith(line);
      else this.troubles.append(line);
      this.cameraNotes.set(camera.id, line);
    } else if (old) {
      this.cameraFine(camera.id);
      this.say(`${name} is back online.`);
    }
    this.troubles.hidden = this.cameraNotes.size === 0;
    window.dispatchEvent(new CustomEvent("responder:camera", { detail: frame }));
  }

  cameraFine(id) {
    this.cameraNotes.get(id)?.remove();
    this.cameraNotes.delete(id);
    this.troubles.hidden = this.cameraNotes.size === 0;
  }

  doorAlarmed(doorId) {
    return [...this.events.values()].some((r) => r.door?.id === doorId && DOOR_STATES[r.type] && !r.acks.length);
  }

  trim() {
    while (this.events.size > KEEP) {
      const oldest = Math.min(...this.events.keys());
      this.events.delete(oldest);
      this.items.get(oldest)?.remove();
      this.items.delete(oldest);
    }
  }

  refreshed() {
    if (!this.takeover) return; // still being built
    const records = [...this.events.values()];
    const open = records.filter((r) => r.severity === "alarm" && !r.acks.length).length;
    this.ctx.badge("feed", open);
    const info = records.filter((r) => r.severity === "info").length;
    const hidden = this.infoSwitch.checked ? 0 : info;
    this.infoLabel.textContent = info ? `Show info events (${info})` : "Show info events";
    this.empty.hidden = records.length - hidden > 0;
    this.empty.textContent = hidden ? `No alarms. ${hidden} info ${hidden === 1 ? "event is" : "events are"} hidden.` : "No alarms yet. New ones appear here at once.";
    this.persist();
  }

  tick() {
    for (const [seq, item] of this.items) {
      const time = item.querySelector("time");
      const record = this.events.get(seq);
      if (time && record) time.textContent = `${clock(new Date(record.occurred_at))} · ${ago(record.occurred_at)}`;
    }
  }

  // --- Bookkeeping -----------------------------------------------------------------

  advance(seq) {
    if (seq > this.seq) this.seq = seq;
  }

  state(name, text) {
    // Offline stays offline until a socket opens: a retry's "reconnecting" says less.
    if (name === "reconnecting" && navigator.onLine === false) name = "offline";
    this.status.dataset.state = name;
    this.status.textContent = name === "offline" ? "Offline" : text;
  }

  say(text) {
    this.note.textContent = text;
    this.note.hidden = false;
    clearTimeout(this.noteTimer);
    this.noteTimer = setTimeout(() => (this.note.hidden = true), 15000);
  }

  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.key) || "null");
      if (!saved) return;
      this.seq = Number(saved.seq) || 0;
      for (const record of saved.events || []) this.events.set(record.seq, record);
    } catch {
      localStorage.removeItem(this.key);
    }
  }

  persist() {
    if (this.stopped) return; // signed out: an answer still in flight must not save it again
    const newest = [...this.events.values()]
      .sort((a, b) => b.seq - a.seq)
      .slice(0, STORED)
      .map(({ acking, ackError, ...kept }) => kept); // a send in flight is not one after a reload
    try {
      localStorage.setItem(this.key, JSON.stringify({ seq: this.seq, events: newest }));
    } catch {
      // Storage full or refused: resume then starts from memory only.
    }
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retry);
    clearTimeout(this.silence);
    clearInterval(this.clock);
    clearInterval(this.linkClock);
    clearInterval(this.pinger);
    this.takeover.stop();
    window.removeEventListener("offline", this.onOffline);
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("responder:camera-playing", this.onPlaying);
    this.stopPolling();
    this.socket?.close(1000);
  }
}

// Fire sees cameras only while an incident's emergency grant names them: say so, rather
// than a map with no cameras and no word why.
export function roleCameraNote(me) {
  const groups = me.groups || [];
  if (groups.some((g) => /fire/i.test(g))) return "Cameras open to fire during an incident.";
  if (groups.some((g) => /police/i.test(g))) return "Cameras open to police during an incident.";
  return "Your role has no cameras here; they open to responders during an incident.";
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// A beep and a buzz for alarms. Browsers allow sound only after a gesture on the page,
// so the audio context is made (or resumed) on the first touch.
class Alarm {
  constructor() {
    this.audio = null;
    const unlock = () => {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      this.audio ||= new Context();
      this.audio.resume?.();
    };
    window.addEventListener("pointerdown", unlock, { capture: true, passive: true });
    window.addEventListener("keydown", unlock, { capture: true });
  }

  get unlocked() {
    return this.audio?.state === "running";
  }

  ring(severity = "alarm") {
    const now = Date.now();
    if (this.last && now - this.last < 2000) return; // a burst of alarms rings once
    this.last = now;
    if (navigator.userActivation?.hasBeenActive !== false) navigator.vibrate?.([200, 100, 200]);
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    // An alarm's three high tones; a warning's two lower ones.
    const tones = severity === "alarm" ? [[0, 880], [0.25, 660], [0.5, 880]] : [[0, 520], [0.3, 520]];
    for (const [start, frequency] of tones) {
      const tone = audio.createOscillator();
      tone.type = "square";
      tone.frequency.value = frequency;
      tone.connect(gain);
      tone.start(audio.currentTime + start);
      tone.stop(audio.currentTime + start + 0.18);
    }
    gain.gain.value = 0.2;
  }
}
