// The app's entry: who is signed in, then the map tree, then the shell; back to sign-in
// whenever the session ends.
import { api, ApiError, whenSessionLost } from "./api.js";
import { h, mount } from "./dom.js";
import { keepAlive } from "./session.js";
import { startShell } from "./shell.js";
import { signInScreen } from "./signin.js";
import { cachePlans, forgetUserData, registerWorker, updateBanner } from "./updates.js";

const root = document.getElementById("app");
const SIGNED_IN = "responder.signedIn"; // tells "your session ended" from a first visit
let shell = null;
let pendingEvent = takeEventFromUrl();

whenSessionLost((reason) => signedOut(reason));
window.addEventListener("online", refresh);
registerWorker({
  isBusy: () => Boolean(shell && shell.busy()),
  onOpenEvent: openEvent,
  onOpenIncident: () => shell?.ctx.show("incidents"),
  onControlled: prime,
});
keepAlive();
boot();

async function boot() {
  let me;
  try {
    me = await api("auth/me");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 0) return trouble("No connection to the server, and this device has no saved copy yet.");
    if (error.status !== 401 && error.status !== 403) return trouble(error.message);
    const notice = localStorage.getItem(SIGNED_IN) ? "Your session has ended. Sign in again." : "";
    localStorage.removeItem(SIGNED_IN);
    return signIn(notice);
  }
  start(me);
}

function signIn(notice) {
  signInScreen(root, { notice, onSignedIn: (me) => start(me, { fresh: true }) });
}

async function start(me, { fresh = false } = {}) {
  localStorage.setItem(SIGNED_IN, "1");
  if (fresh) api("auth/me").catch(() => {}); // the service worker keeps it for an offline start
  mount(root, h("p.loading", {}, "Loading the maps…"));
  let tree;
  try {
    tree = await api("campuses/");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 401 || error.status === 403) return; // api.js's session check signs out
    return trouble(error.status === 0 ? "No connection to the server, and no saved maps yet." : error.message);
  }
  cachePlans(tree);
  shell = startShell(root, { me, tree, onSignOut: signOut, signedOut, updateBanner });
  if (pendingEvent !== null) openEvent(pendingEvent);
}

// Back in coverage: fresh answers clear the offline banner (or find the session ended).
function refresh() {
  if (!shell) return;
  api("campuses/").then(cachePlans, () => {}); // a refusal is checked by api.js
}

// Fetched again through the service worker, so an offline start has them.
function prime() {
  if (!shell) return;
  api("auth/me").catch(() => {});
  refresh();
}

function openEvent(id) {
  if (!shell) {
    pendingEvent = id; // shown once signed in
    return;
  }
  pendingEvent = null;
  shell.ctx.show("feed", { event: id });
}

async function signOut() {
  try {
    await api("auth/logout", { method: "POST" });
  } catch {
    // Offline: the server ends the session on its idle clock; this device forgets it now.
  }
  signedOut("You have signed out.");
}

async function signedOut(reason) {
  if (!shell && root.querySelector("form.signin")) return;
  shell?.stop();
  shell = null;
  localStorage.removeItem(SIGNED_IN);
  await forgetUserData();
  signIn(reason);
}

function trouble(message) {
  mount(
    root,
    h(
      "main.center",
      { "aria-label": "No connection" },
      h(
        "section.card",
        {},
        h("h1", {}, "Responder"),
        h("p", { role: "alert" }, message),
        h("button.primary", { type: "button", onclick: boot }, "Try again"),
      ),
    ),
  );
}

// Notifications open /?event=<id>; the address goes back to / so a reload does not repeat it.
function takeEventFromUrl() {
  const params = new URLSearchParams(location.search);
  const id = params.get("event");
  if (id === null) return null;
  history.replaceState(null, "", "/");
  return /^\d+$/.test(id) ? Number(id) : null;
}
