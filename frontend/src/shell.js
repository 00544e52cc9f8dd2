// The signed-in app: a nav (bottom bar on phones, side rail on a landscape tablet), one
// screen per tab, the live sheet, and the ctx object P2's modules receive.
import { h, mount } from "./dom.js";
import { incidentsPanel } from "./incidents.js";
import { notificationsPanel } from "./push.js";
import { startFeed } from "./feed.js";
import { openLive } from "./live.js";
import { CampusMap } from "./map.js";
import { offlineBanner } from "./offline.js";

const TABS = [
  { view: "map", label: "Map", icon: "M3 6l6-3 6 3 6-3v15l-6 3-6-3-6 3zM9 3v15M15 6v15" },
  { view: "feed", label: "Alarms", icon: "M12 3a6 6 0 0 0-6 6v4l-2 3h16l-2-3V9a6 6 0 0 0-6-6zM10 19a2 2 0 0 0 4 0" },
  { view: "incidents", label: "Incidents", icon: "M12 3l10 18H2zM12 10v5M12 17.5v.5" },
  { view: "notifications", label: "Notifications", icon: "M4 5h16v11H8l-4 4zM8 9h8M8 12h5" },
];
const VIEW_KEY = "responder.view";

export function startShell(root, { me, tree, onSignOut, signedOut, updateBanner }) {
  const index = indexTree(tree);
  const screens = {};
  const tabs = {};
  let live = null;
  const ctx = {
    me,
    tree,
    map: null,
    cameras: (id) => index.cameras.get(Number(id)),
    door: (id) => index.doors.get(Number(id)),
    show,
    openCamera,
    signedOut,
    badge,
  };

  const nav = h(
    "nav.tabs",
    { "aria-label": "Main" },
    TABS.map((tab) => {
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
  for (const tab of TABS) screens[tab.view] = h("section.screen", { "aria-label": tab.label, hidden: tab.view !== "map" });
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
    h("div.banners", {}, offlineBanner(), updateBanner),
    h("main.screens", {}, Object.values(screens)),
    nav,
  );
  mount(root, shell);

  const where = JSON.parse(sessionStorage.getItem("responder.where") || "null");
  ctx.map = new CampusMap(screens.map, {
    tree,
    onCamera: (camera) => openCamera(camera.id),
    onPlace: (where) => sessionStorage.setItem("responder.where", JSON.stringify(where)),
  });
  ctx.map.restore(where);
  const parts = [
    startFeed(ctx, panel(screens.feed)),
    incidentsPanel(ctx, panel(screens.incidents)),
    notificationsPanel(ctx, panel(screens.notifications)),
  ];
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
  }

  function openCamera(id) {
    live?.dialog.close();
    const camera = ctx.cameras(id);
    const dialog = h("dialog.sheet", { "aria-label": `Live: ${camera ? camera.name : `camera ${id}`}` });
    shell.append(dialog);
    const session = { dialog, handle: null };
    live = session;
    dialog.addEventListener("close", () => {
      session.handle?.close();
      dialog.remove();
      if (live === session) live = null;
    });
    dialog.showModal();
    session.handle = openLive(ctx, Number(id), dialog);
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
    busy: () => live !== null,
    stop() {
      live?.dialog.close();
      for (const part of parts) part?.stop?.();
    },
  };
}

function fullName(user = {}) {
  return [user.first_name, user.last_name].filter(Boolean).join(" ") || user.username || "";
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
  for (const campus of tree)
    for (const building of campus.buildings) {
      for (const camera of building.unplaced_cameras || []) cameras.set(camera.id, camera);
      for (const door of building.unplaced_doors || []) doors.set(door.id, door);
      for (const floor of building.floors) {
        for (const camera of floor.cameras || []) cameras.set(camera.id, camera);
        for (const door of floor.doors || []) doors.set(door.id, door);
      }
    }
  return { cameras, doors };
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
