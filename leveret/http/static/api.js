// The management API as the dashboard calls it: the same /api endpoints as any tool, with HTTP basic
// credentials sent in an Authorization header (as RabbitMQ's management UI sends them). The credentials
// are kept in sessionStorage: they last as long as the tab, and no cookie carries them to other requests.

const KEY = "leveret.credentials";

export function setCredentials(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  sessionStorage.setItem(KEY, btoa(String.fromCharCode(...bytes)));
  sessionStorage.setItem(KEY + ".user", user);
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(KEY + ".user");
}

export function hasCredentials() {
  return sessionStorage.getItem(KEY) !== null;
}

export function currentUser() {
  return sessionStorage.getItem(KEY + ".user") || "";
}

export class ApiError extends Error {
  constructor(status, reason, path) {
    super(status === 404 && !reason ? `${path}: not found` : `HTTP ${status}${reason ? ": " + reason : ""}`);
    this.status = status;
    this.path = path;
  }
}

function reasonOf(body) {
  if (!body || typeof body !== "object") return "";
  const reason = body.reason ?? body.error ?? "";
  return typeof reason === "string" ? reason : JSON.stringify(reason);
}

// One request; resolves to the decoded JSON answer (null when empty), rejects with an ApiError.
export async function api(method, path, body) {
  const headers = { Authorization: "Basic " + (sessionStorage.getItem(KEY) || "") };
  // credentials "omit": a refused login comes back as a 401 to handle here; with the browser's own
  // credentials allowed, the API's WWW-Authenticate challenge would open the browser's login dialog.
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch("/api" + path, init);
  const text = await response.text();
  let decoded = null;
  if (text.trim()) {
    try {
      decoded = JSON.parse(text);
    } catch {
      decoded = text;
    }
  }
  if (!response.ok) throw new ApiError(response.status, reasonOf(decoded), path);
  return decoded;
}

export const get = (path) => api("GET", path);

// A name as one path segment ("/" is %2F, as RabbitMQ's API wants vhost names).
export const seg = (name) => encodeURIComponent(name);

// A listing's rows: RabbitMQ's API answers a plain array, or a page object when asked for pages.
export async function rows(path) {
  const answer = await get(path);
  return Array.isArray(answer) ? answer : answer?.items ?? [];
}
