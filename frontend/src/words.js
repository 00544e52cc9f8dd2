// What the access system's event types are called on every screen.
export const EVENT_KINDS = {
  door_forced: "Door forced",
  door_held: "Door held open",
  access_denied: "Access denied",
  access_granted: "Access granted",
  intercom_call: "Intercom call",
  tamper: "Tamper",
  duress: "Duress",
};
