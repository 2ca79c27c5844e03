// Entry point: find out who is logged in, draw the frame (sidebar, top
// bar) and route #/page?query to the page modules. Admin pages are drawn
// only for admins; the API refuses their data to anyone else anyway.
import * as api from "./api.js";
import { h, clear, button, notice } from "./ui.js";
import * as loginPage from "./pages/login.js";
import * as sessionsPage from "./pages/sessions.js";
import * as storagePage from "./pages/storage.js";
import * as usersPage from "./pages/users.js";
import * as maintenancePage from "./pages/maintenance.js";
import * as infoPage from "./pages/information.js";

const pages = {
  sessions: { title: "Sessions", page: sessionsPage },
  data: { title: "Data & Storage", page: storagePage },
  users: { title: "Users", page: usersPage, admin: true },
  maintenance: { title: "Maintenance", page: maintenancePage, admin: true },
  info: { title: "Information", page: infoPage, admin: true },
};
const userMenu = ["sessions", "data"];
const adminMenu = ["users", "maintenance", "info"];

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

function showLogin(message) {
  me = null;
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

function frame(current) {
  const link = (key) => h("a", { href: `#/${key}`, class: key === current ? "active" : "", id: `nav-${key}` }, pages[key].title);
  const side = h("nav", { class: "sidebar" },
    h("div", { class: "brand" }, "Berth"),
    h("div", { class: "menu-group" }, userMenu.map(link)),
    isAdmin(me) ? h("div", { class: "menu-group admin", id: "admin-menu" }, h("div", { class: "menu-title" }, "Administration"), adminMenu.map(link)) : null,
  );
  const top = h("header", { class: "topbar" },
    h("h1", { id: "page-title" }, pages[current] ? pages[current].title : "Not found"),
    h("span", { class: "spacer" }),
    h("span", { class: "who", id: "whoami" }, `${me.email} (${me.role})`),
    button("LOG OUT", logout, { id: "logout", class: "secondary" }),
  );
  const main = h("main", { id: "page" });
  const banner = me.need_password_change
    ? notice("info", "An administrator asked you to change your password (berth passwd, or POST /v1/auth/password).")
    : null;
  clear(root, h("div", { class: "layout" }, side, h("div", { class: "content" }, top, banner, main)));
  return main;
}

async function route() {
  if (!me) return;
  const { name, params } = parseHash();
  const entry = pages[name];
  const main = frame(name);
  document.title = `${entry ? entry.title : "Not found"} · Berth console`;
  if (!entry) {
    main.append(notice("error", `There is no page "${name}".`));
    return;
  }
  if (entry.admin && !isAdmin(me)) {
    main.append(notice("error", `${entry.title} is for administrators only; you are logged in as ${me.role}.`));
    return;
  }
  try {
    await entry.page.render(main, { me, isAdmin: isAdmin(me), isSuperadmin: me.role === "superadmin", params, navigate: (p) => navigate(name, p) });
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
