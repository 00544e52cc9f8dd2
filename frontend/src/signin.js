// Sign in with password and one-time code; enrol a device at the first sign-in.
import { api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";

export function signInScreen(root, { onSignedIn, notice }) {
  const message = h("p.message", { role: "alert" }, notice || "");
  const enrolment = h("div.enrolment");
  const field = (label, attrs) =>
    h("label", {}, h("span", {}, label), h("input", { required: true, ...attrs }));
  const form = h(
    "form.card.signin",
    { onsubmit: submit, novalidate: false },
    h("h1", {}, "Responder"),
    field("Username", { name: "username", autocomplete: "username", autocapitalize: "none" }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password" }),
    field("One-time code", {
      name: "otp",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      pattern: "[0-9a-z]{6,16}",
      required: false,
    }),
    enrolment,
    message,
    h("button.primary", { type: "submit" }, "Sign in"),
  );
  mount(root, h("main.center", {}, form));
  form.username.focus();

  async function submit(event) {
    event.preventDefault();
    message.textContent = "";
    const body = {
      username: form.username.value.trim(),
      password: form.password.value,
      otp: form.otp.value.trim(),
    };
    try {
      const me = await api("auth/login", { method: "POST", body });
      if (me && me.backup_codes) return showBackupCodes(root, me.backup_codes, () => onSignedIn(me));
      onSignedIn(me);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const data = error.body.enrolment || (error.body.code === "enrolment_required" && error.body);
      if (data && (data.qr_svg || data.otpauth_uri)) showEnrolment(enrolment, data);
      message.classList.toggle("notice", Boolean(data)); // a step to take, not a mistake
      message.textContent = explain(error);
      form.otp.focus();
    }
  }
}

function explain(error) {
  if (error.status === 423) return error.message || "This account is locked. Call district IT to unlock it.";
  if (error.status === 0) return "No connection to the server. Try again when you have signal.";
  return error.message;
}

function showEnrolment(container, data) {
  mount(
    container,
    h("p", {}, "Add Responder to your authenticator app: scan this code, then type the code it shows."),
    data.qr_svg ? h("div.qr", { html: data.qr_svg, role: "img", "aria-label": "QR code to enrol" }) : null,
    data.otpauth_uri ? h("p.secret", {}, h("a", { href: data.otpauth_uri }, "Open in an authenticator app")) : null,
  );
}

function showBackupCodes(root, codes, done) {
  mount(
    root,
    h(
      "main.center",
      {},
      h(
        "section.card",
        {},
        h("h1", {}, "Your backup codes"),
        h("p", {}, "Each code works once when your phone is not at hand. Keep them somewhere safe: they are not shown again."),
        h("ul.codes", {}, codes.map((code) => h("li", {}, h("code", {}, code)))),
        h("button.primary", { onclick: done }, "I have kept them"),
      ),
    ),
  );
}
