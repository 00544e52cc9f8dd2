// The REST API: JSON in and out, the session cookie, Django's CSRF token on writes.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.message)) || `The server answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

let onSessionLost = null;
let checking = null;
let user = null;
let freshAt = 0; // when an answer last came from the server itself

// Whose answers these are: the service worker keeps each user's cached answers apart, and
// keeps none for a request that names nobody.
export function answersFor(id) {
  user = id == null ? null : String(id);
}

// The app says what to do when a session ends under it (idle timeout, sign-out elsewhere,
// account disabled). The API answers 403, not 401, to a session that is gone, so a refusal
// is only a lost session when auth/me is refused too.
export function whenSessionLost(handler) {
  onSessionLost = handler;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (user) headers["X-Responder-User"] = user;
  const asked = Date.now();
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "No connection to the server." });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if ((response.status === 401 || response.status === 403) && !path.startsWith("auth/")) checkSession();
    throw error;
  }
  // The service worker marks answers it served from its cache while offline.
  const cachedAt = response.headers.get("X-Responder-Cached-At");
  if (data && typeof data === "object" && cachedAt) Object.defineProperty(data, "cachedAt", { value: cachedAt });
  if (!cachedAt) freshAt = Date.now();
  // A saved answer to a request sent before the server answered again says nothing of the link now.
  if (cachedAt && asked < freshAt) return data;
  window.dispatchEvent(new CustomEvent("responder:data", { detail: { path, cachedAt } }));
  return data;
}

// Asks the server whether the session still stands; a lost one reaches the app's handler.
export function checkSession() {
  checking ||= api("auth/me")
    .catch((error) => {
      if (error.status === 401 || error.status === 403) onSessionLost?.("Your session has ended. Sign in again.");
    })
    .finally(() => (checking = null));
}
