// Keeps the session alive while someone uses the app. The server ends a session after 30
// idle minutes, and only HTTP requests renew it (responder/core/middleware.py, SESSION_SAVE_EVERY_
// REQUEST); the alarm socket does not. So while the app is visible and was touched since
// the last request, a light GET auth/me renews it every few minutes. An app nobody touches
// still times out on the server's clock, as the district's policy means it to: a tablet
// left unattended does not stay signed in for ever.
import { checkSession } from "./api.js";

const RENEW_EVERY = 4 * 60 * 1000;
let lastInput = Date.now();
let lastRequest = Date.now();

export function keepAlive() {
  for (const type of ["pointerdown", "keydown", "wheel", "touchstart"])
    window.addEventListener(type, () => (lastInput = Date.now()), { capture: true, passive: true });
  window.addEventListener("responder:data", () => (lastRequest = Date.now()));
  setInterval(() => {
    const due = Date.now() - lastRequest >= RENEW_EVERY;
    if (document.visibilityState === "visible" && lastInput > lastRequest && due) renew();
  }, 30000);
  // Back from the pocket: renew at once, or learn at once that the session ended.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") renew();
  });
}

function renew() {
  lastRequest = Date.now();
  checkSession();
}
