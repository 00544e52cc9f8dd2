// The offline banner: shown while any screen shows data the service worker served from its
// cache, or while the browser says it has no network, with the age of the oldest such data.
import { ago, h } from "./dom.js";

const stale = new Map(); // API path -> when its cached answer was fetched
const banner = h("p.offline-banner", { role: "status", hidden: true });

// A fresh answer means the link is back: the screens refresh their data soon enough.
window.addEventListener("responder:data", ({ detail }) => {
  if (detail.cachedAt) stale.set(detail.path, detail.cachedAt);
  else stale.clear();
  render();
});
window.addEventListener("online", render);
window.addEventListener("offline", render);
setInterval(render, 30000);

export function offlineBanner() {
  render();
  return banner;
}

function render() {
  const oldest = [...stale.values()].sort()[0];
  banner.hidden = !oldest && navigator.onLine;
  if (banner.hidden) return;
  banner.textContent = oldest
    ? `Offline: showing saved data from ${ago(oldest)}.`
    : "Offline: no connection to the server.";
}
