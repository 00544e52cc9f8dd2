// Light, dark, or the system's choice, remembered on this device (not per user: the device
// sits in a dark patrol car or a bright office whoever signs in).
import { h } from "./dom.js";

const KEY = "responder.theme";
const CHOICES = { system: "System", light: "Light", dark: "Dark" };

export function themeApply(choice = themeChosen()) {
  // "system" leaves it to the prefers-color-scheme rules in styles.css.
  if (choice === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
}

export function themeChosen() {
  const saved = localStorage.getItem(KEY);
  return saved in CHOICES ? saved : "system";
}

export function themeSwitch() {
  const chosen = themeChosen();
  return h(
    "select.theme",
    {
      onchange: (event) => {
        localStorage.setItem(KEY, event.target.value);
        themeApply(event.target.value);
      },
    },
    Object.entries(CHOICES).map(([value, label]) => h("option", { value, selected: value === chosen }, label)),
  );
}
