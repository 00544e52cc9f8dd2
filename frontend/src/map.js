// The campus map: site plan → building → floor plan, with camera and door markers.
// No pin hides another: at every zoom, pins closer than a pin's width are drawn as one
// group pin (see declutter), alarmed doors first, so they are never under anything. Names
// on a plan (rooms, a road) are labels drawn at a readable size, shown only where they fit.
import L from "leaflet";
import { api, ApiError } from "./api.js";
import { ago, h, mount } from "./dom.js";
import { EVENT_KINDS as KINDS } from "./words.js";

const CONE_REACH = 0.08; // of the plan's width
const FLASH_MS = 6000; // styles.css: .flash runs six 1 s cycles
const PIN = 44; // px: the touch target of a pin (map.css), and so its footprint
const SPACING = PIN + 8; // px between two pins' centres: room for an alarm ring and a count badge
const NEAR_ZOOM = 1; // zoom steps past the whole plan from which cones show in full
const RECENT = 5; // events a door's sheet lists
const PRIORITY = { forced: 0, held: 1, door: 2, camera: 3 }; // who anchors a group
const Z = { forced: 3000, held: 2000, door: 1000, camera: 0 }; // who is drawn on top
const STATE_WORDS = { forced: "Forced open", held: "Held open", normal: "Closed, no alarm" };

export class CampusMap {
  constructor(container, { tree, onCamera, onGrid, onPlace }) {
    this.tree = tree;
    this.onCamera = onCamera;
    this.onGrid = onGrid || ((ids) => ids.length && onCamera({ id: ids[0] }));
    this.onPlace = onPlace || (() => {});
    this.doorState = new Map(); // door id -> "forced" | "held"
    this.doorEvents = new Map(); // door id -> its newest events, newest first (noteEvent)
    this.markers = new Map(); // "door:1" -> marker
    this.items = []; // the floor's pins: {key, kind, latLng, thing}
    this.crumbs = h("nav.crumbs", { "aria-label": "Where on the map" });
    this.floors = h("div.floors", { role: "group", "aria-label": "Floors" });
    this.search = searchBox(tree, (hit) => this.reveal(hit));
    this.canvas = h("div.map-canvas", { role: "region", "aria-label": "Plan" });
    this.container = container;
    mount(container, this.search, this.crumbs, this.floors, this.canvas);
    this.map = L.map(this.canvas, { crs: L.CRS.Simple, minZoom: -3, maxZoom: 3, zoomSnap: 0.25, attributionControl: false });
    this.layer = L.layerGroup().addTo(this.map);
    this.pins = L.layerGroup().addTo(this.map);
    // Labels above the plan and its cones, below every pin; never in the way of a tap.
    const labelPane = this.map.createPane("labels");
    labelPane.style.zIndex = "450";
    labelPane.style.pointerEvents = "none";
    this.planLabels = [];
    this.map.on("zoomend", () => this.redraw());
    this.map.on("resize", () => this.fitPlanLabels());
    legend().addTo(this.map);
    this.showDistrict();
  }

  showDistrict() {
    if (this.tree.length === 1) return this.showCampus(this.tree[0]);
    this.current = {};
    this.onPlace(null);
    this.container.classList.add("district"); // a list of campuses: no plan to draw
    this.place([{ label: "District" }]);
    if (!this.tree.length) return mount(this.floors, h("p.empty", {}, "No campus is shared with you yet."));
    mount(this.floors, this.tree.map((campus) => h("button.chip", { onclick: () => this.showCampus(campus) }, campus.name)));
    this.drawPlan(null);
  }

  showCampus(campus) {
    this.current = { campus };
    this.onPlace({ campus: campus.id });
    this.place([{ label: "District", go: () => this.showDistrict() }, { label: campus.name }]);
    mount(this.floors, campus.buildings.map((b) => h("button.chip", { onclick: () => this.showBuilding(b) }, b.name)));
    const size = { width: campus.site_plan_width || 1000, height: campus.site_plan_height || 700 };
    this.drawPlan(campus.site_plan, size);
    this.drawLabels(campus.labels, size);
    this.buildingPins = [];
    for (const building of campus.buildings) {
      if (building.site_x == null) continue;
      const marker = L.marker(this.at(size, building.site_x, building.site_y), {
        icon: L.divIcon({ className: "building-pin", html: label(building.name), iconSize: null }),
        keyboard: true,
        title: building.name,
      })
        .on("click", () => this.showBuilding(building))
        .addTo(this.layer);
      this.buildingPins.push({ marker, building });
    }
    this.fitLabels();
    this.fitPlanLabels();
  }

  // Building labels that would overlap at this width shorten to initials (the chips above
  // the plan, the title and the screen reader keep the full name).
  fitLabels() {
    const placed = [];
    for (const { marker, building } of this.buildingPins || []) {
      const span = marker.getElement()?.querySelector("span");
      if (!span) continue;
      span.textContent = building.name;
      if (placed.some((box) => overlaps(box, span.getBoundingClientRect()))) span.textContent = initials(building.name);
      placed.push(span.getBoundingClientRect());
    }
  }

  showBuilding(building, floor) {
    const campus = this.tree.find((c) => c.buildings.includes(building));
    floor = floor || building.floors.find((f) => f.level === 1) || building.floors[0];
    this.current = { campus, building, floor };
    this.onPlace({ campus: campus.id, building: building.id, floor: floor && floor.id });
    this.place([
      { label: "District", go: () => this.showDistrict() },
      { label: campus.name, go: () => this.showCampus(campus) },
      { label: building.name },
    ]);
    mount(
      this.floors,
      building.floors.map((f) =>
        h("button.chip", { onclick: () => this.showBuilding(building, f), "aria-pressed": String(f === floor) }, f.name),
      ),
    );
    if (floor) this.showFloor(floor);
  }

  showFloor(floor) {
    const size = { width: floor.plan_width || 1000, height: floor.plan_height || 700 };
    this.drawPlan(floor.plan, size);
    this.drawLabels(floor.labels, size);
    for (const camera of floor.cameras || []) this.addCamera(camera, size);
    for (const door of floor.doors || []) this.items.push({ key: `door:${door.id}`, kind: "door", latLng: this.at(size, door.x, door.y), thing: door });
    this.redraw();
  }

  drawPlan(url, size) {
    if (size && this.container.classList.contains("district")) {
      this.container.classList.remove("district");
      this.map.invalidateSize({ animate: false });
    }
    this.layer.clearLayers();
    this.pins.clearLayers();
    this.markers.clear();
    this.items = [];
    this.buildingPins = [];
    this.planLabels = [];
    if (!size) return;
    const bounds = [[0, 0], [size.height, size.width]];
    if (url) L.imageOverlay(url, bounds, { alt: "Plan" }).addTo(this.layer);
    this.map.fitBounds(bounds, { animate: false });
    this.wholeZoom = this.map.getZoom();
    this.size = size;
  }

  addCamera(camera, size) {
    const apex = this.at(size, camera.x, camera.y);
    const reach = size.width * CONE_REACH;
    const half = (camera.field_of_view || 90) / 2;
    const cone = [apex];
    for (let a = -half; a <= half; a += Math.max(5, half / 6)) {
      const rad = ((camera.heading + a) * Math.PI) / 180;
      cone.push([apex[0] + Math.cos(rad) * reach, apex[1] + Math.sin(rad) * reach]);
    }
    L.polygon(cone, { className: "fov", interactive: false }).addTo(this.layer);
    this.items.push({ key: `camera:${camera.id}`, kind: "camera", latLng: apex, thing: camera });
  }

  // The floor's pins for this zoom: each group drawn once, at its first member's place.
  redraw() {
    this.canvas.classList.toggle("far", this.wholeZoom != null && this.map.getZoom() < this.wholeZoom + NEAR_ZOOM);
    this.fitLabels();
    if (this.items.length) {
      this.pins.clearLayers();
      this.markers.clear();
      for (const group of declutter(this.ranked(), (latLng) => this.map.project(latLng, this.map.getZoom()))) {
        const [first] = group;
        const marker = group.length === 1 ? this.pin(first) : this.groupPin(group);
        marker.addTo(this.pins);
        for (const item of group) this.remember(item.key, marker, item === first);
      }
    }
    this.fitPlanLabels();
  }

  // The plan's names (Floor.labels, Campus.labels), centred on their place, at a fixed size.
  drawLabels(labels, size) {
    this.planLabels = (labels || []).map((spec) => ({
      spec,
      marker: L.marker(this.at(size, spec.x, spec.y), {
        icon: L.divIcon({ className: "plan-label", html: label(spec.text), iconSize: null }),
        pane: "labels",
        interactive: false,
        keyboard: false,
      }).addTo(this.layer),
    }));
  }

  // Text that cannot shrink with the plan shows only where it can be read: inside its room
  // at this zoom, on no pin and no other name (earlier labels win). Others wait for a zoom.
  fitPlanLabels() {
    const scale = this.map.getZoomScale(this.map.getZoom(), 0); // px per plan unit
    const taken = [...this.canvas.querySelectorAll(".leaflet-marker-pane .pin, .building-pin span")].map((el) => el.getBoundingClientRect());
    for (const { spec, marker } of this.planLabels) {
      const text = marker.getElement()?.firstElementChild;
      if (!text) continue;
      const box = text.getBoundingClientRect();
      const fits = box.width > 0 && box.width <= (spec.width ?? Infinity) * scale && !taken.some((other) => overlaps(box, other));
      text.classList.toggle("off", !fits);
      if (fits) taken.push(box);
    }
  }

  ranked() {
    const rank = (item) => PRIORITY[item.kind === "door" ? this.doorState.get(item.thing.id) || "door" : "camera"];
    return [...this.items].sort((a, b) => rank(a) - rank(b));
  }

  pin(item) {
    if (item.kind === "camera") {
      const camera = item.thing;
      return L.marker(item.latLng, {
        icon: L.divIcon({ className: "pin camera-pin", html: "<span aria-hidden='true'>◉</span>", iconSize: [PIN, PIN] }),
        title: camera.name,
        alt: `Camera ${camera.name}`,
        zIndexOffset: Z.camera,
      })
        .bindTooltip(label(camera.name))
        .on("click", () => this.onCamera(camera));
    }
    const door = item.thing;
    const state = this.doorState.get(door.id) || "normal";
    const marker = L.marker(item.latLng, {
      icon: doorIcon(state),
      title: doorTitle(door.name, state),
      alt: `Door ${door.name}`,
      zIndexOffset: Z[state] ?? Z.door,
    })
      .bindTooltip(label(door.name))
      .on("click", () => this.openDoor(door.id));
    marker.doorName = door.name;
    return marker;
  }

  // Several pins too close to tell apart at this zoom: one pin saying how many, coloured by
  // the most urgent of them; a tap zooms in until they part (at the last zoom: a list).
  groupPin(group) {
    const states = group.map((item) => (item.kind === "door" ? this.doorState.get(item.thing.id) || "door" : "camera"));
    const top = states.reduce((a, b) => (PRIORITY[a] <= PRIORITY[b] ? a : b));
    const names = group.map((item) => item.thing.name);
    const kind = top === "camera" ? "camera-pin" : top === "door" ? "door-pin" : `door-pin door-${top}`;
    const [first] = group;
    const alarmed = first.kind === "door" && (top === "forced" || top === "held");
    // An alarmed door leads its group: a tap opens that door, whose sheet offers the rest.
    const html = alarmed ? `<span aria-hidden="true">${top === "forced" ? "⚠" : "⏳"}</span><b class="count">${group.length}</b>` : `<span aria-hidden="true">${group.length}</span>`;
    return L.marker(first.latLng, {
      icon: L.divIcon({ className: `pin group-pin ${kind}`, html, iconSize: [PIN, PIN] }),
      title: alarmed ? `${doorTitle(first.thing.name, top)} and ${group.length - 1} more` : `${group.length} pins: ${names.join(", ")}`,
      alt: `${group.length} pins`,
      zIndexOffset: Z[top] ?? 0,
    }).on("click", () => (alarmed ? this.openDoor(first.thing.id, group) : this.openGroup(group)));
  }

  openGroup(group) {
    const zoom = this.map.getZoom();
    if (zoom < this.map.getMaxZoom()) {
      const bounds = L.latLngBounds(group.map((item) => item.latLng));
      const fit = this.map.getBoundsZoom(bounds.pad(0.5));
      this.map.setView(bounds.getCenter(), Math.min(this.map.getMaxZoom(), Math.max(zoom + 1, fit)), { animate: false });
      return;
    }
    const choose = (item) => () => {
      dialog.close();
      if (item.kind === "camera") this.onCamera(item.thing);
      else this.openDoor(item.thing.id);
    };
    const dialog = sheet(
      "Pins here",
      h("ul.pin-list", {}, group.map((item) => h("li", {}, h("button", { type: "button", onclick: choose(item) }, `${item.kind === "door" ? "Door" : "Camera"}: ${item.thing.name}`)))),
    );
    this.container.append(dialog);
    dialog.showModal();
  }

  // A door's sheet: where it is, its state, its last events, its cameras, acknowledge.
  openDoor(doorId, group = null) {
    const found = this.find("door", doorId);
    if (!found) return;
    const { door, campus, building, floor } = found;
    const state = this.doorState.get(doorId) || "normal";
    const events = this.doorEvents.get(doorId) || [];
    const unacked = events.filter((e) => e.severity === "alarm" && !(e.acks || []).length);
    const cameras = (door.cameras || []).map((id) => this.camera(id)).filter(Boolean);
    const status = h("p.door-sheet-status", { role: "status" });
    const ack = unacked.length
      ? h("button.primary.ack", { type: "button", onclick: () => this.acknowledge(unacked, ack, status) }, unacked.length > 1 ? `Acknowledge ${unacked.length} alarms` : "Acknowledge")
      : null;
    const dialog = sheet(
      `Door ${door.name}`,
      h("p.where", {}, [campus.name, building.name, floor.name].join(" › ")),
      h(`p.door-state.state-${state}`, {}, STATE_WORDS[state] || state),
      ack,
      status,
      h("h3", {}, "Cameras"),
      cameras.length
        ? h(
            "div.door-cameras",
            { role: "group", "aria-label": "Its cameras" },
            cameras.length > 1 ? h("button.primary", { type: "button", onclick: () => (dialog.close(), this.onGrid(cameras.slice(0, 4).map((c) => c.id))) }, "Watch side by side") : null,
            cameras.map((camera) => h("button.camera", { type: "button", onclick: () => (dialog.close(), this.onCamera(camera)) }, "▶ ", camera.name)),
          )
        : h("p.empty", {}, "No camera of this door is open to you."),
      h("h3", {}, "Last events"),
      events.length
        ? h("ul.door-events", {}, events.map((e) => h("li", {}, h("strong", {}, KINDS[e.type] || e.type), ` · ${ago(e.occurred_at)}`, (e.acks || []).length ? " · acknowledged" : "")))
        : h("p.empty", {}, "None since this screen opened."),
    );
    if (group && group.length > 1)
      dialog.append(h("button", { type: "button", onclick: () => (dialog.close(), this.openGroup(group)) }, `${group.length - 1} more pins here: show them`));
    dialog.classList.add("door-sheet");
    dialog.dataset.door = String(doorId);
    this.container.append(dialog);
    dialog.showModal();
    return dialog;
  }

  async acknowledge(events, button, status) {
    button.disabled = true;
    button.textContent = "Acknowledging…";
    try {
      for (const event of events) {
        const updated = await api(`events/${event.id}/ack`, { method: "POST" });
        event.acks = updated.acks;
      }
      button.textContent = "Acknowledged";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      button.disabled = false;
      button.textContent = "Acknowledge";
      status.textContent = error.status === 0 ? "Not acknowledged: no connection. Try again." : `Not acknowledged: ${error.message}`;
    }
  }

  // Every event of a door the feed shows, so its sheet can list them (feed.js calls this).
  noteEvent(record) {
    const doorId = record.door?.id;
    if (doorId == null) return;
    const list = this.doorEvents.get(doorId) || [];
    if (list.some((e) => e.id === record.id)) return;
    list.push(record);
    list.sort((a, b) => (b.seq ?? 0) - (a.seq ?? 0));
    this.doorEvents.set(doorId, list.slice(0, RECENT));
  }

  camera(id) {
    for (const campus of this.tree)
      for (const building of campus.buildings)
        for (const floor of building.floors) {
          const camera = (floor.cameras || []).find((c) => c.id === id);
          if (camera) return camera;
        }
    return null;
  }

  find(kind, id) {
    for (const campus of this.tree)
      for (const building of campus.buildings)
        for (const floor of building.floors) {
          const thing = ((kind === "door" ? floor.doors : floor.cameras) || []).find((item) => item.id === id);
          if (thing) return { [kind]: thing, campus, building, floor };
        }
    return null;
  }

  // A pin asked for by "show on map" flashes for its whole animation, even when it is
  // drawn again meanwhile (a new floor render, a door state change, a zoom).
  remember(key, marker) {
    this.markers.set(key, marker);
    if (this.flashing?.key === key && Date.now() < this.flashing.until) marker.getElement()?.classList.add("flash");
  }

  // Back where the app was before a reload (a new release, say).
  restore(where) {
    const campus = where && this.tree.find((c) => c.id === where.campus);
    if (!campus) return;
    const building = campus.buildings.find((b) => b.id === where.building);
    if (!building) return this.showCampus(campus);
    this.showBuilding(building, building.floors.find((f) => f.id === where.floor));
  }

  // A door event arrived: its pin changes at once wherever it is drawn, and an alarmed door
  // comes out of any group, on top.
  setDoorState(doorId, state) {
    const before = this.doorState.get(doorId) || "normal";
    this.doorState.set(doorId, state);
    if (before !== state && this.items.some((item) => item.key === `door:${doorId}`)) this.redraw();
  }

  // "Map" from an alarm: the door's floor, zoomed until its pin stands alone, flashing.
  showDoor(doorId) {
    return this.reveal({ kind: "door", id: doorId });
  }

  reveal({ kind, id }) {
    const found = this.find(kind, id);
    if (!found) return false;
    const key = `${kind}:${id}`;
    this.flashing = { key, until: Date.now() + FLASH_MS };
    this.showBuilding(found.building, found.floor);
    const item = this.items.find((i) => i.key === key);
    if (!item) return true;
    // No animation: a tap right after the search must land on the pin, not on a moving map.
    let zoom = Math.max(this.map.getZoom(), this.wholeZoom ?? 0);
    while (zoom < this.map.getMaxZoom() && !this.standsAlone(item, zoom)) zoom += 0.5;
    this.map.setView(item.latLng, zoom, { animate: false });
    this.redraw();
    this.markers.get(key)?.openTooltip();
    return true;
  }

  standsAlone(item, zoom) {
    const groups = declutter(this.ranked(), (latLng) => this.map.project(latLng, zoom));
    return groups.some((group) => group.length === 1 && group[0] === item);
  }

  place(parts) {
    mount(
      this.crumbs,
      parts.map((part) => (part.go ? h("button.link", { onclick: part.go }, part.label) : h("strong", {}, part.label))),
    );
  }

  at(size, x, y) {
    return [size.height - y, x]; // plans count y from the top, Leaflet from the bottom
  }
}

function doorTitle(name, state) {
  return state === "normal" ? name : `${name} (${state})`;
}

function doorIcon(state) {
  const glyph = { forced: "⚠", held: "⏳", normal: "▮" }[state] || "▮";
  return L.divIcon({ className: `pin door-pin door-${state}`, html: `<span aria-hidden="true">${glyph}</span>`, iconSize: [PIN, PIN] });
}

// Groups of pins that would touch at this zoom. Items come most urgent first; each joins
// the first group whose anchor (its first member) is nearer than SPACING, else anchors a
// new one. Anchors are thus SPACING apart, so no two drawn pins overlap, and an alarmed
// door is always an anchor, drawn where it is. (Leaflet.markercluster draws a cluster at
// its members' mean, which can land on another pin, and would hide an alarmed door inside a
// cluster: this is the rule we need in 20 lines.)
export function declutter(items, toPixels) {
  const groups = [];
  for (const item of items) {
    const at = toPixels(item.latLng);
    const near = groups.find((g) => Math.abs(g.at.x - at.x) < SPACING && Math.abs(g.at.y - at.y) < SPACING);
    if (near) near.items.push(item);
    else groups.push({ at, items: [item] });
  }
  return groups.map((g) => g.items);
}

function legend() {
  const control = L.control({ position: "bottomleft" });
  control.onAdd = () =>
    h(
      "details.legend",
      {},
      h("summary", {}, "Legend"),
      h(
        "ul",
        {},
        h("li", {}, h("span.key.key-camera", { "aria-hidden": "true" }, "◉"), "Camera (tap: live)"),
        h("li", {}, h("span.key.key-door", { "aria-hidden": "true" }, "▮"), "Door (tap: details)"),
        h("li", {}, h("span.key.key-forced", { "aria-hidden": "true" }, "⚠"), "Door forced"),
        h("li", {}, h("span.key.key-held", { "aria-hidden": "true" }, "⏳"), "Door held open"),
        h("li", {}, h("span.key.key-group", { "aria-hidden": "true" }, "3"), "Pins close together (tap: zoom in)"),
      ),
    );
  return control;
}

function sheet(title, ...body) {
  const dialog = h(
    "dialog.sheet.map-sheet",
    { "aria-label": title },
    h("header.live-head", {}, h("h2", {}, title), h("button.close", { type: "button", onclick: () => dialog.close() }, "Close")),
    ...body,
  );
  dialog.addEventListener("close", () => dialog.remove());
  return dialog;
}

function overlaps(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function initials(name) {
  return name
    .split(/\s+/)
    .filter((word) => /^[A-Za-z0-9]/.test(word))
    .map((word) => word[0].toUpperCase())
    .join("");
}

function searchBox(tree, onPick) {
  const items = [];
  for (const campus of tree)
    for (const building of campus.buildings)
      for (const floor of building.floors) {
        for (const c of floor.cameras || []) items.push({ kind: "camera", id: c.id, name: c.name, where: building.name });
        for (const d of floor.doors || []) items.push({ kind: "door", id: d.id, name: d.name, where: building.name });
      }
  const list = h("ul.results", { id: "map-search-results", "aria-label": "Search results" });
  const input = h("input", {
    type: "search",
    placeholder: "Find a camera or door",
    "aria-label": "Find a camera or door",
    "aria-controls": "map-search-results",
    oninput: () => {
      const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      const hits = words.length ? items.filter((i) => words.every((w) => i.name.toLowerCase().includes(w))).slice(0, 8) : [];
      mount(
        list,
        hits.map((hit) =>
          h("li", {}, h("button.result", { onclick: () => { input.value = ""; mount(list); onPick(hit); } }, `${hit.kind === "door" ? "Door" : "Camera"}: ${hit.name}`, h("small", {}, ` · ${hit.where}`))),
        ),
      );
    },
  });
  return h("div.search", {}, input, list);
}

// Leaflet writes a string tooltip or icon as HTML; a name is text, whatever it holds.
function label(name) {
  return h("span", {}, name);
}
