// The service worker from the page's side: registration, the "new version" prompt, and the
// caches only the page knows how to fill (floor plans of this user's tree) or must empty
// (this user's API answers, at sign-out).
import { h } from "./dom.js";

const API_CACHE = "responder-api";

export const updateBanner = h("p.update-banner", { role: "status", hidden: true });

// A waiting release takes over only when told: at a click on "Reload", or at a safe moment
// (the app hidden and no video open), so a call in progress is never cut by a reload.
export function registerWorker({ isBusy, onOpenEvent, onOpenIncident, onControlled }) {
  if (!("serviceWorker" in navigator)) return;
  let applying = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (applying) location.reload();
    else onControlled(); // the first worker: what the page fetched before it is not cached
  });
  navigator.serviceWorker.addEventListener("message", ({ data }) => {
    if (data && data.type === "open-event") onOpenEvent(data.id);
    if (data && data.type === "open-incident") onOpenIncident(data.id);
  });
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).then((registration) => {
    const offer = (worker) => {
      const apply = () => {
        applying = true;
        worker.postMessage({ type: "skip-waiting" });
      };
      updateBanner.replaceChildren(
        "A new version of Responder is ready. ",
        h("button.primary", { type: "button", onclick: apply }, "Reload"),
      );
      updateBanner.hidden = false;
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "hidden" && !isBusy()) apply();
      });
    };
    const watch = (worker) =>
      worker.addEventListener("statechange", () => {
        if (worker.state === "installed" && navigator.serviceWorker.controller) offer(worker);
      });
    if (registration.waiting && navigator.serviceWorker.controller) offer(registration.waiting);
    if (registration.installing) watch(registration.installing);
    registration.addEventListener("updatefound", () => watch(registration.installing));
    // A tablet may keep the app open for a whole shift: look for a release now and then.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") registration.update().catch(() => {});
    });
    setInterval(() => registration.update().catch(() => {}), 30 * 60 * 1000);
  });
}

// Every plan of the tree, fetched ahead so any floor opens in a radio dead zone.
export function cachePlans(tree) {
  if (!("serviceWorker" in navigator)) return;
  const urls = [];
  for (const campus of tree) {
    if (campus.site_plan) urls.push(campus.site_plan);
    for (const building of campus.buildings)
      for (const floor of building.floors) if (floor.plan) urls.push(floor.plan);
  }
  navigator.serviceWorker.ready.then((registration) =>
    registration.active?.postMessage({ type: "cache-plans", urls }),
  );
}

// The cached API answers are this user's data: a shared tablet must not keep them.
export async function forgetUserData() {
  if ("caches" in window) await caches.delete(API_CACHE);
}
