// Open incidents in the user's scope: their timeline, their cameras, and the emergency
// access they grant. Reloaded when the feed relays an incident frame or an event that
// belongs to an incident ("responder:incident" on window), and now and then while shown.
import { api, ApiError } from "./api.js";
import { ago, h, mount } from "./dom.js";
import { EVENT_KINDS } from "./words.js";

const REFRESH_EVERY = 60000;
const CAPABILITIES = { live: "live video", recorded: "recordings", export: "clip export", alarms: "door alarms" };
const ENTRY_LABELS = {
  opened: "Opened",
  closed: "Closed",
  event: "Event",
  note: "Note",
  assigned: "Responders assigned",
  grant_started: "Emergency access started",
  grant_ended: "Emergency access ended",
};

export function incidentsPanel(ctx, panel) {
  const status = h("p.feed-note.incidents-status", { role: "status" });
  const list = h("div.incidents", { "aria-live": "polite" });
  const grants = h("div.grants");
  const runs = (ctx.me.capabilities || []).includes("incidents");
  mount(
    panel,
    h("h2", {}, "Incidents"),
    status,
    runs ? openForm(ctx, () => refresh()) : null,
    list,
    h("section.grant-list", { "aria-labelledby": "grants-heading" }, h("h3", { id: "grants-heading" }, "Your emergency access"), grants),
  );
  let running = null;
  let again = false;

  async function refresh() {
    if (running) {
      again = true; // one more pass after this one: a frame came in meanwhile
      return running;
    }
    running = load().finally(() => {
      running = null;
      if (again) {
        again = false;
        refresh();
      }
    });
    return running;
  }

  async function load() {
    try {
      const [open, held] = await Promise.all([api("incidents/"), api("emergency-grants")]);
      const details = await Promise.all(open.map((incident) => api(`incidents/${incident.id}/`)));
      const typing = notesBeingWritten(list);
      mount(list, details.length ? details.map((incident) => card(ctx, incident, held, refresh, runs)) : h("p.empty", {}, "No open incidents."));
      typing.restore(list);
      ctx.badge("incidents", details.length);
      mount(grants, held.length ? h("ul.plain", {}, held.map((grant) => grantLine(ctx, grant))) : h("p.empty", {}, "None in the last 30 days."));
      status.textContent = open.cachedAt ? `Offline: as of ${ago(open.cachedAt)}.` : "";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status.textContent = error.status === 0 ? "No connection: incidents could not be loaded." : error.message;
    }
  }

  const onIncident = () => refresh();
  window.addEventListener("responder:incident", onIncident);
  // Opening the tab shows what is true now, not what was true at the last refresh.
  const screen = panel.closest("section.screen") || panel;
  const shown = new MutationObserver(() => {
    if (!screen.hidden) refresh();
  });
  shown.observe(screen, { attributes: true, attributeFilter: ["hidden"] });
  const timer = setInterval(() => {
    if (!panel.closest("[hidden]") && document.visibilityState === "visible") refresh();
  }, REFRESH_EVERY);
  refresh();
  return {
    refresh,
    stop() {
      clearInterval(timer);
      shown.disconnect();
      window.removeEventListener("responder:incident", onIncident);
    },
  };
}

function card(ctx, incident, held, refresh, runs) {
  const campus = ctx.tree.find((c) => c.id === incident.campus);
  const mine = held.filter((grant) => grant.incident === incident.id);
  const cameras = incidentCameras(incident);
  const headingId = `incident-${incident.id}`;
  return h(
    "article.incident",
    { "aria-labelledby": headingId, "data-incident-id": incident.id },
    h("h3", { id: headingId }, incident.title),
    h(
      "p.meta",
      {},
      `${campus ? campus.name : "Campus"} · opened ${ago(incident.opened_at)}`,
      incident.opened_by ? ` by ${incident.opened_by}` : " by an alarm rule",
      incident.responders.length ? ` · responders: ${incident.responders.join(", ")}` : "",
      incident.responder_group_names?.length ? ` · access for: ${incident.responder_group_names.join(", ")}` : "",
    ),
    mine.length
      ? h("p.grant-banner", {}, h("strong", {}, "Emergency access: "), mine.map((grant) => grantText(grant)).join(" "))
      : null,
    cameras.length
      ? h(
          "div.cameras",
          { role: "group", "aria-label": "Cameras" },
          // Up to four of them at once, each at the low profile (live.js openGrid).
          cameras.length > 1
            ? h("button.primary", { type: "button", onclick: () => ctx.openGrid(cameras.slice(0, 4), { title: `Live: ${incident.title}` }) }, "Watch side by side")
            : null,
          cameras.map((id) => {
            const name = ctx.cameras(id)?.name || `Camera ${id}`;
            return h("button.camera", { type: "button", "aria-label": `Camera ${name}`, onclick: () => ctx.openCamera(id) }, "▶ ", name);
          }),
          // Recorded playback of the incident's cameras from a minute before it opened.
          ctx.me.capabilities?.includes("recorded")
            ? h("button", { type: "button", onclick: () => ctx.openPlayback({ cameras, start: new Date(new Date(incident.opened_at).getTime() - 60000), title: incident.title }) }, "Recordings")
            : null,
          ctx.me.capabilities?.includes("export") ? exportButton(ctx, incident, cameras) : null,
        )
      : null,
    h("h4", {}, "Timeline"),
    h("ol.timeline", {}, incident.timeline.map((entry) => timelineEntry(ctx, entry))),
    noteForm(incident, refresh),
    runs ? closeButton(incident, refresh) : null,
  );
}

// Evidence of the incident: its cameras from 10 min before it opened (what its hold keeps)
// to now, at most the 240 min one export covers.
function exportButton(ctx, incident, cameras) {
  const start = new Date(new Date(incident.opened_at).getTime() - 10 * 60000);
  const end = new Date(Math.min(Date.now(), start.getTime() + 240 * 60000));
  return h(
    "button",
    { type: "button", "aria-label": `Export: ${incident.title}`, onclick: () => ctx.openExport({ cameras, start, end, incident: incident.id, title: incident.title }) },
    "Export",
  );
}

// Those who run incidents open one by hand (an alarm rule opens the others), naming the
// responder roles that get emergency access (all offered ones at first: police arriving
// without cameras is the costlier mistake); who the server says may not, learns why in
// its own words.
function openForm(ctx, refresh) {
  const campuses = ctx.tree.map((campus) => h("option", { value: campus.id }, campus.name));
  const campus = h("select", { name: "campus", required: true }, campuses);
  const title = h("input", { name: "title", required: true, maxlength: "200", placeholder: "What is happening" });
  const hours = h("input", { name: "grant_hours", type: "number", min: "1", value: "4", required: true, inputmode: "numeric" });
  const groups = h("div.group-choices", {}, h("p.empty", {}, "Loading…"));
  const message = h("p.form-message", { role: "status" });
  let offered = null;
  async function loadGroups() {
    if (offered) return;
    try {
      offered = await api("incidents/responder-groups/");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      mount(groups, h("p.empty", {}, error.status === 0 ? "No connection: the responder roles could not be loaded." : error.message));
      return;
    }
    mount(
      groups,
      offered.length
        ? offered.map((group) => h("label.check", {}, h("input", { type: "checkbox", name: "responder_groups", value: String(group.id), checked: true }), h("span", {}, group.name)))
        : h("p.empty", {}, "No responder role you may name: the incident gives no emergency access."),
    );
  }
  const form = h(
    "form.open-incident",
    {
      onsubmit: async (submit) => {
        submit.preventDefault();
        const body = {
          campus: Number(campus.value),
          title: title.value.trim(),
          grant_hours: Number(hours.value),
          responder_groups: [...groups.querySelectorAll("input:checked")].map((box) => Number(box.value)),
        };
        if (!body.title) return;
        message.textContent = "Opening…";
        try {
          await api("incidents/", { method: "POST", body });
          title.value = "";
          message.textContent = "Opened.";
          form.closest("details").open = false;
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = error.status === 0 ? "Not opened: no connection." : `Not opened: ${error.message}`;
        }
      },
    },
    h("label", {}, h("span", {}, "Campus"), campus),
    h("label", {}, h("span", {}, "Title"), title),
    h("fieldset.groups", {}, h("legend", {}, "Emergency access for"), groups),
    h("label", {}, h("span", {}, "Access ends after (hours)"), hours),
    h("button.primary", { type: "submit" }, "Open incident"),
    message,
  );
  const box = h("details.open-incident-box", {}, h("summary", {}, "Open an incident"), form);
  box.addEventListener("toggle", () => box.open && loadGroups());
  return box;
}

function closeButton(incident, refresh) {
  const message = h("span.form-message", { role: "status" });
  const button = h(
    "button.close-incident",
    {
      type: "button",
      "aria-label": `Close incident: ${incident.title}`,
      onclick: async () => {
        if (!confirm(`Close "${incident.title}"? Its emergency access ends now.`)) return;
        button.disabled = true;
        try {
          await api(`incidents/${incident.id}/close/`, { method: "POST" });
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          button.disabled = false;
          message.textContent = error.status === 0 ? "Not closed: no connection." : `Not closed: ${error.message}`;
        }
      },
    },
    "Close incident",
  );
  return h("div.actions", {}, button, message);
}

// The list is drawn again on every change (a frame, a refresh): a note half written, and the
// caret in it, must survive that.
function notesBeingWritten(list) {
  const drafts = new Map();
  let focused = null;
  for (const input of list.querySelectorAll("form.note input")) {
    const id = input.closest("[data-incident-id]").dataset.incidentId;
    if (input.value) drafts.set(id, input.value);
    if (input === document.activeElement) focused = { id, start: input.selectionStart, end: input.selectionEnd };
  }
  return {
    restore(into) {
      for (const article of into.querySelectorAll("[data-incident-id]")) {
        const input = article.querySelector("form.note input");
        const id = article.dataset.incidentId;
        if (!input) continue;
        if (drafts.has(id)) input.value = drafts.get(id);
        if (focused && focused.id === id) {
          input.focus({ preventScroll: true });
          input.setSelectionRange(focused.start, focused.end);
        }
      }
    },
  };
}

function incidentCameras(incident) {
  const ids = [];
  for (const entry of incident.timeline)
    for (const id of entry.event?.cameras || []) if (!ids.includes(id)) ids.push(id);
  return ids.slice(0, 6);
}

function timelineEntry(ctx, entry) {
  const event = entry.event;
  const text = event
    ? `${EVENT_KINDS[event.type] || event.type.replaceAll("_", " ")} at ${event.door ? event.door.name : "an unmapped door"}`
    : entry.text;
  return h(
    `li.entry.entry-${entry.kind}`,
    {},
    h("time", { datetime: entry.at }, new Date(entry.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })),
    h("strong", {}, ENTRY_LABELS[entry.kind] || entry.kind),
    text ? h("span", {}, ` ${text}`) : null,
    entry.user ? h("span.by", {}, ` (${entry.user})`) : null,
    entry.acknowledged_by.length
      ? h("span.entry-acks", {}, ` · acknowledged by ${entry.acknowledged_by.map((ack) => ack.user).join(", ")}`)
      : null,
    event?.door?.floor
      ? h("button.link", { type: "button", onclick: () => ctx.show("map", { kind: "door", id: event.door.id }) }, "Show on map")
      : null,
  );
}

function noteForm(incident, refresh) {
  const input = h("input", { name: "text", "aria-label": `Note for ${incident.title}`, placeholder: "Add a note", maxlength: "5000", required: true });
  const message = h("span.form-message", { role: "status" });
  const form = h(
    "form.note",
    {
      onsubmit: async (submit) => {
        submit.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        try {
          await api(`incidents/${incident.id}/notes/`, { method: "POST", body: { text } });
          input.value = "";
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = error.status === 0 ? "Not sent: no connection." : error.message;
        }
      },
    },
    input,
    h("button", { type: "submit" }, "Add note"),
    message,
  );
  return form;
}

function grantText(grant) {
  const what = grant.capabilities.map((c) => CAPABILITIES[c] || c).join(" and ");
  const until = grant.ends_at
    ? new Date(grant.ends_at).toLocaleString([], { hour: "2-digit", minute: "2-digit", day: "numeric", month: "short" })
    : "the incident closes";
  return grant.active
    ? `Gives ${grant.grantee} ${what} on this campus until ${until}.`
    : `Gave ${grant.grantee} ${what}; ended ${until}.`;
}

function grantLine(ctx, grant) {
  const campus = ctx.tree.find((c) => c.id === grant.campus);
  return h(
    `li.grant${grant.active ? ".active" : ""}`,
    {},
    h("strong", {}, grant.active ? "Active: " : "Ended: "),
    `${grant.incident_title}${campus ? ` (${campus.name})` : ""}. `,
    grantText(grant),
  );
}
