// What this device keeps of the signed-in user, and forgetting all of it. A tablet is shared:
// at sign-out, at a session that ended, and at the sign-in screen nothing of the last user
// may stay behind, not a cached answer, a saved feed, nor a push subscription that rings.
//
// Offline, the app starts on its saved data only while the server's idle clock could still
// hold the session: the last answer that renewed it is less than the idle limit old.
import { pushForget } from "./push.js";

const RECORD = "responder.session"; // {me, confirmedAt}
const SHELL_CACHE = /^responder-shell-/; // the app's own code: nobody's data
// Answers that prove nothing of a session: anyone gets them.
const PUBLIC = new Set(["auth/login", "auth/logout", "push/vapid-key"]);

// The server's SESSION_IDLE_MINUTES, written into the shell (responder/frontend.py).
export function idleLimit() {
  const seconds = Number(document.querySelector("meta[name=responder-session-idle]")?.content);
  return (seconds > 0 ? seconds : 30 * 60) * 1000;
}

// A fresh answer renewed the session on the server: its idle clock starts again now.
window.addEventListener("responder:data", ({ detail }) => {
  if (!detail.cachedAt && !PUBLIC.has(detail.path)) confirmed();
});

export function remember(me, { fresh }) {
  const held = kept();
  const confirmedAt = fresh || !held ? Date.now() : held.confirmedAt;
  localStorage.setItem(RECORD, JSON.stringify({ me, confirmedAt }));
}

function confirmed() {
  const held = kept();
  if (held) localStorage.setItem(RECORD, JSON.stringify({ ...held, confirmedAt: Date.now() }));
}

export function kept() {
  try {
    const held = JSON.parse(localStorage.getItem(RECORD) || "null");
    return held && held.me && Number.isFinite(held.confirmedAt) ? held : null;
  } catch {
    return null;
  }
}

// The kept session, if the server may still hold it: offline data is shown only then.
export function trusted() {
  const held = kept();
  return held && Date.now() - held.confirmedAt < idleLimit() ? held : null;
}

let forgetting = null;

// Every trace of the user on this device: storage, caches, databases, the push subscription.
export function forgetDevice() {
  forgetting ||= forgetAll().finally(() => (forgetting = null));
  return forgetting;
}

// The device's own settings, not the user's traces: they stay (the theme of a dark patrol car).
const DEVICE_SETTINGS = ["responder.theme"];

async function forgetAll() {
  const settings = DEVICE_SETTINGS.map((key) => [key, localStorage.getItem(key)]);
  localStorage.clear();
  for (const [key, value] of settings) if (value !== null) localStorage.setItem(key, value);
  sessionStorage.clear();
  await Promise.all([pushForget().catch(() => {}), dropCaches(), dropDatabases()]);
}

async function dropCaches() {
  if (!("caches" in window)) return;
  // The worker also drops what a request still in flight would store after this.
  const worker = navigator.serviceWorker?.controller;
  worker?.postMessage({ type: "forget" });
  const names = await caches.keys();
  await Promise.all(names.filter((name) => !SHELL_CACHE.test(name)).map((name) => caches.delete(name)));
}

async function dropDatabases() {
  if (!window.indexedDB?.databases) return;
  const databases = await indexedDB.databases();
  await Promise.all(
    databases.map(
      ({ name }) =>
        new Promise((resolve) => {
          const request = indexedDB.deleteDatabase(name);
          request.onsuccess = request.onerror = request.onblocked = () => resolve();
        }),
    ),
  );
}
