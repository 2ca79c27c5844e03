// The console's only way to the manager: the public API under /v1, with the
// login's HttpOnly session cookie (sent by the browser) and the CSRF token
// from the login answer in X-Berth-CSRF on every request that changes
// something. The CSRF token is kept in localStorage so other tabs of the
// same origin share the login; it is useless to another origin, which can
// neither read it nor set the header.

const csrfKey = "berth.csrf";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && (problem.detail || problem.title) ? (problem.detail || problem.title) : `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
  // fieldErrors maps each field to its reasons.
  fieldErrors() {
    const out = {};
    for (const e of this.problem.errors || []) {
      (out[e.field] = out[e.field] || []).push(e.reason);
    }
    return out;
  }
}

let onUnauthorized = () => {};

export function setUnauthorizedHandler(f) { onUnauthorized = f; }

export function hasCSRF() { return !!localStorage.getItem(csrfKey); }

export function clearCSRF() { localStorage.removeItem(csrfKey); }

async function problemOf(resp) {
  const text = await resp.text();
  try { return JSON.parse(text); } catch { return { title: resp.statusText, detail: text.trim() }; }
}

// request sends one API call and returns the decoded JSON (null for 204).
export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-Berth-CSRF"] = localStorage.getItem(csrfKey) || "";
  }
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: `cannot reach the manager: ${e.message}` });
  }
  if (!resp.ok) {
    const p = await problemOf(resp);
    if (resp.status === 401 && !quiet401) onUnauthorized(p);
    throw new ApiError(resp.status, p);
  }
  if (resp.status === 204) return null;
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

// listAll follows next_cursor until the list ends (pages of 1000).
export async function listAll(path) {
  const items = [];
  let cursor = "";
  const sep = path.includes("?") ? "&" : "?";
  for (;;) {
    const page = await get(`${path}${sep}limit=1000${cursor ? "&cursor=" + encodeURIComponent(cursor) : ""}`);
    items.push(...(page.items || []));
    if (!page.next_cursor) return items;
    cursor = page.next_cursor;
  }
}

export async function login(email, password) {
  const out = await request("POST", "/v1/auth/login", { email, password }, { quiet401: true });
  localStorage.setItem(csrfKey, out.csrf_token);
  return out.user;
}

export async function logout() {
  try {
    await request("POST", "/v1/auth/logout", undefined, { quiet401: true });
  } finally {
    clearCSRF();
  }
}

// upload PUTs a file's bytes to path and reports progress (0..1) as they
// are sent: fetch cannot tell upload progress, XMLHttpRequest can.
export function upload(path, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", path);
    xhr.setRequestHeader("X-Berth-CSRF", localStorage.getItem(csrfKey) || "");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = { title: xhr.statusText, detail: xhr.responseText.trim() }; }
      if (xhr.status >= 200 && xhr.status < 300) { if (onProgress) onProgress(1); resolve(body); return; }
      if (xhr.status === 401) onUnauthorized(body);
      reject(new ApiError(xhr.status, body));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, { title: "Network error", detail: "the upload could not reach the manager" })));
    xhr.send(file);
  });
}

// download fetches a CSV export and hands it to the browser as a file.
// Fetching first (rather than navigating) lets the dialog show the API's
// reason when it refuses, e.g. a bad file name.
export async function download(path) {
  let resp;
  try {
    resp = await fetch(path, { credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, { title: "Network error", detail: `cannot reach the manager: ${e.message}` });
  }
  if (!resp.ok) {
    const p = await problemOf(resp);
    if (resp.status === 401) onUnauthorized(p);
    throw new ApiError(resp.status, p);
  }
  const disp = resp.headers.get("Content-Disposition") || "";
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disp);
  const name = m ? decodeURIComponent(m[1]) : "export.csv";
  const blob = await resp.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  return name;
}
