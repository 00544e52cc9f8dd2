// The service worker. build.mjs fills in this release's version and precache list, and
// appends sw-push.js (web push) after it.
//  - The shell (index, JS, CSS, icons, manifest): precached per release, served from cache.
//  - Floor and site plans (/media/, content-hashed names): cache first, fetched ahead by the page.
//  - API GETs: network first; offline, the last answer, marked X-Responder-Cached-At, kept
//    per user (the page names whose answers it asks for) and dropped when the page says forget.
//  - Never cached: events and the socket (an alarm must never be stale), live video
//    (playlists, segments) and snapshots (a still that looks live would mislead), who is
//    signed in (auth/): a cached "yes" would outlive the session, and evidence (a build's
//    progress, short-lived download links, zips of gigabytes).
const VERSION = "__VERSION__";
const PRECACHE = __PRECACHE__;
const SHELL_CACHE = `responder-shell-${VERSION}`;
const API_CACHE = "responder-api-"; // + the user's id
const PLAN_CACHE = "responder-plans";
const NETWORK_PATIENCE = 10000; // ms before a weak link gives way to the cached answer
const NEVER_CACHED = [
  /^\/ws\//,
  /^\/api\/v1\/events\//,
  /^\/api\/v1\/cameras\/\d+\/(live|snapshot)/,
  /^\/api\/v1\/(auth|push)\//,
  /^\/api\/v1\/evidence\//, // a build's progress and its download links (minutes) are only true now
  /\.(m3u8|ts|m4s|mp4)$/,
];
// Bumped at each forget: an answer that was on its way then is not stored after it.
let generation = 0;

self.addEventListener("install", (event) => {
  // A new release waits until the page says now (see updates.js): no reload under a user.
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(PRECACHE)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => keys.filter((key) => key.startsWith("responder-shell-") && key !== SHELL_CACHE))
      .then((old) => Promise.all(old.map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "skip-waiting") self.skipWaiting();
  if (data.type === "cache-plans") event.waitUntil(cachePlans(data.urls || []));
  if (data.type === "forget") event.waitUntil(forget());
});

async function forget() {
  generation += 1;
  const names = await caches.keys();
  await Promise.all(names.filter((name) => !name.startsWith("responder-shell-")).map((name) => caches.delete(name)));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (NEVER_CACHED.some((pattern) => pattern.test(url.pathname))) return;
  if (request.mode === "navigate" && url.pathname === "/") return event.respondWith(shell(request));
  if (url.pathname.startsWith("/api/v1/")) return event.respondWith(networkFirst(event));
  if (url.pathname.startsWith("/media/")) return event.respondWith(planFirst(request));
  if (url.pathname.startsWith("/static/") || url.pathname === "/manifest.webmanifest")
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
});

// The shell of this release, whatever the query (/?event=42 from a notification).
async function shell(request) {
  const cache = await caches.open(SHELL_CACHE);
  return (await cache.match("/", { ignoreSearch: true })) || fetch(request);
}

async function networkFirst(event) {
  const request = event.request;
  const user = request.headers.get("X-Responder-User");
  if (!user || !/^[\w.@+-]{1,150}$/.test(user)) return fetch(request); // nobody's: never kept
  const cacheName = API_CACHE + user;
  const asked = generation;
  const network = fetch(request).then(async (response) => {
    if (response.status === 200 && asked === generation) {
      const copy = await stamped(response.clone());
      if (asked === generation) await (await caches.open(cacheName)).put(request, copy);
    }
    return response;
  });
  event.waitUntil(network.catch(() => {})); // the cache is refreshed even after a cached answer
  // The API varies on Cookie, which a service worker never sees; the cache is this user's.
  const cached = () => caches.match(request, { cacheName, ignoreVary: true });
  try {
    return await Promise.race([network, patience().then(async () => (await cached()) || network)]);
  } catch (error) {
    return (await cached()) || Promise.reject(error);
  }
}

function patience() {
  return new Promise((resolve) => setTimeout(resolve, NETWORK_PATIENCE));
}

async function stamped(response) {
  const headers = new Headers(response.headers);
  headers.set("X-Responder-Cached-At", new Date().toISOString());
  return new Response(await response.blob(), { status: response.status, headers });
}

async function planFirst(request) {
  const cache = await caches.open(PLAN_CACHE);
  const hit = await cache.match(request);
  if (hit) return hit;
  const asked = generation;
  const response = await fetch(request);
  if (response.status === 200 && asked === generation) await cache.put(request, response.clone());
  return response;
}

// The tree names every plan this user may see; plans it no longer names are dropped.
async function cachePlans(urls) {
  const asked = generation;
  const cache = await caches.open(PLAN_CACHE);
  const wanted = new Set(urls.map((url) => new URL(url, self.location.origin).href));
  for (const request of await cache.keys()) if (!wanted.has(request.url)) await cache.delete(request);
  for (const url of wanted) {
    if (await cache.match(url)) continue;
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (asked !== generation) return; // signed out meanwhile
      if (response.status === 200) await cache.put(url, response);
    } catch {
      return; // offline: the next tree load tries again
    }
  }
}
