// Evidence (issue 17): export cameras × a range as a verifiable zip (from playback or an
// incident), follow its build, share it with police by an expiring link, and hold footage
// from retention. Loaded on first use, like playback: the Evidence tab, an Export form.
// Progress comes on the feed's socket ("evidence.progress", relayed on window by feed.js);
// GET evidence/<id> is asked too whenever the socket has been quiet for a while.
import { api, ApiError } from "./api.js";
import { ago, h, mount } from "./dom.js";
import css from "./evidence.css" with { type: "text" };

const POLL_EVERY = 3000; // ms without a frame before asking the server
const MINUTE = 60000;
const EXPORT_MAX_MINUTES = 240;
const SHARE_DAYS = { min: 1, max: 30, default: 7 };
const HOLD_SOURCES = { export: "an export", incident: "an incident", manual: "by hand" };

let styled = false;

function styles() {
  if (styled) return;
  document.head.append(h("style", {}, css));
  styled = true;
}

// The server's 400 answers name fields ({"end": ["…"]}); its other refusals say `detail`.
export function problem(error) {
  if (error.status === 0) return "No connection to the server.";
  const body = error.body || {};
  if (typeof body.detail === "string") return body.detail.startsWith("<") ? `The server answered ${error.status}.` : body.detail; // an HTML error page
  const said = Object.values(body).flat().filter((text) => typeof text === "string");
  return said.length ? said.join(" ") : error.message;
}

// ----- Following one export's build -------------------------------------------------------

// Calls `changed(news, complete)` with each news of the export: a frame from the socket
// (id, status, progress; bytes and failure once it ends), or the whole export from GET
// (`complete`) when the socket has been quiet and once it has ended.
export function followExport(id, changed) {
  let heard = 0;
  let stopped = false;
  let asking = false;
  let timer = null;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
    window.removeEventListener("responder:evidence.progress", onFrame);
  };
  const ask = async () => {
    if (stopped || asking) return;
    asking = true;
    try {
      const found = await api(`evidence/${id}`);
      if (stopped) return;
      changed(found, true);
      if (found.status !== "building") stop();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.status === 404) stop(); // gone from the user's scope
    } finally {
      asking = false;
    }
  };
  function onFrame(event) {
    const news = event.detail.export || event.detail; // the server nests it: {"export": {…}}
    if (stopped || Number(news.id) !== Number(id)) return;
    heard = Date.now();
    changed({ ...news, id: Number(id) }, false);
    if (news.status !== "building") ask(); // the rest of it (download link, hold) comes with GET
  }
  window.addEventListener("responder:evidence.progress", onFrame);
  timer = setInterval(() => Date.now() - heard >= POLL_EVERY && ask(), POLL_EVERY);
  return { stop };
}

// A line that shows an export's state: a progress bar while building, then its size or why
// it failed.
function statusLine(item) {
  const percent = Math.round((item.progress || 0) * 100);
  const line = h("div.export-status", { "data-status": item.status });
  if (item.status === "building")
    mount(
      line,
      h("progress", { max: "100", value: String(percent), "aria-label": `Export ${item.id} progress` }),
      h("span", { role: "status" }, `Building… ${percent} %`),
    );
  else if (item.status === "ready")
    mount(line, h("span", { role: "status" }, `Ready · ${size(item.bytes)}`), downloadLink(item));
  else mount(line, h("span", { role: "status" }, `Failed: ${item.failure || "no reason given"}`));
  return line;
}

// The link in the answer is signed for minutes: one is asked for at the click.
function downloadLink(item) {
  const message = h("span.form-message", { role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          const fresh = await api(`evidence/${item.id}`);
          if (!fresh.download) return (message.textContent = "Not downloadable now.");
          const link = h("a", { href: fresh.download, download: `evidence-${item.id}.zip`, hidden: true });
          document.body.append(link);
          link.click();
          link.remove();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = problem(error);
        }
      },
    },
    "Download",
  );
  return h("span.download", {}, button, message);
}

// ----- The export form (playback, an incident) --------------------------------------------

// A form for cameras × range and the reason; `options` are the cameras offered (all ticked),
// the range proposed and the incident, if any. After the POST it follows the build until
// `stop()`.
export function exportForm(ctx, { cameras, start, end, incident = null }, { onOpenList } = {}) {
  styles();
  const ticks = cameras.map((id) =>
    h("label.check", {}, h("input", { type: "checkbox", name: "camera", value: String(id), checked: true }), h("span", {}, ctx.cameras(id)?.name || `Camera ${id}`)),
  );
  const from = h("input", { type: "datetime-local", step: "1", required: true, value: localInput(start) });
  const to = h("input", { type: "datetime-local", step: "1", required: true, value: localInput(end) });
  const reason = h("input", { name: "reason", required: true, maxlength: "2000", placeholder: "Why: case, report number" });
  const message = h("p.form-message", { role: "status" });
  const result = h("div.export-result");
  const submit = h("button.primary", { type: "submit" }, "Export");
  const form = h(
    "form.export-form",
    { onsubmit: (event) => send(event) },
    h("fieldset", {}, h("legend", {}, "Cameras"), ticks),
    h("label", {}, h("span", {}, "From"), from),
    h("label", {}, h("span", {}, "To"), to),
    h("label", {}, h("span", {}, "Reason"), reason),
    submit,
    message,
  );

  async function send(event) {
    event.preventDefault();
    const body = {
      cameras: ticks.map((tick) => tick.querySelector("input")).filter((input) => input.checked).map((input) => Number(input.value)),
      start: fromLocalInput(from.value),
      end: fromLocalInput(to.value),
      reason: reason.value.trim(),
      incident,
    };
    const wrong = rangeProblem(body);
    if (wrong) return (message.textContent = wrong);
    submit.disabled = true;
    message.textContent = "Asking…";
    try {
      const made = await api("evidence/", { method: "POST", body });
      message.textContent = `Export ${made.id} started. It is kept under Evidence.`;
      follow(made);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      submit.disabled = false;
      message.textContent = `Not exported: ${problem(error)}`;
    }
  }

  let follower = null;
  function follow(made) {
    const open = onOpenList ? h("button", { type: "button", onclick: () => onOpenList(made.id) }, "Open Evidence") : null;
    const show = (item) => mount(result, statusLine(item), open);
    show({ progress: 0, ...made });
    follower = followExport(made.id, show);
  }

  return { element: h("div.export-box", {}, form, result), stop: () => follower?.stop() };
}

function rangeProblem({ cameras, start, end, reason }) {
  if (!cameras.length) return "Choose at least one camera.";
  if (!start || !end) return "Give the start and the end.";
  const minutes = (new Date(end) - new Date(start)) / MINUTE;
  if (minutes <= 0) return "The end must be after the start.";
  if (minutes > EXPORT_MAX_MINUTES) return `An export covers at most ${EXPORT_MAX_MINUTES} minutes.`;
  if (!reason) return "Give the reason.";
  return null;
}

// The form in a sheet of its own (an incident's Export).
export function openExport(ctx, options, dialog) {
  const title = options.title ? `Export: ${options.title}` : "Export";
  const form = exportForm(ctx, options, {
    onOpenList: () => {
      dialog.close();
      ctx.show("evidence");
    },
  });
  mount(
    dialog,
    h("div.export-sheet", {}, h("header.live-head", {}, h("h2", {}, title), h("button.close", { type: "button", onclick: () => dialog.close() }, "Close")), form.element),
  );
  return { close: () => form.stop() };
}

// ----- The Evidence screen -----------------------------------------------------------------

export function evidencePanel(ctx, panel) {
  styles();
  const status = h("p.feed-note.evidence-status", { role: "status" });
  const list = h("div.exports");
  const holdList = h("div.hold-list");
  const followers = new Map();
  let holds = [];
  mount(
    panel,
    h("h2", {}, "Evidence"),
    status,
    list,
    h("section.holds", { "aria-labelledby": "holds-heading" }, h("h3", { id: "holds-heading" }, "Holds"), holdForm(ctx, () => refresh()), holdList),
  );

  async function refresh() {
    try {
      const [exports, held] = await Promise.all([api("evidence/"), api("holds?active=true")]);
      drawHolds(held);
      mount(list, exports.length ? exports.map((item) => card(item)) : h("p.empty", {}, "No exports yet."));
      for (const item of exports) if (item.status === "building") follow(item.id);
      status.textContent = "";
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status.textContent = `Not loaded: ${problem(error)}`;
    }
  }

  function drawHolds(held) {
    holds = held;
    mount(holdList, holds.length ? h("ul.plain", {}, holds.map((hold) => holdLine(ctx, hold, refresh))) : h("p.empty", {}, "No holds in force."));
  }

  function card(item) {
    return exportCard(ctx, item, holds.find((hold) => hold.id === item.hold), refresh);
  }

  // A build's news redraws its own card only: a form open on another card stays as it is.
  function follow(id) {
    if (followers.has(id)) return;
    followers.set(
      id,
      followExport(id, (news, complete) => {
        const old = list.querySelector(`[data-export-id="${id}"]`);
        if (!old) return;
        if (!complete || news.status === "building") return old.querySelector(".export-status").replaceWith(statusLine(news));
        followers.delete(id);
        // A ready export holds its range; a failed one holds nothing.
        api("holds?active=true").then(drawHolds, () => {}).finally(() => old.replaceWith(card(news)));
      }),
    );
  }

  // Opening the tab shows what is true now.
  const screen = panel.closest("section.screen") || panel;
  const shown = new MutationObserver(() => !screen.hidden && refresh());
  shown.observe(screen, { attributes: true, attributeFilter: ["hidden"] });
  refresh();
  return {
    refresh,
    stop() {
      shown.disconnect();
      for (const follower of followers.values()) follower.stop();
    },
  };
}

function exportCard(ctx, item, hold, refresh) {
  const names = item.cameras.map((id) => ctx.cameras(id)?.name || `Camera ${id}`);
  const headingId = `export-${item.id}`;
  const shares = item.shares || [];
  return h(
    "article.export",
    { "aria-labelledby": headingId, "data-export-id": item.id },
    h("h3", { id: headingId }, `Export ${item.id}: ${names.join(", ")}`),
    h("p.meta", {}, `${range(item.start, item.end)}${item.created_by ? ` · by ${item.created_by}` : ""}${item.created_at ? ` · ${ago(item.created_at)}` : ""}`),
    item.reason ? h("p.reason", {}, item.reason) : null,
    statusLine(item),
    item.manifest_sha256 ? h("p.digest", {}, "Manifest SHA-256 ", h("code", {}, item.manifest_sha256)) : null,
    h("p.held", {}, holdText(item, hold)),
    shares.length ? h("ul.plain.shares", { "aria-label": `Links of export ${item.id}` }, shares.map((share) => shareLine(item, share, refresh))) : null,
    item.status === "ready" ? shareForm(ctx, item, refresh) : null,
  );
}

function holdText(item, hold) {
  if (!item.hold) return item.status === "failed" ? "Holds nothing." : "No hold.";
  if (!hold) return "Its hold was released.";
  return `Held ${hold.until ? `until ${dateTime(hold.until)}` : "until released"}.`;
}

// ----- Sharing with police ------------------------------------------------------------------

function shareLine(item, share, refresh) {
  const state = share.active ? `expires ${dateTime(share.expires_at)}` : share.revoked_at ? `revoked ${dateTime(share.revoked_at)}` : "expired";
  const message = h("span.form-message", { role: "status" });
  const revoke = h(
    "button",
    {
      type: "button",
      "aria-label": `Revoke link: ${share.note || `link ${share.id}`}`,
      onclick: async () => {
        if (!confirm("Revoke this link? It stops working at once.")) return;
        revoke.disabled = true;
        try {
          await api(`evidence/${item.id}/shares/${share.id}`, { method: "DELETE" });
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          revoke.disabled = false;
          message.textContent = `Not revoked: ${problem(error)}`;
        }
      },
    },
    "Revoke",
  );
  return h(
    `li.share${share.active ? ".active" : ""}`,
    { "data-share-id": share.id },
    h("strong", {}, share.note || "Link"),
    h("span", {}, ` · ${state}`),
    share.active ? h("div.actions", {}, revoke, message) : null,
  );
}

function shareForm(ctx, item, refresh) {
  const note = h("input", { name: "note", maxlength: "300", placeholder: "Det. Ruiz, case 2026-117" });
  const days = h("input", { type: "number", name: "days", min: String(SHARE_DAYS.min), max: String(SHARE_DAYS.max), value: String(SHARE_DAYS.default), required: true, inputmode: "numeric" });
  const message = h("p.form-message", { role: "status" });
  const form = h(
    "form.share-form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { note: note.value.trim(), expires_in_days: Number(days.value) };
        if (!(body.expires_in_days >= SHARE_DAYS.min && body.expires_in_days <= SHARE_DAYS.max))
          return (message.textContent = `A link lasts ${SHARE_DAYS.min} to ${SHARE_DAYS.max} days.`);
        message.textContent = "Making the link…";
        try {
          const made = await api(`evidence/${item.id}/shares`, { method: "POST", body });
          message.textContent = "";
          showLinkOnce(ctx, made, body.note);
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = `No link made: ${problem(error)}`;
        }
      },
    },
    h("label", {}, h("span", {}, "Note (who it is for)"), note),
    h("label", {}, h("span", {}, "Expires after (days)"), days),
    h("button.primary", { type: "submit" }, "Create link"),
    message,
  );
  return h("details.share-box", {}, h("summary", {}, "Share with police"), form);
}

// The server keeps only the token's hash: this is the one time the link can be seen.
function showLinkOnce(ctx, made, note) {
  const url = h("input", { readonly: true, value: made.url, "aria-label": "Link", onfocus: (e) => e.target.select() });
  const copied = h("p.form-message", { role: "status" });
  const dialog = h(
    "dialog.share-link",
    { "aria-label": "Link for police" },
    h("h2", {}, "Link for police"),
    h("p", {}, `${note ? `For ${note}. ` : ""}Works until ${dateTime(made.expires_at)}, without an account. Copy it now: it is shown only once.`),
    url,
    h(
      "div.actions",
      {},
      h("button.primary", { type: "button", onclick: () => copy(url, copied) }, "Copy link"),
      h("button", { type: "button", onclick: () => dialog.close() }, "Done"),
    ),
    copied,
  );
  dialog.addEventListener("close", () => dialog.remove());
  ctx.overlay(dialog);
  dialog.showModal();
}

async function copy(input, said) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    // Without the clipboard API (no permission, an old browser): the selection copies.
    input.select();
    if (!document.execCommand("copy")) return (said.textContent = "Select the link and copy it.");
  }
  said.textContent = "Copied.";
}

// ----- Holds ------------------------------------------------------------------------------

function holdLine(ctx, hold, refresh) {
  const names = hold.cameras.map((id) => ctx.cameras(id)?.name || `Camera ${id}`);
  const until = hold.until ? `until ${dateTime(hold.until)}` : "until released";
  const end = hold.end ? range(hold.start, hold.end) : `from ${dateTime(hold.start)} until 10 min after the incident closes`;
  return h(
    "li.hold",
    { "data-hold-id": hold.id },
    h("strong", {}, names.join(", ") || "Cameras outside your scope"),
    h("p.meta", {}, `${end} · ${until}`),
    hold.incident_title ? h("p.incident", {}, `Incident: ${hold.incident_title}`) : null,
    h("p.reason", {}, holdReason(hold)),
    // An open incident's hold ends with the incident, not by hand.
    hold.source === "incident" && !hold.end ? null : releaseForm(hold, refresh),
  );
}

function holdReason(hold) {
  // An incident's own hold has no one behind it: the incident placed it.
  const by = [hold.created_by, HOLD_SOURCES[hold.source]].filter(Boolean).join(", ");
  return by ? `${hold.reason} (${by})` : hold.reason;
}

function releaseForm(hold, refresh) {
  const reason = h("input", { name: "reason", required: true, maxlength: "1000", "aria-label": `Why release hold ${hold.id}`, placeholder: "Why release it" });
  const message = h("span.form-message", { role: "status" });
  const form = h(
    "form.release",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { reason: reason.value.trim() };
        if (!body.reason) return (message.textContent = "Give the reason.");
        try {
          await api(`holds/${hold.id}`, { method: "DELETE", body });
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = `Not released: ${problem(error)}`;
        }
      },
    },
    reason,
    h("button", { type: "submit" }, "Release"),
    message,
  );
  return form;
}

function holdForm(ctx, refresh) {
  const now = Date.now();
  const pick = cameraPicker(ctx);
  const from = h("input", { type: "datetime-local", step: "1", required: true, value: localInput(new Date(now - 3600000)) });
  const to = h("input", { type: "datetime-local", step: "1", required: true, value: localInput(new Date(now)) });
  const until = h("input", { type: "datetime-local", step: "1" });
  const reason = h("input", { name: "reason", required: true, maxlength: "1000", placeholder: "Why: case, claim, request" });
  const message = h("p.form-message", { role: "status" });
  const form = h(
    "form.hold-form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        const body = { cameras: pick.chosen(), start: fromLocalInput(from.value), end: fromLocalInput(to.value), reason: reason.value.trim(), until: until.value ? fromLocalInput(until.value) : null };
        if (!body.cameras.length) return (message.textContent = "Choose at least one camera.");
        if (!body.reason) return (message.textContent = "Give the reason.");
        message.textContent = "Placing…";
        try {
          await api("holds", { method: "POST", body });
          reason.value = "";
          message.textContent = "Held.";
          form.closest("details").open = false;
          refresh();
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          message.textContent = `Not held: ${problem(error)}`;
        }
      },
    },
    pick.element,
    h("label", {}, h("span", {}, "From"), from),
    h("label", {}, h("span", {}, "To"), to),
    h("label", {}, h("span", {}, "Keep until (empty: until released)"), until),
    h("label", {}, h("span", {}, "Reason"), reason),
    h("button.primary", { type: "submit" }, "Place hold"),
    message,
  );
  return h("details.hold-box", {}, h("summary", {}, "Place a hold"), form);
}

// Every camera of the map tree, by building: a district has 150 and more, so the list scrolls.
function cameraPicker(ctx) {
  const groups = [];
  for (const campus of ctx.tree)
    for (const building of campus.buildings) {
      const cameras = [...(building.unplaced_cameras || []), ...building.floors.flatMap((floor) => floor.cameras || [])];
      if (!cameras.length) continue;
      groups.push(
        h(
          "fieldset",
          {},
          h("legend", {}, `${building.name} (${campus.name})`),
          cameras.map((camera) => h("label.check", {}, h("input", { type: "checkbox", name: "camera", value: String(camera.id) }), h("span", {}, camera.name))),
        ),
      );
    }
  const element = h("div.camera-picker", { role: "group", "aria-label": "Cameras" }, groups);
  return {
    element,
    chosen: () => [...element.querySelectorAll("input:checked")].map((input) => Number(input.value)),
  };
}

// ----- Words and times ------------------------------------------------------------------------

export function size(bytes) {
  if (bytes == null) return "size unknown";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function dateTime(at) {
  return new Date(at).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function range(start, end) {
  const time = (at) => new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const sameDay = new Date(start).toDateString() === new Date(end).toDateString();
  return `${dateTime(start)} – ${sameDay ? time(end) : dateTime(end)}`;
}

// <input type="datetime-local"> speaks the device's local time, without a zone.
function localInput(at) {
  const date = new Date(at);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * MINUTE);
  return local.toISOString().slice(0, 19);
}

function fromLocalInput(value) {
  return value ? new Date(value).toISOString() : null;
}
