// Entry point: find out who is logged in, draw the frame (sidebar, top
// bar) and route #/page?query to the page modules. Administration pages are
// drawn for admins and, read-only, for monitors; the API refuses their
// data (and every change a monitor tries) to anyone else anyway.
import * as api from "./api.js";
import { h, clear, button, notice, field, openDialog, toast, clearToasts, errorText } from "./ui.js";
import * as loginPage from "./pages/login.js";
import * as sessionsPage from "./pages/sessions.js";
import * as sessionPage from "./pages/session_detail.js";
import * as storagePage from "./pages/storage.js";
import * as usersPage from "./pages/users.js";
import * as groupsPage from "./pages/groups.js";
import * as agentsPage from "./pages/agents.js";
import * as environmentsPage from "./pages/environments.js";
import * as maintenancePage from "./pages/maintenance.js";
import * as infoPage from "./pages/information.js";

const pages = {
  sessions: { title: "Sessions", page: sessionsPage },
  session: { title: "Session", page: sessionPage, menu: "sessions" },
  data: { title: "Data & Storage", page: storagePage },
  users: { title: "Users", page: usersPage, admin: true },
  groups: { title: "Groups", page: groupsPage, admin: true },
  agents: { title: "Agents", page: agentsPage, admin: true },
  environments: { title: "Environments", page: environmentsPage, admin: true },
  maintenance: { title: "Maintenance", page: maintenancePage, admin: true },
  info: { title: "Information", page: infoPage, admin: true },
};
const userMenu = ["sessions", "data"];
const adminMenu = ["users", "groups", "agents", "environments", "maintenance", "info"];

const root = document.getElementById("app");
let me = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query] = raw.split("?");
  return { name: name || "sessions", params: new URLSearchParams(query || "") };
}

export function navigate(name, params) {
  const q = params && [...params].length ? `?${params}` : "";
  const target = `#/${name}${q}`;
  if (location.hash === target) route();
  else location.hash = target;
}

function isAdmin(u) { return u && (u.role === "admin" || u.role === "superadmin"); }

// A watcher reads the administration pages: admins, and monitors without
// any change.
function isWatcher(u) { return isAdmin(u) || (u && u.role === "monitor"); }

function showLogin(message) {
  me = null;
  clearToasts();
  document.title = "Log in · Berth console";
  loginPage.render(root, {
    message,
    onLoggedIn: (user) => { me = user; route(); },
  });
}

async function logout() {
  try { await api.logout(); } catch { /* the login is gone either way */ }
  showLogin("You are logged out.");
}

// changePassword changes the caller's own password; the API keeps this
// login and ends every other one.
function changePassword() {
  const old = field("Current password", h("input", { type: "password", id: "old-password", autocomplete: "current-password" }));
  const pw = field("New password", h("input", { type: "password", id: "new-password", autocomplete: "new-password" }),
    "At least 8 characters with at least one letter, one digit and one special character.");
  const confirm = field("New password confirmation", h("input", { type: "password", id: "new-password-confirm", autocomplete: "new-password" }));
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "Change password", id: "password-dialog" }, (close) => ({
    body: [msg, old, pw, confirm],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CHANGE", async () => {
      for (const f of [old, pw, confirm]) f.setError();
      clear(msg);
      let bad = false;
      if (!old.input.value) { old.setError("Enter your current password."); bad = true; }
      if (!pw.input.value) { pw.setError("Enter the new password."); bad = true; }
      if (!confirm.input.value) { confirm.setError("Confirm the new password: type it again."); bad = true; }
      else if (pw.input.value !== confirm.input.value) { confirm.setError("The passwords do not match."); bad = true; }
      if (bad) return;
      try {
        await api.post("/v1/auth/password", { old_password: old.input.value, new_password: pw.input.value });
        close(true);
        toast("Password changed");
        me = (await api.get("/v1/auth/whoami")).user;
        route();
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        if (fe.old_password) old.setError(fe.old_password);
        if (fe.new_password) pw.setError(fe.new_password);
        if (!fe.old_password && !fe.new_password) clear(msg, notice("error", errorText(e)));
      }
    }, { id: "password-submit" })],
  }));
}

function frame(current) {
  const active = pages[current] && pages[current].menu ? pages[current].menu : current;
  const link = (key) => h("a", { href: `#/${key}`, class: key === active ? "active" : "", id: `nav-${key}` }, pages[key].title);
  const side = h("nav", { class: "sidebar" },
    h("div", { class: "brand" }, "Berth"),
    h("div", { class: "menu-group" }, userMenu.map(link)),
    isWatcher(me) ? h("div", { class: "menu-group admin", id: "admin-menu" },
      h("div", { class: "menu-title" }, "Administration", me.role === "monitor" ? h("span", { class: "menu-note" }, "read-only") : null),
      adminMenu.map(link)) : null,
  );
  const top = h("header", { class: "topbar" },
    h("h1", { id: "page-title" }, pages[current] ? pages[current].title : "Not found"),
    h("span", { class: "spacer" }),
    h("span", { class: "who", id: "whoami" }, `${me.email} (${me.role})`),
    button("CHANGE PASSWORD", changePassword, { id: "change-password", class: "secondary" }),
    button("LOG OUT", logout, { id: "logout", class: "secondary" }),
  );
  const main = h("main", { id: "page" });
  const banner = me.need_password_change
    ? notice("info", "An administrator asked you to change your password: CHANGE PASSWORD at the top.")
    : null;
  clear(root, h("div", { class: "layout" }, side, h("div", { class: "content" }, top, banner, main)));
  return main;
}

async function route() {
  if (!me) return;
  const { name, params } = parseHash();
  const entry = pages[name];
  const main = frame(name);
  const hash = location.hash;
  try {
    await draw(main, name, entry, params);
  } finally {
    // Says which address the page on screen finished drawing (tests and
    // tools wait on it).
    main.dataset.loaded = hash;
  }
}

async function draw(main, name, entry, params) {
  document.title = `${entry ? entry.title : "Not found"} · Berth console`;
  if (!entry) {
    main.append(notice("error", `There is no page "${name}".`));
    return;
  }
  if (entry.admin && !isWatcher(me)) {
    main.append(notice("error", `${entry.title} is for administrators only; you are logged in as ${me.role}.`));
    return;
  }
  if (entry.admin && !isAdmin(me)) {
    main.append(notice("info", "You are a monitor: you see this page as administrators do, and change nothing."));
  }
  const ctx = {
    me, isAdmin: isAdmin(me), isWatcher: isWatcher(me), isSuperadmin: me.role === "superadmin", params,
    navigate: (p) => navigate(name, p), go: navigate,
  };
  try {
    await entry.page.render(main, ctx);
  } catch (e) {
    if (e instanceof api.ApiError && e.status === 401) return;
    main.append(notice("error", `This page could not be loaded: ${e.message}`));
  }
}

api.setUnauthorizedHandler((p) => {
  if (me) showLogin(`Your login ended (${p && p.detail ? p.detail : "unauthorized"}); log in again.`);
});
window.addEventListener("hashchange", route);

async function start() {
  if (!api.hasCSRF()) {
    showLogin();
    return;
  }
  try {
    const who = await api.get("/v1/auth/whoami", { quiet401: true });
    me = who.user;
    route();
  } catch (e) {
    api.clearCSRF();
    showLogin(e.status === 401 ? undefined : `Cannot reach the manager: ${e.message}`);
  }
}

start();
