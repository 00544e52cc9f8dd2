// Sign in with password and one-time code. At the first sign-in, the enrolment code district
// IT gave opens the enrolment: a QR code, then the first code of the new authenticator.
import { api, ApiError } from "./api.js";
import { h, mount } from "./dom.js";

export function signInScreen(root, { onSignedIn, notice }) {
  const message = h("p.message", { role: "alert" }, notice || "");
  const enrolment = h("div.enrolment");
  const field = (label, attrs) =>
    h("label", {}, h("span", {}, label), h("input", { required: true, ...attrs }));
  // A new user's first sign-in: the code district IT gave them opens the enrolment.
  const enrolmentField = field("Enrolment code from district IT", {
    name: "enrolment_code",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    required: false,
  });
  enrolmentField.hidden = true;
  const firstTime = h(
    "button.link",
    { type: "button", onclick: () => askForEnrolmentCode() },
    "First sign-in? I have an enrolment code",
  );
  const form = h(
    "form.card.signin",
    { onsubmit: submit, novalidate: false },
    h("h1", {}, "Responder"),
    field("Username", { name: "username", autocomplete: "username", autocapitalize: "none" }),
    field("Password", { name: "password", type: "password", autocomplete: "current-password" }),
    enrolmentField,
    enrolment,
    field("One-time code", {
      name: "otp",
      inputmode: "numeric",
      autocomplete: "one-time-code",
      required: false,
    }),
    message,
    h("button.primary", { type: "submit" }, "Sign in"),
    firstTime,
    soundExplained(),
  );
  mount(root, h("main.center", {}, form));
  form.username.focus();

  function askForEnrolmentCode() {
    enrolmentField.hidden = false;
    firstTime.hidden = true;
    form.enrolment_code.focus();
  }

  async function submit(event) {
    event.preventDefault();
    message.textContent = "";
    const body = {
      username: form.username.value.trim(),
      password: form.password.value,
      otp: form.otp.value.trim(),
      enrolment_code: form.enrolment_code.value.trim(),
    };
    try {
      const me = await api("auth/login", { method: "POST", body });
      if (me && me.backup_codes) return showBackupCodes(root, me.backup_codes, () => onSignedIn(me));
      onSignedIn(me);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const code = error.body.code;
      const data = error.body.enrolment;
      message.classList.toggle("notice", code === "enrolment_required" || code === "enrolment_started");
      message.textContent = explain(error);
      if (data && (data.qr_svg || data.otpauth_uri)) {
        showEnrolment(enrolment, data);
        form.otp.focus();
      } else if (code === "enrolment_required" || code === "enrolment_code_invalid") {
        mount(enrolment);
        askForEnrolmentCode();
      } else {
        form.otp.focus();
      }
    }
  }
}

function explain(error) {
  if (error.status === 423) return error.message || "This account is locked for a few minutes. Call district IT to unlock it now.";
  if (error.status === 429) return error.message || "Too many attempts from here. Wait a minute, then try again.";
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

// Said here, where the user touches the page anyway: browsers let a page sound only after
// a touch, and signing in is that touch; after a reload the app asks for one with a button.
function soundExplained() {
  return h(
    "p.sound-note",
    {},
    "Alarms cover the screen, sound and vibrate on this device until someone acknowledges them or you dismiss them. " +
      "Browsers allow sound only after you touch the page: signing in does that; after a reload, Responder asks you to tap once.",
  );
}
