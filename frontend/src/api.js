// The REST API: JSON in and out, the session cookie, Django's CSRF token on writes.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.message)) || `The server answered ${status}.`);
    this.status = status;
    this.body = body || {};
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
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
    throw new ApiError(0, { detail: "No connection to the server." });
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) throw new ApiError(response.status, data);
  // The service worker marks answers it served from its cache while offline.
  const cachedAt = response.headers.get("X-Responder-Cached-At");
  if (data && typeof data === "object" && cachedAt) Object.defineProperty(data, "cachedAt", { value: cachedAt });
  return data;
}
