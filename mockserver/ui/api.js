// The control plane, from the page's own origin: every call is relative to the page
// (/_mock/ui/ or /t/{tenant}/_mock/ui/), so a tenant's page reaches that tenant only.
// Writes send JSON (the control plane refuses anything else); with a control token the
// page sends X-Mock-Token, kept in sessionStorage for this tab only.

const TOKEN = "nanobanana-mock.token";
const ROOT = new URL("../", window.location.href);

export class ControlError extends Error {
  constructor(status, body) {
    const problems = Array.isArray(body?.problems) ? body.problems : [];
    const message = typeof body?.error === "string" ? body.error : `HTTP ${status}`;
    super(problems.length ? `${message}: ${problems.join("; ")}` : message);
    this.status = status;
    this.problems = problems;
  }
}

let onToken = () => {};

/** Called with the refusal's message whenever the mock asks for its token. */
export function whenTokenNeeded(callback) {
  onToken = callback;
}

export function setToken(token) {
  if (token) window.sessionStorage.setItem(TOKEN, token);
  else window.sessionStorage.removeItem(TOKEN);
}

/** The tenant this page acts on ("" for the default tenant). */
export function tenant() {
  const found = window.location.pathname.match(/^\/t\/([^/]+)\/_mock\/ui\//);
  return found ? decodeURIComponent(found[1]) : "";
}

/** A control-plane call: its JSON answer (null for a 204), or a ControlError. */
export async function call(method, path, body) {
  const headers = {};
  const token = window.sessionStorage.getItem(TOKEN);
  if (token) headers["X-Mock-Token"] = token;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  } else if (method === "POST") {
    headers["Content-Type"] = "application/json";
  }
  const answer = await fetch(new URL(path, ROOT), init);
  if (answer.status === 204) return null;
  let parsed = null;
  try {
    parsed = await answer.json();
  } catch {
    parsed = null;
  }
  if (!answer.ok) {
    const error = new ControlError(answer.status, parsed);
    if (answer.status === 401) onToken(error.message);
    throw error;
  }
  return parsed;
}

export const get = (path) => call("GET", path);

/** A query string of the given parameters, leaving out empty ones. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
