// The live view of one camera: ask the server for a session (POST cameras/<id>/live),
// play its HLS playlist natively (Safari, iOS) or with hls.js (loaded on first use), and
// say what the stream is doing and how far behind live it plays.
import { api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";

const PROFILES = [
  { name: "low", label: "Low", bits: 150_000 },
  { name: "medium", label: "Medium", bits: 300_000 },
  { name: "high", label: "High", bits: 1_200_000 },
];
const SLOW_TYPES = new Set(["slow-2g", "2g", "3g"]);
// Below this the medium profile (300 kbit/s) would not keep up with room to spare.
const SLOW_BITS = 1_000_000;
const CHOSEN = "responder.profile";
const GRID_MAX = 4;
const MEASURED = "responder.throughput";
const STATES = {
  starting: "Starting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Camera offline",
};

export function openLive(ctx, cameraId, panel) {
  const view = new LiveView(ctx, cameraId, panel);
  view.start();
  return { close: () => view.close() };
}

// Up to four cameras side by side (the nearest of a door, an alarm, an incident), each at
// the low profile (4 × 150 kbit/s fits a weak link); a tile opens its camera alone, and
// the grid goes full screen (landscape on a phone that allows it).
export function openGrid(ctx, cameraIds, panel, { title = "Cameras side by side", onSingle } = {}) {
  const ids = [...new Set(cameraIds.map(Number))].slice(0, GRID_MAX);
  const tiles = ids.map((id) => h("div.grid-tile", { "data-camera": String(id) }));
  const box = h(`div.grid.grid-${ids.length}`, {}, tiles);
  mount(
    panel,
    h(
      "div.grid-view",
      {},
      h(
        "header.live-head",
        {},
        h("h2", {}, title),
        fullScreenButton(panel),
        h("button.close", { type: "button", onclick: () => (panel.close ? panel.close() : close()) }, "Close"),
      ),
      box,
    ),
  );
  const views = ids.map((id, i) => new LiveView(ctx, id, tiles[i], { profile: "low", tile: true, onOpen: onSingle && (() => onSingle(id)) }));
  for (const view of views) view.start();
  function close() {
    for (const view of views) view.close();
    fullScreenLeave(panel);
  }
  return { close, views };
}

// Full screen for a camera or the grid: the browser's (the bars go), or where it has none
// for elements (iPhone Safari) or refuses, the sheet over the whole viewport (.full).
function fullScreenButton(sheet) {
  const button = h("button.fullscreen", { type: "button", "aria-pressed": "false" }, "Full screen");
  const shown = () => {
    const on = document.fullscreenElement === sheet || sheet.classList.contains("full");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Exit full screen" : "Full screen";
  };
  button.addEventListener("click", async () => {
    await fullScreenToggle(sheet);
    shown();
  });
  document.addEventListener("fullscreenchange", shown);
  sheet.addEventListener("close", () => document.removeEventListener("fullscreenchange", shown));
  return button;
}

async function fullScreenToggle(sheet) {
  if (document.fullscreenElement || sheet.classList.contains("full")) return fullScreenLeave(sheet);
  if (document.fullscreenEnabled && sheet.requestFullscreen) {
    try {
      await sheet.requestFullscreen({ navigationUI: "hide" });
      // Phones turn the picture sideways where the browser allows it (installed PWAs, Android).
      await screen.orientation?.lock?.("landscape").catch(() => {});
      return;
    } catch {
      // Refused: the viewport below is the next best thing.
    }
  }
  sheet.classList.add("full");
}

function fullScreenLeave(sheet) {
  sheet?.classList.remove("full");
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
}

// Two fingers on a single camera zoom and pan its picture; a double tap goes back.
function pinchZoom(box, video) {
  const pointers = new Map();
  let scale = 1;
  let shift = { x: 0, y: 0 };
  let start = null;
  const apply = () => {
    video.style.transform = scale === 1 ? "" : `translate(${shift.x}px, ${shift.y}px) scale(${scale})`;
    box.dataset.zoom = scale.toFixed(2);
  };
  const spread = () => {
    const [a, b] = [...pointers.values()];
    return { d: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  };
  box.addEventListener("pointerdown", (e) => {
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 2) start = { ...spread(), scale, shift: { ...shift } };
  });
  box.addEventListener("pointermove", (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size !== 2 || !start) return;
    const now = spread();
    scale = Math.min(4, Math.max(1, (start.scale * now.d) / (start.d || 1)));
    shift = scale === 1 ? { x: 0, y: 0 } : { x: start.shift.x + now.x - start.x, y: start.shift.y + now.y - start.y };
    apply();
  });
  const lift = (e) => {
    pointers.delete(e.pointerId);
    if (pointers.size < 2) start = null;
  };
  box.addEventListener("pointerup", lift);
  box.addEventListener("pointercancel", lift);
  box.addEventListener("dblclick", () => {
    scale = 1;
    shift = { x: 0, y: 0 };
    apply();
  });
}

class LiveView {
  constructor(ctx, cameraId, panel, { profile, tile = false, onOpen } = {}) {
    this.cameraId = cameraId;
    this.camera = ctx.cameras(cameraId);
    this.panel = panel;
    this.tile = tile;
    this.profile = profile || sessionStorage.getItem(CHOSEN) || (linkIsSlow() ? "low" : "medium");
    this.closed = false;
    this.attempt = 0;
    this.video = h("video", { muted: true, playsinline: true, autoplay: true, "aria-label": "Live video" });
    this.video.muted = true; // the attribute alone does not mute for autoplay
    this.state = h("p.stream-state", { role: "status", "data-state": "starting" }, STATES.starting);
    this.detail = h("span.stream-detail");
    this.behind = h("span.behind", {}, "");
    this.buttons = PROFILES.map((profile) =>
      h(
        "button.profile",
        { type: "button", "aria-pressed": String(profile.name === this.profile), onclick: () => this.choose(profile.name) },
        profile.label,
      ),
    );
    const name = this.camera ? this.camera.name : `Camera ${cameraId}`;
    const videoBox = h("div.video-box", {}, this.video);
    if (tile) {
      mount(
        panel,
        videoBox,
        h("div.tile-bar", {}, onOpen ? h("button.tile-name", { type: "button", onclick: onOpen, "aria-label": `Open ${name} alone` }, name) : h("span.tile-name", {}, name), this.state),
      );
    } else {
      pinchZoom(videoBox, this.video);
      mount(
        panel,
        h(
          "div.live",
          {},
          h(
            "header.live-head",
            {},
            h("h2", {}, name),
            fullScreenButton(panel),
            ctx.me?.capabilities?.includes("recorded") ? h("button.quiet", { type: "button", onclick: () => ctx.openPlayback({ cameras: [cameraId] }) }, "Recordings") : null,
            h("button.close", { type: "button", onclick: () => (panel.close ? panel.close() : this.close()) }, "Close"),
          ),
          videoBox,
          h("div.live-bar", {}, this.state, this.detail, this.behind),
          h("div.profiles", { role: "group", "aria-labelledby": `quality-${cameraId}` }, h("span.profiles-label", { id: `quality-${cameraId}` }, "Quality"), this.buttons),
        ),
      );
    }
    this.video.addEventListener("playing", () => this.show("live"));
    this.video.addEventListener("waiting", () => this.stateName === "live" && this.show("reconnecting"));
    this.ticker = setInterval(() => this.tick(), 1000);
    // The server's camera health frames, relayed by the feed (feed.js).
    this.onCamera = (event) => this.cameraFrame(event.detail);
    window.addEventListener("responder:camera", this.onCamera);
  }

  cameraFrame(frame) {
    if (this.closed || frame.camera?.id !== this.cameraId) return;
    if (frame.state === "offline") {
      // Video still playing from the buffer says more than the probe: only a stalled view changes.
      if (this.stateName !== "live") this.show("offline", frame.reason || "");
    } else if (this.stateName === "offline") {
      this.attempt = 0; // back: try at once rather than at the end of the back-off
      this.start();
    }
  }

  async start() {
    if (this.closed) return;
    clearTimeout(this.retry);
    const profile = this.profile;
    if (!this.stateName) this.show("starting"); // a retry keeps saying "offline" or "reconnecting"
    let session;
    try {
      session = await api(`cameras/${this.cameraId}/live`, { method: "POST", body: { profile } });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (this.closed || profile !== this.profile) return;
      if (error.status === 503 || error.status === 429) return this.again("offline", error.message, 5);
      if (error.status === 0) return this.again("reconnecting", "No connection to the server.", 5);
      return this.show("offline", error.message); // 403/404: no retry helps
    }
    if (this.closed || profile !== this.profile) return;
    this.play(session);
  }

  async play(session) {
    this.stopPlayer();
    this.token = tokenOf(session.playlist);
    const video = this.video;
    if (nativeHls(video)) {
      // Native HLS: the playlist URL's token ends; a new session URL comes before it does.
      video.src = session.playlist;
      this.renewBefore(session.expires_at, () => this.start());
      video.onerror = () => this.again("reconnecting", "The stream stopped.", 2);
    } else {
      const { default: Hls } = await import("hls.js");
      if (this.closed) return;
      if (!Hls.isSupported()) return this.show("offline", "This browser cannot play live video.");
      const hls = new Hls({
        lowLatencyMode: false,
        liveSyncDurationCount: 2,
        manifestLoadingMaxRetry: 2,
        levelLoadingMaxRetry: 4,
        // A playlist token is good for minutes from its POST, never renewed by fetching:
        // each new POST's token goes on the next playlist fetches, and playing carries on.
        xhrSetup: (xhr, url) => {
          if (url.includes("index.m3u8") && this.token) xhr.open("GET", withToken(url, this.token), true);
        },
      });
      this.hls = hls;
      this.renewBefore(session.expires_at, () => this.refresh(hls));
      hls.on(Hls.Events.FRAG_LOADED, () => {
        if (hls.bandwidthEstimate) sessionStorage.setItem(MEASURED, String(Math.round(hls.bandwidthEstimate)));
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (!data.fatal) return;
        const code = data.response?.code;
        if (code === 503) return this.again("offline", "The camera stopped sending video.", 5);
        this.again("reconnecting", "The stream stopped.", 2);
      });
      hls.loadSource(session.playlist);
      hls.attachMedia(video);
    }
    video.play().catch(() => {}); // autoplay refused: the controls below still work
  }

  // Ask for a new playlist token before this one ends (sooner if the session ends first).
  renewBefore(expiresAt, renew) {
    clearTimeout(this.renew);
    const left = new Date(expiresAt).getTime() - Date.now();
    this.renew = setTimeout(renew, Math.max(left - 30000, left / 2, 1000));
  }

  async refresh(hls) {
    if (this.closed || hls !== this.hls) return;
    const profile = this.profile;
    let session;
    try {
      session = await api(`cameras/${this.cameraId}/live`, { method: "POST", body: { profile } });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (this.closed || hls !== this.hls) return;
      if (error.status === 0) {
        this.renew = setTimeout(() => this.refresh(hls), 5000); // the link is down: soon again
        return;
      }
      if (error.status === 503 || error.status === 429) return this.again("offline", error.message, 5);
      return this.show("offline", error.message); // signed out, or no longer in scope
    }
    if (this.closed || hls !== this.hls) return;
    this.token = tokenOf(session.playlist);
    this.renewBefore(session.expires_at, () => this.refresh(hls));
  }

  // Try again after a while, with a longer wait each time.
  again(state, message, seconds) {
    this.stopPlayer();
    this.show(state, message);
    const wait = Math.min(seconds * 2 ** this.attempt, 30);
    this.attempt += 1;
    this.retry = setTimeout(() => this.start(), wait * 1000);
  }

  choose(name) {
    if (name === this.profile) return;
    this.profile = name;
    sessionStorage.setItem(CHOSEN, name);
    for (const [i, button] of this.buttons.entries()) button.setAttribute("aria-pressed", String(PROFILES[i].name === name));
    this.attempt = 0;
    this.stopPlayer();
    this.show("starting");
    this.start();
  }

  show(state, message = "") {
    this.stateName = state;
    if (state === "live") {
      this.attempt = 0;
      // The camera evidently works: the feed drops its "offline" notice (feed.js).
      window.dispatchEvent(new CustomEvent("responder:camera-playing", { detail: { id: this.cameraId } }));
    }
    this.state.dataset.state = state;
    this.state.textContent = STATES[state];
    this.detail.textContent = message;
    if (state !== "live") this.behind.textContent = "";
  }

  tick() {
    if (this.stateName !== "live") return;
    const seconds = this.latency();
    this.behind.textContent = seconds == null ? "" : `${seconds.toFixed(1)} s behind live`;
  }

  latency() {
    if (this.hls && Number.isFinite(this.hls.latency) && this.hls.latency > 0) return this.hls.latency;
    const { seekable, currentTime } = this.video;
    if (!seekable.length) return null;
    return Math.max(0, seekable.end(seekable.length - 1) - currentTime);
  }

  stopPlayer() {
    clearTimeout(this.renew);
    this.hls?.destroy();
    this.hls = null;
    this.video.onerror = null;
    this.video.removeAttribute("src");
    this.video.load();
  }

  close() {
    this.closed = true;
    if (!this.tile) fullScreenLeave(this.panel);
    clearTimeout(this.retry);
    clearInterval(this.ticker);
    window.removeEventListener("responder:camera", this.onCamera);
    this.stopPlayer();
  }
}

// Slow when the browser says so (Network Information API), else from what was measured:
// the last video's estimate, or this page's own downloads.
export function linkIsSlow() {
  const link = navigator.connection;
  if (link) {
    if (link.saveData || SLOW_TYPES.has(link.effectiveType)) return true;
    if (link.downlink) return link.downlink * 1_000_000 < SLOW_BITS;
  }
  const measured = Number(sessionStorage.getItem(MEASURED)) || measuredThroughput();
  return measured ? measured < SLOW_BITS : true; // unknown: start small, the user may go up
}

function measuredThroughput() {
  const entries = performance
    .getEntriesByType("resource")
    .filter((entry) => entry.transferSize > 20000 && entry.responseEnd > entry.responseStart)
    .slice(-10);
  if (!entries.length) return null;
  const bytes = entries.reduce((sum, entry) => sum + entry.transferSize, 0);
  const seconds = entries.reduce((sum, entry) => sum + (entry.responseEnd - entry.requestStart), 0) / 1000;
  return seconds > 0 ? (bytes * 8) / seconds : null;
}

// Safari and iOS play HLS themselves. Chromium 14x+ also answers "maybe", but its young
// player stalled on these live playlists where hls.js plays them: there, hls.js.
function nativeHls(video) {
  if (!video.canPlayType("application/vnd.apple.mpegurl")) return false;
  return !window.MediaSource || /Apple/.test(navigator.vendor);
}

function tokenOf(url) {
  try {
    return new URL(url, location.href).searchParams.get("token");
  } catch {
    return null;
  }
}

function withToken(url, token) {
  const parsed = new URL(url, location.href);
  parsed.searchParams.set("token", token);
  return parsed.toString();
}
