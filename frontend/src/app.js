// The app's entry: who is signed in, then the map tree, then the shell; back to sign-in
// whenever the session ends.
import { answersFor, api, ApiError, whenSessionLost } from "./api.js";
import { forgetDevice, kept, remember, trusted } from "./device.js";
import { h, mount } from "./dom.js";
import { pushForget } from "./push.js";
import { keepAlive } from "./session.js";
import { startShell } from "./shell.js";
import { signInScreen } from "./signin.js";
import { themeApply } from "./theme.js";
import { cachePlans, registerWorker, updateBanner } from "./updates.js";

const root = document.getElementById("app");
const ENDED = "Your session has ended. Sign in again.";
// Why the sign-in shows, until someone signs in. Forgetting the device erases kept(), the
// sign that a session was here, before the notice is drawn: a reload in between, or boot's
// own refusal heard after another check's, would show the sign-in without saying why.
const ENDED_KEY = "responder.ended";
let shell = null;
let leaving = null;
let pendingEvent = takeEventFromUrl();

themeApply(); // before anything is drawn: no flash of the other theme

whenSessionLost((reason) => signedOut(reason));
window.addEventListener("online", refresh);
window.addEventListener("responder:link-up", refresh);
registerWorker({
  isBusy: () => Boolean(shell && shell.busy()),
  onOpenEvent: openEvent,
  onOpenIncident: () => shell?.ctx.show("incidents"),
  onControlled: prime,
});
keepAlive();
setInterval(expire, 30000);
boot();

async function boot() {
  let me;
  try {
    me = await api("auth/me");
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.status === 0) return offlineStart();
    if (error.status !== 401 && error.status !== 403) return trouble(error.message);
    return signIn(kept() || localStorage.getItem(ENDED_KEY) ? ENDED : "");
  }
  start(me, { fresh: true });
}

// No network: the saved data of a session the server may still hold, shown with its age;
// past the idle limit that session is gone, and so is what it saved here.
function offlineStart() {
  const held = trusted();
  if (held) return start(held.me, { fresh: false });
  if (kept()) return signIn(ENDED);
  trouble("No connection to the server, and this device has no saved copy yet.");
}

// The sign-in screen never shows over the last user's traces.
async function signIn(notice) {
  answersFor(null);
  const forgotten = forgetDevice(); // storage is cleared at once, the caches later
  if (notice === ENDED) localStorage.setItem(ENDED_KEY, "1");
  else localStorage.removeItem(ENDED_KEY);
  await forgotten;
  signInScreen(root, { notice, onSignedIn: (me) => start(me, { fresh: true }) });
}

async function start(me, { fresh }) {
  localStorage.removeItem(ENDED_KEY);
  answersFor(me.user?.id ?? me.user?.username);
  remember(me, { fresh });
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
  refresh();
}

// The server ends a session idle for its limit on its own clock; a device that heard nothing
// from it for that long (out of coverage, or left alone) ends it here too.
function expire() {
  if (shell && !trusted()) signedOut(ENDED);
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
  // While the session stands: the server's DELETE of the subscription needs it.
  await pushForget({ tellServer: true }).catch(() => {});
  // The feed's socket closes with 4401 the moment the server ends the session: stop it
  // first, so what the user reads is this sign-out, not "your session has ended".
  shell?.stop();
  shell = null;
  try {
    await api("auth/logout", { method: "POST" });
  } catch {
    // Offline: the server ends the session on its idle clock; this device forgets it now.
  }
  signedOut("You have signed out.");
}

function signedOut(reason) {
  if (leaving || (!shell && root.querySelector("form.signin"))) return leaving;
  shell?.stop();
  shell = null;
  leaving = signIn(reason).finally(() => (leaving = null));
  return leaving;
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
