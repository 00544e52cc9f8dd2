// Recorded playback of one or more cameras (a door's nearest, an incident's, one camera):
// ask the server for a signed playlist from a wall-clock time (POST cameras/<id>/playback),
// play it with hls.js (native HLS on Safari), and show the last 24 h of the camera as a
// timeline of recorded ranges, gaps and door-event markers. Loaded on first use.
import { api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";
import css from "./playback.css" with { type: "text" };
import { EVENT_KINDS as KINDS } from "./words.js";

const DAY = 24 * 3600 * 1000;
const ZOOMS = [
  { label: "24 h", ms: DAY },
  { label: "1 h", ms: 3600 * 1000 },
  { label: "10 min", ms: 600 * 1000 },
];
const SPEEDS = [1, 2, 4];
const PROFILES = [
  { name: "low", label: "Low" },
  { name: "medium", label: "Medium" },
  { name: "high", label: "High" },
  { name: "source", label: "Original" },
];
const REASONS = { source_down: "camera unreachable", source_error: "stream error", recorder_down: "recorder stopped", disk_full: "disk full", stopped: "recording stopped", deleted: "deleted by retention" };
const EXPORT_AROUND = 5 * 60 * 1000;
const HEVC = 'video/mp4; codecs="hvc1.1.6.L93.B0"';

let styled = false;

export function openPlayback(ctx, options, panel) {
  if (!styled) {
    document.head.append(h("style", {}, css));
    styled = true;
  }
  const view = new PlaybackView(ctx, options, panel);
  view.begin(options.start ? new Date(options.start) : null);
  return { close: () => view.close() };
}

class PlaybackView {
  constructor(ctx, { cameras, title }, panel) {
    this.ctx = ctx;
    this.panel = panel;
    this.cameraIds = cameras.map(Number);
    this.cameraId = this.cameraIds[0];
    this.profile = "low";
    this.speed = 1;
    this.zoom = 0;
    this.closed = false;
    this.data = { ranges: [], gaps: [], events: [] };
    this.video = h("video", { muted: true, playsinline: true, "aria-label": "Recorded video" });
    this.video.muted = true;
    this.clock = h("p.playback-clock", { role: "status", "data-state": "loading" }, "Loading…");
    this.message = h("p.playback-message", { "aria-live": "polite" });
    this.bar = h("div.timeline-bar");
    this.cursor = h("div.timeline-cursor", { "aria-hidden": "true" });
    this.scale = h("div.timeline-scale", { "aria-hidden": "true" });
    this.timeline = h(
      "div.timeline",
      { role: "slider", tabindex: "0", "aria-label": "Position in the recordings", "aria-valuemin": "0", "aria-valuemax": "100", onclick: (e) => this.clicked(e), onkeydown: (e) => this.key(e) },
      this.bar,
      this.cursor,
    );
    this.markers = h("div.timeline-markers", { role: "group", "aria-label": "Door events" });
    this.playButton = h("button", { type: "button", onclick: () => this.toggle() }, "Pause");
    this.speedButtons = SPEEDS.map((speed) => h("button.speed", { type: "button", "aria-pressed": String(speed === 1), onclick: () => this.setSpeed(speed) }, `${speed}×`));
    this.zoomButtons = ZOOMS.map((zoom, i) => h("button.zoom", { type: "button", "aria-pressed": String(i === 0), onclick: () => this.setZoom(i) }, zoom.label));
    this.quality = h(
      "select",
      { "aria-label": "Quality", onchange: () => this.setProfile(this.quality.value) },
      PROFILES.map((p) => h("option", { value: p.name, selected: p.name === this.profile }, p.label)),
    );
    const pickers = this.cameraIds.length > 1
      ? h("div.playback-cameras", { role: "group", "aria-label": "Cameras" }, this.cameraIds.map((id) => h("button.camera", { type: "button", "data-camera": id, "aria-pressed": String(id === this.cameraId), onclick: () => this.setCamera(id) }, this.name(id))))
      : null;
    this.heading = h("h2", {}, title ? `What happened: ${title}` : `Recordings: ${this.name(this.cameraId)}`);
    mount(
      panel,
      h(
        "div.playback",
        {},
        h("header.live-head", {}, this.heading, h("button.close", { type: "button", onclick: () => (panel.close ? panel.close() : this.close()) }, "Close")),
        pickers,
        h("div.video-box", {}, this.video),
        this.clock,
        this.message,
        h(
          "div.playback-controls",
          { role: "group", "aria-label": "Playback" },
          h("button", { type: "button", onclick: () => this.seek(new Date(this.now() - 10000)) }, "Back 10 s"),
          this.playButton,
          h("span.speeds", { role: "group", "aria-label": "Speed" }, this.speedButtons),
          this.quality,
          h("button", { type: "button", onclick: () => this.toLive() }, "Live"),
        ),
        this.timeline,
        this.scale,
        this.markers,
        h("div.zooms", { role: "group", "aria-label": "Zoom" }, this.zoomButtons),
        (ctx.me.capabilities || []).includes("export") ? this.exportBox() : null,
      ),
    );
    this.video.addEventListener("playing", () => this.state("playing"));
    this.video.addEventListener("play", () => (this.playButton.textContent = "Pause"));
    this.video.addEventListener("pause", () => (this.playButton.textContent = "Play"));
    this.video.addEventListener("ended", () => this.seek(new Date(this.now() + 500)));
    this.ticker = setInterval(() => this.tick(), 500);
    this.refresher = setInterval(() => this.load(), 60000);
  }

  // Export as evidence (evidence.js, loaded when opened): these cameras, 5 min either side
  // of where playback is, the end no later than now.
  exportBox() {
    const box = h("details.export-details", {}, h("summary", {}, "Export as evidence"));
    box.addEventListener("toggle", () => {
      if (!box.open || this.exporter) return;
      this.exporter = import("./evidence.js").then(({ exportForm }) => {
        const at = this.at ? this.at.getTime() : Date.now();
        const form = exportForm(this.ctx, { cameras: this.cameraIds, start: new Date(at - EXPORT_AROUND), end: new Date(Math.min(Date.now(), at + EXPORT_AROUND)) }, {
          onOpenList: () => {
            this.panel.close ? this.panel.close() : this.close();
            this.ctx.show("evidence");
          },
        });
        if (this.closed) return form.stop();
        box.append(form.element);
        return form;
      });
    });
    return box;
  }

  name(id) {
    return this.ctx.cameras(id)?.name || `Camera ${id}`;
  }

  async begin(start) {
    await this.load();
    const last = this.data.ranges[this.data.ranges.length - 1];
    // Without a time asked: the last minute recorded.
    const at = start || (last ? new Date(new Date(last.end).getTime() - 60000) : new Date(Date.now() - 60000));
    this.seek(at);
  }

  async load() {
    const end = new Date();
    const start = new Date(end.getTime() - DAY);
    const query = `start=${encodeURIComponent(start.toISOString())}&end=${encodeURIComponent(end.toISOString())}`;
    try {
      const data = await api(`cameras/${this.cameraId}/recordings?${query}`);
      if (this.closed) return;
      this.data = data;
      this.span = { start, end };
      this.draw();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.say(error.status === 404 ? "You may not watch this camera's recordings." : error.message);
    }
  }

  // The part of the day the timeline shows: all of it, or the zoom's width around the cursor.
  visible() {
    const span = this.span || { start: new Date(Date.now() - DAY), end: new Date() };
    const width = ZOOMS[this.zoom].ms;
    if (width >= DAY) return { from: span.start.getTime(), to: span.end.getTime() };
    const middle = this.at ? this.at.getTime() : span.end.getTime() - width / 2;
    const to = Math.min(span.end.getTime(), middle + width / 2);
    return { from: to - width, to };
  }

  draw() {
    const { from, to } = this.visible();
    const place = (start, end) => {
      const left = Math.max(0, (new Date(start).getTime() - from) / (to - from));
      const right = Math.min(1, ((end ? new Date(end).getTime() : to) - from) / (to - from));
      return right > left ? { left: `${left * 100}%`, width: `${Math.max(0.3, (right - left) * 100)}%` } : null;
    };
    const spans = [];
    for (const range of this.data.ranges) {
      const at = place(range.start, range.end);
      if (at) spans.push(h("span.range", { style: `left:${at.left};width:${at.width}`, title: `Recorded ${time(range.start)}–${time(range.end)}` }));
    }
    for (const gap of this.data.gaps) {
      const at = place(gap.start, gap.end);
      if (at) spans.push(h("span.gap", { style: `left:${at.left};width:${at.width}`, title: `Not recorded: ${REASONS[gap.reason] || gap.reason}` }));
    }
    mount(this.bar, spans);
    const markers = this.data.events
      .filter((event) => new Date(event.occurred_at).getTime() >= from)
      .map((event) => {
        const left = ((new Date(event.occurred_at).getTime() - from) / (to - from)) * 100;
        const label = `${KINDS[event.type] || event.type} at ${time(event.occurred_at)}`;
        return h("button.marker", { type: "button", style: `left:clamp(22px, ${left}%, calc(100% - 22px))`, "aria-label": label, title: label, "data-event": event.id, onclick: () => this.seek(new Date(event.occurred_at)) }, "▲");
      });
    mount(this.markers, markers);
    const label = to - from >= DAY ? (at) => new Date(at).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" }) : time;
    mount(this.scale, h("span", {}, label(from)), h("span", {}, label(to)));
    this.tick();
  }

  // Where playback is, on the wall clock: hls.js reads it from EXT-X-PROGRAM-DATE-TIME.
  now() {
    const playing = this.hls?.playingDate;
    if (playing) return playing.getTime();
    if (this.session) return new Date(this.session.start).getTime() + this.video.currentTime * 1000;
    return this.at ? this.at.getTime() : Date.now();
  }

  tick() {
    if (this.closed) return;
    if (this.session) this.at = new Date(this.now());
    if (!this.at) return;
    const { from, to } = this.visible();
    const fraction = Math.min(1, Math.max(0, (this.at.getTime() - from) / (to - from)));
    this.cursor.style.left = `${fraction * 100}%`;
    this.timeline.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
    this.timeline.setAttribute("aria-valuetext", dateTime(this.at));
    if (this.stateName === "playing") this.clock.textContent = `${dateTime(this.at)}${this.speed > 1 ? ` · ${this.speed}×` : ""}`;
    this.clock.dataset.at = this.at.toISOString();
  }

  state(name, text) {
    this.stateName = name;
    this.clock.dataset.state = name;
    if (text) this.clock.textContent = text;
    if (name === "playing") this.say("");
    this.tick();
  }

  say(text, ...extra) {
    mount(this.message, text, ...extra);
  }

  async seek(at) {
    if (this.closed) return;
    const asked = (this.asked = Symbol("seek"));
    this.at = at;
    this.state("loading", `Loading ${dateTime(at)}…`);
    const body = { start: at.toISOString(), profile: this.profile };
    if (this.profile === "source" && window.MediaSource?.isTypeSupported?.(HEVC)) body.hevc = true;
    let session;
    try {
      session = await api(`cameras/${this.cameraId}/playback`, { method: "POST", body });
    } catch (error) {
      if (!(error instanceof ApiError) || asked !== this.asked || this.closed) return;
      return this.refused(error, at);
    }
    if (asked !== this.asked || this.closed) return;
    this.play(session);
  }

  refused(error, at) {
    this.stopPlayer();
    if (error.status === 404 && "next" in error.body) {
      const next = error.body.next ? new Date(error.body.next) : null;
      this.state("nothing", `Nothing recorded at ${dateTime(at)}.`);
      return this.say(
        next ? "Next recording: " : "Nothing recorded after it.",
        next ? h("button", { type: "button", onclick: () => this.seek(next) }, `Play from ${dateTime(next)}`) : null,
      );
    }
    if (error.status === 400 && this.profile === "source") {
      this.say("This browser cannot play the original (H.265): playing Low instead.");
      this.quality.value = this.profile = "low";
      return this.seek(at);
    }
    this.state("error", error.status === 0 ? "No connection to the server." : error.message);
  }

  async play(session) {
    this.stopPlayer();
    this.session = session;
    const video = this.video;
    if (nativeHls(video)) {
      video.src = session.playlist;
    } else {
      const { default: Hls } = await import("hls.js");
      if (this.closed || session !== this.session) return;
      if (!Hls.isSupported()) return this.state("error", "This browser cannot play video.");
      // Transcoded playlists grow as the worker writes them: start at their beginning.
      const hls = new Hls({ startPosition: 0, manifestLoadingMaxRetry: 4, levelLoadingMaxRetry: 6 });
      this.hls = hls;
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal && hls === this.hls) this.state("error", "The recording stopped. Seek to try again.");
      });
      hls.loadSource(session.playlist);
      hls.attachMedia(video);
    }
    video.playbackRate = this.speed;
    video.play().catch(() => {});
    // The playlist's token ends within minutes: carry on from where playback is by then.
    const left = new Date(session.expires_at).getTime() - Date.now();
    clearTimeout(this.renew);
    this.renew = setTimeout(() => this.seek(new Date(this.now())), Math.max(left - 20000, 5000));
  }

  stopPlayer() {
    clearTimeout(this.renew);
    this.hls?.destroy();
    this.hls = null;
    this.session = null;
    this.video.removeAttribute("src");
  }

  toggle() {
    if (this.video.paused) this.video.play().catch(() => {});
    else this.video.pause();
  }

  setSpeed(speed) {
    this.speed = speed;
    this.video.playbackRate = speed;
    this.speedButtons.forEach((button, i) => button.setAttribute("aria-pressed", String(SPEEDS[i] === speed)));
  }

  setZoom(index) {
    this.zoom = index;
    this.zoomButtons.forEach((button, i) => button.setAttribute("aria-pressed", String(i === index)));
    this.draw();
  }

  setProfile(profile) {
    this.profile = profile;
    this.seek(new Date(this.now()));
  }

  async setCamera(id) {
    const at = new Date(this.now());
    this.cameraId = id;
    this.panel.querySelectorAll("[data-camera]").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.camera) === id)));
    await this.load();
    this.seek(at);
  }

  clicked(event) {
    const box = this.timeline.getBoundingClientRect();
    const { from, to } = this.visible();
    this.seek(new Date(from + ((event.clientX - box.left) / box.width) * (to - from)));
  }

  // Arrows: 10 s (with Shift 1 min); Page keys: 10 min. One seek when the keys stop.
  key(event) {
    const steps = { ArrowLeft: -10000, ArrowRight: 10000, PageUp: -600000, PageDown: 600000 };
    const step = steps[event.key];
    if (!step) return;
    event.preventDefault();
    this.at = new Date((this.pending || this.at || new Date()).getTime() + step * (event.shiftKey ? 6 : 1));
    this.pending = this.at;
    this.stopPlayer();
    this.state("loading", `Go to ${dateTime(this.at)}`);
    clearTimeout(this.keyed);
    this.keyed = setTimeout(() => {
      const at = this.pending;
      this.pending = null;
      this.seek(at);
    }, 600);
  }

  toLive() {
    const id = this.cameraId;
    this.panel.close ? this.panel.close() : this.close();
    this.ctx.openCamera(id);
  }

  close() {
    this.closed = true;
    this.exporter?.then((form) => form?.stop());
    clearInterval(this.ticker);
    clearInterval(this.refresher);
    clearTimeout(this.keyed);
    this.stopPlayer();
  }
}

function time(at) {
  return new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function dateTime(at) {
  return new Date(at).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function nativeHls(video) {
  if (!video.canPlayType("application/vnd.apple.mpegurl")) return false;
  return !window.MediaSource || /Apple/.test(navigator.vendor);
}
