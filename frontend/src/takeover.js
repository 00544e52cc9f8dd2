// The alarm takeover: an alarm or warning the user may see covers whatever screen is open,
// with what, where and when, and the three things to do about it (Watch, Map,
// Acknowledge). It rings and buzzes again every few seconds until each alarm is
// acknowledged or dismissed; several stack, the newest on top, with a count.
import { h, mount } from "./dom.js";

export const TAKES_OVER = new Set(["alarm", "warning"]);
const REPEAT_EVERY = 6000; // ms between rings while an alarm waits for someone

export class Takeover {
  // feed: { label(record), place(record), acknowledge(record), ring(record) }; ctx: the shell's.
  constructor(ctx, feed) {
    this.ctx = ctx;
    this.feed = feed;
    this.stack = []; // records, oldest first
    this.root = h("section.takeover", { role: "alertdialog", "aria-labelledby": "takeover-title", "aria-describedby": "takeover-where", hidden: true });
    ctx.overlay(this.root);
  }

  raise(record) {
    if (!TAKES_OVER.has(record.severity) || this.stack.some((r) => r.seq === record.seq)) return;
    const wasShown = this.stack.length > 0;
    this.stack.push(record);
    this.draw({ focus: !wasShown || this.root.contains(document.activeElement) });
    this.feed.ring(record);
    clearInterval(this.repeat);
    // Again and again: an alarm nobody has answered must not go quiet after one beep.
    this.repeat = setInterval(() => this.stack.length && this.feed.ring(this.top()), REPEAT_EVERY);
  }

  // Acknowledged here or elsewhere, dismissed, or queued to be sent: it stops ringing.
  drop(seq) {
    const before = this.stack.length;
    this.stack = this.stack.filter((r) => r.seq !== seq);
    if (this.stack.length === before) return;
    if (!this.stack.length) clearInterval(this.repeat);
    this.draw({ focus: this.root.contains(document.activeElement) });
  }

  top() {
    return this.stack[this.stack.length - 1];
  }

  draw({ focus }) {
    const record = this.top();
    this.root.hidden = !record;
    if (!record) return mount(this.root);
    const more = this.stack.length - 1;
    const door = record.door;
    const watch = this.feed.watchable(record);
    const primary = h(
      "button.primary.watch",
      { type: "button", disabled: !watch.length, onclick: () => this.feed.watch(record) },
      "Watch",
    );
    mount(
      this.root,
      h(
        `div.takeover-card.severity-${record.severity}`,
        {},
        h(
          "div.takeover-head",
          {},
          h("span.severity", {}, h("span.glyph", { "aria-hidden": "true" }, record.severity === "alarm" ? "!" : "▲"), record.severity === "alarm" ? "Alarm" : "Warning"),
          more ? h("span.takeover-count", { "aria-label": `${more + 1} alarms waiting` }, `1 of ${more + 1}`) : null,
          h("button.quiet.dismiss", { type: "button", onclick: () => this.drop(record.seq), "aria-label": "Dismiss: stop the sound, keep the alarm in the list" }, "Dismiss"),
        ),
        h("h2", { id: "takeover-title" }, this.feed.label(record), ": ", door ? door.name : "Unmapped door"),
        h("p.takeover-where", { id: "takeover-where" }, this.feed.place(record) || "Place unknown", " · ", h("time", { datetime: record.occurred_at }, new Date(record.occurred_at).toLocaleTimeString())),
        watch.length ? null : h("p.takeover-note", {}, this.feed.noCameras()),
        h(
          "div.takeover-actions",
          {},
          primary,
          h("button.map", { type: "button", disabled: !door?.floor, onclick: () => this.feed.map(record) }, "Map"),
          h("button.ack", { type: "button", onclick: () => this.feed.acknowledge(record) }, "Acknowledge"),
        ),
      ),
    );
    // To Watch, so Enter answers at once; but never out of a field being typed in (a note
    // on an incident): the role announces the alarm, the words stay where they were.
    if (focus && !editing()) (watch.length ? primary : this.root.querySelector("button.ack")).focus({ preventScroll: true });
  }

  stop() {
    clearInterval(this.repeat);
    this.root.remove();
  }
}

function editing() {
  const active = document.activeElement;
  return Boolean(active && (active.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(active.tagName)));
}
