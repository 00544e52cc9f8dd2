// Web push for this device: subscribe with the server's VAPID key, register the
// subscription with the API, or take it back. sw-push.js shows what arrives.
import { api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";

const NOT_SET_UP = "Notifications are not set up on this server. District IT can turn them on.";

export function notificationsPanel(ctx, panel) {
  const status = h("p.push-status", { role: "status" }, "Checking this device…");
  const actions = h("div.actions");
  mount(
    panel,
    h("h2", {}, "Notifications"),
    h("p", {}, "Alarms in your area reach this device even when Responder is closed. Tapping one opens the alarm."),
    status,
    actions,
  );

  const supported = "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  const say = (text, ...buttons) => {
    status.textContent = text;
    mount(actions, buttons);
  };

  async function show() {
    if (!supported) {
      // iOS offers web push only to an app added to the home screen.
      return say("This browser cannot receive notifications here. On an iPhone or iPad, add Responder to the home screen first.");
    }
    if (Notification.permission === "denied") {
      return say("Notifications are blocked for this site. Allow them in the browser's site settings, then come back.");
    }
    const subscription = await current();
    if (subscription) {
      // Registered again at each start: the server may have dropped it. A 409 means the
      // endpoint belongs to another account (a shared device): this one starts afresh.
      const owner = await register(subscription).then(() => "mine", (error) => error instanceof ApiError && error.status === 409 ? "theirs" : "unknown");
      if (owner === "theirs") {
        await subscription.unsubscribe();
        return show();
      }
      return say("This device receives alarm notifications.", button("Turn off notifications", turnOff));
    }
    // A server without a push key (404) offers nothing to turn on: said plainly, no button.
    if ((await vapidKey().catch(() => "")) === null) return say(NOT_SET_UP);
    say("This device does not receive notifications.", button("Turn on notifications", turnOn, "primary"));
  }

  async function turnOn() {
    try {
      const key = await vapidKey();
      if (!key) return say(NOT_SET_UP);
      if ((await Notification.requestPermission()) !== "granted") return show();
      const registration = await navigator.serviceWorker.ready;
      const subscription = await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: bytesOf(key),
      });
      await register(subscription);
    } catch (error) {
      return say(trouble(error), button("Try again", turnOn, "primary"));
    }
    show();
  }

  async function turnOff() {
    try {
      const subscription = await current();
      if (subscription) {
        await unregister(subscription);
        await subscription.unsubscribe();
      }
    } catch (error) {
      return say(trouble(error), button("Try again", turnOff));
    }
    show();
  }

  show().catch((error) => say(trouble(error)));
  return {};
}

// Signing out, or a session that ended: this device stops ringing with that user's alarms.
// The server forgets the subscription only while the session stands (at sign-out); the
// browser's unsubscribe ends it at the push service either way.
export async function pushForget({ tellServer = false } = {}) {
  const subscription = await current();
  if (!subscription) return;
  if (tellServer) await unregister(subscription).catch(() => {}); // offline: the unsubscribe still ends it
  await subscription.unsubscribe();
}

async function current() {
  if (!("serviceWorker" in navigator)) return null;
  const registration = await navigator.serviceWorker.getRegistration();
  return registration?.pushManager ? registration.pushManager.getSubscription() : null;
}

function unregister(subscription) {
  return api("push/subscriptions", { method: "DELETE", body: { endpoint: subscription.endpoint } }).catch((error) => {
    if (!(error instanceof ApiError) || error.status !== 404) throw error; // 404: already gone
  });
}

function register(subscription) {
  return api("push/subscriptions", { method: "POST", body: subscription.toJSON() });
}

async function vapidKey() {
  try {
    return (await api("push/vapid-key")).key;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return null;
    throw error;
  }
}

function button(label, onclick, kind = "") {
  return h(`button${kind ? `.${kind}` : ""}`, { type: "button", onclick }, label);
}

// The browser's own text ("Registration failed - push service error") means nothing to an
// officer: each kind of refusal said plainly, with what to do next.
const BROWSER_TROUBLE = {
  NotAllowedError: "Notifications are not allowed for Responder on this device. Allow them in the browser's site settings, then try again.",
  AbortError: "The browser could not reach its notification service. Check the connection and try again in a moment.",
  InvalidStateError: "The browser is busy with another notification request. Close other Responder tabs and try again.",
  NotSupportedError: "This browser cannot receive notifications here. On an iPhone or iPad, add Responder to the home screen first.",
  InvalidAccessError: "The server's notification key changed. Reload Responder and try again.",
};

function trouble(error) {
  if (error instanceof ApiError) return error.status === 0 ? "No connection to the server. Try again once back online." : error.message;
  return BROWSER_TROUBLE[error?.name] || "Notifications could not be turned on in this browser. Try again, or ask district IT.";
}

// The VAPID key comes base64url-encoded; the Push API wants its bytes.
function bytesOf(base64url) {
  const base64 = base64url.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64url.length / 4) * 4, "=");
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}
