// The alarm feed: /ws/events, resumed from the last seq seen, each event shown once.
// Server frames (responder/consumers.py): event, live, reset, ping, ack (someone
// acknowledged an event), incident (relayed to incidents.js), camera (a camera went offline
// or came back); unknown ones are ignored. REST (`events/?after=`) fills in after a reset,
// stands in while the socket cannot connect, and brings acks missed meanwhile once back.
import { api, ApiError } from "./api.js";
import { ago, h, mount } from "./dom.js";

export const SEVERITIES = {
  alarm: { label: "Alarm", glyph: "!" },
  warning: { label: "Warning", glyph: "▲" },
  notice: { label: "Notice", glyph: "i" },
  info: { label: "Info", glyph: "·" },
};
const KINDS = {
  door_forced: "Door forced",
  door_held: "Door held open",
  access_denied: "Access denied",
  access_granted: "Access granted",
  intercom_call: "Intercom call",
  tamper: "Tamper",
  duress: "Duress",
};
const DOOR_STATES = { door_forced: "forced", door_held: "held" };
const KEEP = 200; // events kept in the list and on the device
const STORED = 100;
const BACKOFF = [1, 2, 4, 8, 15, 30]; // seconds, with jitter
const SILENT_LIMIT = 50000; // the server pings every 20 s: this long without a frame is a dead link
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
    this.load();
    this.status = h("p.feed-status", { role: "status", "data-state": "connecting" }, "Connecting…");
    this.note = h("p.feed-note", { role: "status", hidden: true });
    this.list = h("ol.feed", { "aria-label": "Alarm feed" });
    this.empty = h("p.empty", {}, "No alarms yet. New ones appear here at once.");
    this.cameraNotes = new Map(); // camera id -> <li>, while the camera is offline
    this.troubles = h("ul.camera-troubles", { "aria-label": "Cameras offline", hidden: true });
    mount(panel, h("header.feed-head", {}, h("h2", {}, "Alarms"), this.status), this.note, this.troubles, this.empty, this.list);
    for (const record of [...this.events.values()].sort((a, b) => a.seq - b.seq)) {
      this.render(record);
      this.doorChanged(record);
    }
    this.refreshed();
    this.clock = setInterval(() => this.tick(), 30000);
    this.sound = new Alarm();
    // A camera that plays in the live view is evidently back: its notice goes.
    this.onPlaying = (event) => this.cameraFine(event.detail.id);
    window.addEventListener("responder:camera-playing", this.onPlaying);
  }

  // --- The socket ------------------------------------------------------------------

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/events`);
    this.socket = socket;
    this.opened = false;
    this.catchingUp = this.seq > 0;
    socket.onopen = () => {
      this.opened = true;
      this.state("catching-up", "Connected, catching up…");
      // Without a resume the server starts live; a first visit has nothing to resume.
      if (this.seq > 0) socket.send(JSON.stringify({ type: "resume", after: this.seq }));
      this.watch();
    };
    socket.onmessage = (message) => {
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
        // ping, and frames this version does not know yet
        if (frame.type && frame.type !== "ping") window.dispatchEvent(new CustomEvent(`responder:${frame.type}`, { detail: frame }));
    }
  }

  live(seq) {
    const resumed = this.catchingUp;
    this.attempt = 0;
    this.stopPolling();
    // A first start on this device: the recent past comes over REST, quietly.
    if (this.seq === 0 && seq > 0) this.fetchAfter(Math.max(0, seq - BACKFILL), { upTo: seq }).catch(() => {});
    this.advance(seq);
    this.catchingUp = false;
    this.state("live", "Live");
    const unrung = this.unrung;
    this.unrung = [];
    // A replayed alarm someone acknowledged meanwhile does not ring: the acks come first.
    if (resumed) this.refreshAcks(seq).finally(() => unrung.some((s) => this.events.get(s)?.acks.length === 0) && this.sound.ring());
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
    const wait = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)] * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.state("reconnecting", `Link lost. Reconnecting in ${Math.round(wait)} s…`);
    this.retry = setTimeout(() => this.connect(), wait * 1000);
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
        if (this.socket === null || !this.opened) this.state("polling", `No live link: checking every ${POLL_EVERY / 1000} s.`);
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
    if (record.incident) window.dispatchEvent(new CustomEvent("responder:incident", { detail: { event: record } }));
    if (this.missed && this.catchingUp) this.missed.push(record.seq);
    // A late event (older than ALARM_MAX_AGE_SECONDS when it reached the server) is shown, never rung.
    if (fresh && record.severity === "alarm" && !record.late && !record.acks.length) {
      if (replayed) this.unrung.push(record.seq);
      else this.sound.ring();
    }
    this.trim();
    this.refreshed();
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
    item.classList.toggle("acked", acked);
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
      acked
        ? h("p.acks", {}, `Acknowledged by ${record.acks.map((ack) => `${ack.name || ack.user} at ${clock(new Date(ack.at))}`).join(", ")}`)
        : null,
      h(
        "div.actions",
        {},
        h("button.ack", { type: "button", disabled: acked, onclick: (e) => this.acknowledge(record, e.currentTarget) }, acked ? "Acknowledged" : "Acknowledge"),
        door && door.floor
          ? h("button", { type: "button", onclick: () => this.ctx.show("map", { kind: "door", id: door.id }) }, "Show on map")
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

  async acknowledge(record, button) {
    button.disabled = true;
    button.textContent = "Acknowledging…";
    try {
      const updated = await api(`events/${record.id}/ack`, { method: "POST" });
      this.acked({ event: record.id, acks: updated.acks });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      button.disabled = false;
      button.textContent = "Acknowledge";
      this.say(error.status === 0 ? "Not acknowledged: no connection. Try again." : `Not acknowledged: ${error.message}`);
    }
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
    const open = [...this.events.values()].filter((r) => r.severity === "alarm" && !r.acks.length).length;
    this.ctx.badge("feed", open);
    this.empty.hidden = this.events.size > 0;
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
    this.status.dataset.state = name;
    this.status.textContent = text;
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
    const newest = [...this.events.values()].sort((a, b) => b.seq - a.seq).slice(0, STORED);
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
    window.removeEventListener("responder:camera-playing", this.onPlaying);
    this.stopPolling();
    this.socket?.close(1000);
  }
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

  ring() {
    const now = Date.now();
    if (this.last && now - this.last < 2000) return; // a burst of alarms rings once
    this.last = now;
    if (navigator.userActivation?.hasBeenActive !== false) navigator.vibrate?.([200, 100, 200]);
    const audio = this.audio;
    if (!audio || audio.state !== "running") return;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    for (const [start, frequency] of [[0, 880], [0.25, 660], [0.5, 880]]) {
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
