// Web push (appended to sw.js by build.mjs). Messages (responder/push/services.py):
//   {type: "event", seq, event, title, camera?}, {type: "summary", door, count, latest, title},
//   {type: "incident", incident, title}.
// One notification per door (its tag): a newer alarm at the same door replaces the older.
const SEVERITY_WORDS = { alarm: "Alarm", warning: "Warning", notice: "Notice", info: "Info" };

self.addEventListener("push", (event) => {
  let message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch {
    message = { title: event.data ? event.data.text() : "Responder" };
  }
  event.waitUntil(self.registration.showNotification(message.title || "Responder", pushOptions(message)));
});

function pushOptions(message) {
  const options = { icon: "/static/icon-192.png", badge: "/static/icon-192.png", timestamp: Date.now() };
  if (message.type === "event") {
    const alarm = message.event || {};
    const door = alarm.door;
    const word = SEVERITY_WORDS[alarm.severity] || "Event";
    return {
      ...options,
      body: `${word}${door ? ` at ${door.name}` : ""}. Tap to open.`,
      tag: `door-${door ? door.id : `event-${alarm.id}`}`,
      renotify: true,
      requireInteraction: alarm.severity === "alarm",
      timestamp: alarm.occurred_at ? Date.parse(alarm.occurred_at) : options.timestamp,
      data: { id: alarm.id, seq: message.seq, camera: message.camera ?? null },
    };
  }
  if (message.type === "summary") {
    return { ...options, body: "Tap to open the latest.", tag: `door-${message.door}`, renotify: true, data: { id: message.latest } };
  }
  if (message.type === "incident") {
    const incident = message.incident || {};
    return { ...options, body: "An incident that concerns you. Tap to open.", tag: `incident-${incident.id}`, data: { incident: incident.id } };
  }
  return { ...options, data: {} };
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const data = event.notification.data || {};
  event.waitUntil(openFromNotification(data));
});

async function openFromNotification(data) {
  const message = data.id != null ? { type: "open-event", id: data.id } : { type: "open-incident", id: data.incident };
  const url = data.id != null ? `/?event=${data.id}` : "/";
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
  if (open) {
    await open.focus();
    open.postMessage(message);
    return;
  }
  await self.clients.openWindow(url);
}
