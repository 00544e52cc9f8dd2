"use strict";
// Click a floor (or site) plan to set the x/y of the chosen camera, door or building, or
// drag any pin (which chooses its row). A row is chosen by a click anywhere in it.
// Plan coordinates: pixels of the plan image, from the top left, as the map tree serves them.
(function () {
  const SVG = "http://www.w3.org/2000/svg";

  function number(input) {
    const value = input ? parseFloat(input.value) : NaN;
    return Number.isFinite(value) ? value : null;
  }

  function byName(name) {
    return document.querySelector(`[name="${name}"]`);
  }

  // One target per set of inputs that a click fills in.
  function singleTarget() {
    return {
      x: byName("x"), y: byName("y"), heading: byName("heading"), fov: byName("field_of_view"),
      label: "", row: null,
    };
  }

  function rowTargets(spec) {
    const found = [];
    document.querySelectorAll(`input[name^="${spec.prefix}-"][name$="-${spec.x}"]`).forEach((x) => {
      const base = x.name.slice(0, -spec.x.length);
      if (base.includes("__prefix__")) return;
      const row = x.closest("tr");
      const cell = row && row.querySelector(".field-name");
      const input = cell && cell.querySelector("input");
      found.push({
        x,
        y: byName(base + spec.y),
        heading: spec.heading ? byName(base + spec.heading) : null,
        fov: spec.fov ? byName(base + spec.fov) : null,
        label: input ? input.value : cell ? cell.textContent.trim() : "",
        row,
      });
    });
    return found;
  }

  function svgElement(tag, attributes) {
    const element = document.createElementNS(SVG, tag);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, value));
    return element;
  }

  // A field-of-view cone: heading in degrees clockwise from the top of the plan.
  function cone(x, y, heading, fov, length) {
    const point = (angle) => {
      const radians = (angle * Math.PI) / 180;
      return [x + length * Math.sin(radians), y - length * Math.cos(radians)];
    };
    const [ax, ay] = point(heading - fov / 2);
    const [bx, by] = point(heading + fov / 2);
    const large = fov > 180 ? 1 : 0;
    return `M${x},${y} L${ax},${ay} A${length},${length} 0 ${large} 1 ${bx},${by} Z`;
  }

  function setUp(root) {
    const config = JSON.parse(root.dataset.config);
    const stage = root.querySelector(".plan-placement__stage");
    const image = root.querySelector(".plan-placement__image");
    const overlay = root.querySelector(".plan-placement__overlay");
    const empty = root.querySelector(".plan-placement__empty");
    const targets = config.prefixes ? config.prefixes.flatMap(rowTargets) : [singleTarget()];
    let active = targets[0] || null;
    let plan = config.plan || null;

    function draw() {
      overlay.replaceChildren();
      if (!plan) return;
      const size = Math.max(plan.width, plan.height);
      targets.forEach((target) => {
        const x = number(target.x);
        const y = number(target.y);
        if (x === null || y === null) return;
        const chosen = target === active;
        const group = svgElement("g", { class: chosen ? "is-active" : "" });
        const heading = number(target.heading);
        const fov = number(target.fov);
        if (heading !== null && fov !== null) {
          group.append(svgElement("path", { d: cone(x, y, heading, fov, size / 12), class: "cone" }));
        }
        group.append(svgElement("circle", { cx: x, cy: y, r: size / 120, class: "pin" }));
        // A finger-sized handle around the pin: what a drag starts on.
        const handle = svgElement("circle", { cx: x, cy: y, r: size / 45, class: "handle" });
        handle.addEventListener("pointerdown", (event) => startDrag(event, target));
        group.append(handle);
        if (target.label) {
          const text = svgElement("text", { x: x + size / 80, y: y, "font-size": size / 60 });
          text.textContent = target.label;
          group.append(text);
        }
        overlay.append(group);
      });
    }

    function show(newPlan) {
      plan = newPlan;
      stage.hidden = !plan;
      empty.hidden = Boolean(plan) || !config.floors;
      if (!plan) return;
      image.src = plan.url;
      image.style.aspectRatio = `${plan.width} / ${plan.height}`;
      overlay.setAttribute("viewBox", `0 0 ${plan.width} ${plan.height}`);
      draw();
    }

    function choose(target) {
      active = target;
      targets.forEach((t) => t.row && t.row.classList.toggle("plan-placement__chosen", t === target));
      draw();
    }

    function placeAt(target, event) {
      const box = overlay.getBoundingClientRect();
      const round = (value) => Math.round(value * 10) / 10;
      const clamp = (value, most) => Math.min(most, Math.max(0, value));
      target.x.value = round(clamp(((event.clientX - box.left) / box.width) * plan.width, plan.width));
      target.y.value = round(clamp(((event.clientY - box.top) / box.height) * plan.height, plan.height));
      target.x.dispatchEvent(new Event("change", { bubbles: true }));
    }

    let dragging = null;
    let dragged = false;
    function startDrag(event, target) {
      event.preventDefault();
      dragging = target;
      dragged = false;
      choose(target);
      overlay.setPointerCapture(event.pointerId);
    }

    overlay.addEventListener("pointermove", (event) => {
      if (!dragging) return;
      dragged = true;
      placeAt(dragging, event);
      draw();
    });

    overlay.addEventListener("pointerup", () => {
      dragging = null;
    });

    overlay.addEventListener("click", (event) => {
      if (dragged) {
        dragged = false; // the end of a drag, not a click that places
        return;
      }
      if (!plan || !active) return;
      placeAt(active, event);
      draw();
    });

    targets.forEach((target) => {
      if (target.row) target.row.addEventListener("click", () => choose(target));
      [target.x, target.y, target.heading, target.fov].forEach((input) => {
        if (!input) return;
        input.addEventListener("input", draw);
        input.addEventListener("focus", () => choose(target));
      });
    });

    if (config.floors) {
      const floorSelect = byName("floor");
      const buildingSelect = byName("building");
      const floorPlan = () => config.floors.find((f) => String(f.id) === floorSelect.value) || null;
      const limitFloors = () => {
        // Only the chosen building's floors make sense; the model rejects any other.
        const building = buildingSelect ? buildingSelect.value : "";
        const buildings = new Map(config.floors.map((f) => [String(f.id), String(f.building)]));
        Array.from(floorSelect.options).forEach((option) => {
          option.hidden = Boolean(option.value && building && buildings.get(option.value) !== building);
        });
      };
      if (floorSelect) {
        floorSelect.addEventListener("change", () => show(floorPlan()));
        if (buildingSelect) buildingSelect.addEventListener("change", limitFloors);
        limitFloors();
        show(floorPlan());
      }
    } else {
      show(plan);
      if (active) choose(active);
    }
  }

  function start() {
    document.querySelectorAll(".plan-placement").forEach(setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
