// The campus map: site plan → building → floor plan, with camera and door markers.
import L from "leaflet";
import { h, mount } from "./dom.js";

const CONE_REACH = 0.08; // of the plan's width
const FLASH_MS = 6000; // styles.css: .flash runs six 1 s cycles

export class CampusMap {
  constructor(container, { tree, onCamera, onPlace }) {
    this.tree = tree;
    this.onCamera = onCamera;
    this.onPlace = onPlace || (() => {});
    this.doorState = new Map(); // door id -> "forced" | "held"
    this.markers = new Map(); // "door:1" -> marker
    this.crumbs = h("nav.crumbs", { "aria-label": "Where on the map" });
    this.floors = h("div.floors", { role: "group", "aria-label": "Floors" });
    this.search = searchBox(tree, (hit) => this.reveal(hit));
    this.canvas = h("div.map-canvas", { role: "region", "aria-label": "Plan" });
    this.container = container;
    mount(container, this.search, this.crumbs, this.floors, this.canvas);
    this.map = L.map(this.canvas, { crs: L.CRS.Simple, minZoom: -3, maxZoom: 3, zoomSnap: 0.25, attributionControl: false });
    this.layer = L.layerGroup().addTo(this.map);
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
    for (const building of campus.buildings) {
      if (building.site_x == null) continue;
      L.marker(this.at(size, building.site_x, building.site_y), {
        icon: L.divIcon({ className: "building-pin", html: label(building.name), iconSize: null }),
        keyboard: true,
        title: building.name,
      })
        .on("click", () => this.showBuilding(building))
        .addTo(this.layer);
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
    for (const camera of floor.cameras || []) this.drawCamera(camera, size);
    for (const door of floor.doors || []) this.drawDoor(door, size);
  }

  drawPlan(url, size) {
    if (size && this.container.classList.contains("district")) {
      this.container.classList.remove("district");
      this.map.invalidateSize({ animate: false });
    }
    this.layer.clearLayers();
    this.markers.clear();
    if (!size) return;
    const bounds = [[0, 0], [size.height, size.width]];
    if (url) L.imageOverlay(url, bounds, { alt: "Plan" }).addTo(this.layer);
    this.map.fitBounds(bounds, { animate: false });
    this.size = size;
  }

  drawCamera(camera, size) {
    const apex = this.at(size, camera.x, camera.y);
    const reach = size.width * CONE_REACH;
    const half = (camera.field_of_view || 90) / 2;
    const cone = [apex];
    for (let a = -half; a <= half; a += Math.max(5, half / 6)) {
      const rad = ((camera.heading + a) * Math.PI) / 180;
      cone.push([apex[0] + Math.cos(rad) * reach, apex[1] + Math.sin(rad) * reach]);
    }
    L.polygon(cone, { className: "fov", interactive: false }).addTo(this.layer);
    const marker = L.marker(apex, {
      icon: L.divIcon({ className: "camera-pin", html: "<span aria-hidden='true'>◉</span>", iconSize: [44, 44] }),
      title: camera.name,
      alt: `Camera ${camera.name}`,
    })
      .bindTooltip(label(camera.name))
      .on("click", () => this.onCamera(camera))
      .addTo(this.layer);
    this.remember(`camera:${camera.id}`, marker);
  }

  drawDoor(door, size) {
    const state = this.doorState.get(door.id) || "normal";
    const marker = L.marker(this.at(size, door.x, door.y), {
      icon: doorIcon(state),
      title: doorTitle(door.name, state),
      alt: `Door ${door.name}`,
    })
      .bindTooltip(label(door.name))
      .addTo(this.layer);
    marker.doorName = door.name;
    this.remember(`door:${door.id}`, marker);
  }

  // A pin asked for by "show on map" flashes for its whole animation, even when it is
  // drawn again meanwhile (a new floor render, a door state change: Leaflet resets classes).
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

  // A door event arrived: its pin changes at once wherever it is drawn.
  setDoorState(doorId, state) {
    this.doorState.set(doorId, state);
    const marker = this.markers.get(`door:${doorId}`);
    if (!marker) return;
    marker.setIcon(doorIcon(state));
    // The name a screen reader hears says the state too, not the colour alone.
    marker.getElement()?.setAttribute("title", doorTitle(marker.doorName, state));
    this.remember(`door:${doorId}`, marker);
  }

  reveal({ kind, id }) {
    for (const campus of this.tree)
      for (const building of campus.buildings)
        for (const floor of building.floors) {
          const items = kind === "door" ? floor.doors : floor.cameras;
          if (!(items || []).some((item) => item.id === id)) continue;
          this.flashing = { key: `${kind}:${id}`, until: Date.now() + FLASH_MS };
          this.showBuilding(building, floor);
          const marker = this.markers.get(`${kind}:${id}`);
          if (marker) {
            // No animation: a tap right after the search must land on the pin, not on a moving map.
            this.map.setView(marker.getLatLng(), Math.max(this.map.getZoom(), 0), { animate: false });
            marker.openTooltip();
          }
          return true;
        }
    return false;
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
  return L.divIcon({ className: `door-pin door-${state}`, html: `<span aria-hidden="true">${glyph}</span>`, iconSize: [44, 44] });
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
