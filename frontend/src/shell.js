// The signed-in app: a nav (bottom bar on phones, side rail on a landscape tablet), one
// screen per tab, the live sheet, and the ctx object P2's modules receive.
import { h, mount } from "./dom.js";
import { incidentsPanel } from "./incidents.js";
import { notificationsPanel } from "./push.js";
import { roleCameraNote, startFeed } from "./feed.js";
import { openGrid, openLive } from "./live.js";
import { CampusMap } from "./map.js";
import { offlineBanner } from "./offline.js";
import { themeSwitch } from "./theme.js";

const TABS = [
  { view: "map", label: "Map", icon: "M3 6l6-3 6 3 6-3v15l-6 3-6-3-6 3zM9 3v15M15 6v15" },
  { view: "feed", label: "Alarms", icon: "M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zM10 19a2 2 0 0 0 4 0" },
  { view: "incidents", label: "Incidents", icon: "M12 3l10 18H2zM12 10v5M12 17.5v.5" },
  { view: "notifications", label: "Notifications", icon: "M4 5h16v11H8l-4 4zM8 9h8M8 12h5" },
];
// Exports, shares and holds: for those who may export (capability `export`), loaded on first use.
const EVIDENCE_TAB = { view: "evidence", label: "Evidence", icon: "M6 3h9l4 4v14H6zM14 3v5h5M9 13l2 2 4-4" };
const VIEW_KEY = "responder.view";

export function startShell(root, { me, tree, onSignOut, signedOut, updateBanner }) {
  const index = indexTree(tree);
  const exports = (me.capabilities || []).includes("export");
  const tabList = exports ? [...TABS, EVIDENCE_TAB] : TABS;
  let evidence = null;
  const screens = {};
  const tabs = {};
  let sheet = null;
  const ctx = {
    me,
    tree,
    map: null,
    cameras: (id) => index.cameras.get(Number(id)),
    door: (id) => index.doors.get(Number(id)),
    show,
    openCamera,
    openGrid: openCameras,
    showDoor: (id) => show("map", { kind: "door", id: Number(id) }),
    openPlayback,
    openExport,
    watch,
    placeOf: (door) => placeOf(index, door),
    overlay: (element) => shell.append(element),
    signedOut,
    badge,
  };

  const nav = h(
    "nav.tabs",
    { "aria-label": "Main" },
    tabList.map((tab) => {
      const count = h("span.badge", { id: `badge-${tab.view}`, "aria-hidden": "true", hidden: true });
      tabs[tab.view] = h(
        "button.tab",
        { type: "button", onclick: () => show(tab.view), "aria-describedby": `badge-${tab.view}` },
        icon(tab.icon),
        h("span.tab-label", {}, tab.label),
        count,
      );
      tabs[tab.view].count = count;
      return tabs[tab.view];
    }),
  );
  // The map's screen is shown while Leaflet measures it.
  for (const tab of tabList) screens[tab.view] = h("section.screen", { "aria-label": tab.label, hidden: tab.view !== "map" });
  const top = h(
    "header.topbar",
    {},
    h("h1.brand", {}, "Responder"),
    h("span.who", {}, fullName(me.user)),
    h("button.quiet", { type: "button", onclick: onSignOut }, "Sign out"),
  );
  const shell = h(
    "div.shell",
    {},
    top,
    h("div.banners", {}, offlineBanner(), updateBanner, soundPrompt(), roleNote(me)),
    h("main.screens", {}, Object.values(screens)),
    nav,
  );
  mount(root, shell);

  const where = JSON.parse(sessionStorage.getItem("responder.where") || "null");
  ctx.map = new CampusMap(screens.map, {
    tree,
    onCamera: (camera) => openCamera(camera.id),
    onGrid: (ids) => openCameras(ids),
    onPlace: (where) => sessionStorage.setItem("responder.where", JSON.stringify(where)),
  });
  ctx.map.restore(where);
  const parts = [
    startFeed(ctx, panel(screens.feed)),
    incidentsPanel(ctx, panel(screens.incidents)),
    notificationsPanel(ctx, panel(screens.notifications)),
  ];
  // This device's own settings, beside its notifications (the top bar has no room at 360 px).
  screens.notifications.append(
    h("div.panel.device-settings", {}, h("h2", {}, "Display"), h("label.theme-choice", {}, h("span", {}, "Theme"), themeSwitch())),
  );
  show(sessionStorage.getItem(VIEW_KEY) || "map");

  function show(view, arg) {
    if (!screens[view]) return;
    for (const [name, screen] of Object.entries(screens)) {
      screen.hidden = name !== view;
      tabs[name].setAttribute("aria-current", String(name === view));
    }
    sessionStorage.setItem(VIEW_KEY, view);
    if (view === "map") {
      ctx.map.map.invalidateSize({ animate: false }); // Leaflet measured a hidden box
      if (arg && arg.id != null) ctx.map.reveal(arg);
    }
    if (view === "feed" && arg && arg.event != null) focusEvent(screens.feed, arg.event);
    if (view === "evidence" && !evidence) {
      evidence = import("./evidence.js").then(({ evidencePanel }) => parts.push(evidencePanel(ctx, panel(screens.evidence))));
    }
  }

  // Live, side by side or recorded: one sheet at a time, closed with what it shows.
  function openSheet(label, tag = "dialog.sheet") {
    sheet?.dialog.close();
    const dialog = h(tag, { "aria-label": label });
    shell.append(dialog);
    const session = { dialog, handle: null };
    sheet = session;
    dialog.addEventListener("close", () => {
      session.handle?.close();
      dialog.remove();
      if (sheet === session) sheet = null;
    });
    dialog.showModal();
    return session;
  }

  function openCamera(id) {
    const camera = ctx.cameras(id);
    const session = openSheet(`Live: ${camera ? camera.name : `camera ${id}`}`);
    session.handle = openLive(ctx, Number(id), session.dialog);
  }

  // Cameras side by side (a door's, an alarm's, an incident's): the same sheet, a grid in it.
  function openCameras(ids, { title } = {}) {
    const wanted = [...new Set(ids.map(Number))].filter((id) => ctx.cameras(id));
    if (wanted.length === 1) return openCamera(wanted[0]);
    if (!wanted.length) return;
    const session = openSheet(title || "Cameras side by side", "dialog.sheet.grid-sheet");
    session.handle = openGrid(ctx, wanted, session.dialog, { title, onSingle: (id) => openCamera(id) });
  }

  // The takeover's Watch: the door's nearest cameras, side by side (four at most).
  function watch(ids) {
    openCameras(ids.slice(0, 4), { title: `Live: ${ids.length} cameras` });
  }

  // Recorded playback (playback.js, loaded on first use) in the same sheet as live.
  function openPlayback({ cameras, start, title }) {
    const name = title || ctx.cameras(cameras[0])?.name || `camera ${cameras[0]}`;
    const session = openSheet(`Recordings: ${name}`);
    import("./playback.js").then(({ openPlayback: play }) => {
      if (sheet === session) session.handle = play(ctx, { cameras, start, title }, session.dialog);
    });
  }

  // An export of cameras × range (an incident's), in the same sheet; playback has its own form.
  function openExport({ cameras, start, end, incident, title }) {
    const session = openSheet(title ? `Export: ${title}` : "Export");
    import("./evidence.js").then(({ openExport: form }) => {
      if (sheet === session) session.handle = form(ctx, { cameras, start, end, incident, title }, session.dialog);
    });
  }

  function badge(view, n) {
    const count = tabs[view]?.count;
    if (!count) return;
    count.hidden = !n;
    count.textContent = n > 99 ? "99+" : String(n || "");
    count.setAttribute("title", `${n} new`);
  }

  return {
    ctx,
    busy: () => sheet !== null,
    stop() {
      sheet?.dialog.close();
      for (const part of parts) part?.stop?.();
    },
  };
}

function fullName(user = {}) {
  return [user.first_name, user.last_name].filter(Boolean).join(" ") || user.username || "";
}

// Browsers let a page sound only after a touch: a page opened without one (a reload, a
// notification) asks for it, once, with a button that is that touch.
function soundPrompt() {
  if (navigator.userActivation?.hasBeenActive !== false) return null;
  const prompt = h(
    "p.sound-banner",
    {},
    "Alarm sound is off until you touch the page. ",
    h("button", { type: "button", onclick: () => prompt.remove() }, "Turn on alarm sound"),
  );
  window.addEventListener("pointerdown", () => prompt.remove(), { once: true, capture: true });
  return prompt;
}

function roleNote(me) {
  const held = me.capabilities || [];
  if (held.includes("live") || held.includes("recorded")) return null;
  return h("p.role-note", { role: "note" }, roleCameraNote(me));
}

function placeOf(index, door) {
  const building = door && index.buildings.get(door.building);
  if (!building) return null;
  const floor = building.floors.find((f) => f.id === door.floor);
  return { campus: building.campus, building: building.name, floor: floor ? floor.name : null };
}

function panel(screen) {
  const element = h("div.panel");
  screen.append(element);
  return element;
}

// Opened from a notification: the item may still be on its way from the socket.
function focusEvent(feed, id) {
  const find = () => feed.querySelector(`[data-event-id="${CSS.escape(String(id))}"]`);
  const mark = (item) => {
    item.classList.add("flash");
    item.setAttribute("tabindex", "-1");
    item.scrollIntoView({ block: "center" });
    item.focus({ preventScroll: true });
  };
  const item = find();
  if (item) return mark(item);
  const watch = new MutationObserver(() => {
    const found = find();
    if (found) {
      watch.disconnect();
      mark(found);
    }
  });
  watch.observe(feed, { childList: true, subtree: true });
  setTimeout(() => watch.disconnect(), 30000);
}

function indexTree(tree) {
  const cameras = new Map();
  const doors = new Map();
  const buildings = new Map();
  for (const campus of tree)
    for (const building of campus.buildings) {
      buildings.set(building.id, { ...building, campus: campus.name });
      for (const camera of building.unplaced_cameras || []) cameras.set(camera.id, camera);
      for (const door of building.unplaced_doors || []) doors.set(door.id, door);
      for (const floor of building.floors) {
        for (const camera of floor.cameras || []) cameras.set(camera.id, camera);
        for (const door of floor.doors || []) doors.set(door.id, door);
      }
    }
  return { cameras, doors, buildings };
}

function icon(path) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  const shape = document.createElementNS("http://www.w3.org/2000/svg", "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}
