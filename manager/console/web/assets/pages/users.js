// Users page (admins; monitors read it): USERS (Active / Inactive, newest
// first), CREDENTIALS and RESOURCE POLICIES tabs, each with a "..." menu on
// the far right of the tab header that exports the tab as CSV.
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, tableBody, tabs, moreMenu, toast, errorText, confirmDialog, shortId, clip } from "../ui.js";
import { exportDialog } from "../export.js";
import { time, seconds, bytes, INF } from "../format.js";
import { createUserDialog, updateUserDialog, userDetailsDialog } from "./user_dialogs.js";
import { policyDialog, resourcesCell } from "./policy_dialog.js";
import { keypairCreateDialog, keypairUpdateDialog } from "./keypair_dialogs.js";

const tabList = [
  { key: "users", label: "USERS" },
  { key: "credentials", label: "CREDENTIALS" },
  { key: "policies", label: "RESOURCE POLICIES" },
];

export async function render(main, ctx) {
  const tab = tabList.some((t) => t.key === ctx.params.get("tab")) ? ctx.params.get("tab") : "users";
  const status = ctx.params.get("status") === "inactive" ? "inactive" : "active";
  const select = (key, extra = {}) => ctx.navigate(new URLSearchParams({ tab: key, ...extra }));
  const body = h("section", { class: "tab-body", id: `${tab}-tab` });
  const exporters = {
    users: () => exportDialog({ title: "Export users as CSV", path: "/v1/export/users.csv", query: { status }, defaultName: `users-${status}` }),
    credentials: () => exportDialog({ title: "Export credentials as CSV", path: "/v1/export/keypairs.csv", query: { is_active: String(status === "active") }, defaultName: "keypairs" }),
    policies: () => exportDialog({ title: "Export resource policies as CSV", path: "/v1/export/resource-policies.csv", defaultName: "resource-policies" }),
  };
  const more = moreMenu("tab-more", [{ id: "export-csv", label: "Export CSV", action: exporters[tab] }]);
  main.append(tabs(tabList, tab, (k) => select(k)), body);
  if (tab === "users") await usersTab(body, ctx, status, (s) => select("users", { status: s }), more);
  else if (tab === "credentials") await credentialsTab(body, ctx, status, (s) => select("credentials", { status: s }), more);
  else await policiesTab(body, ctx, more);
}

function subTabs(status, onSelect, right) {
  return h("div", { class: "toolbar" },
    h("div", { class: "subtabs", role: "tablist" },
      ["active", "inactive"].map((s) => h("button", {
        type: "button", role: "tab", id: `status-${s}`, class: s === status ? "subtab active" : "subtab",
        "aria-selected": s === status ? "true" : "false", onclick: () => onSelect(s),
      }, s === "active" ? "Active" : "Inactive"))),
    h("span", { class: "spacer" }), right);
}

async function usersTab(body, ctx, status, selectStatus, more) {
  const msg = h("div", { id: "users-message" });
  const emailSearch = h("input", { type: "search", id: "search-email", placeholder: "Search ID", "aria-label": "Search by email" });
  const nameSearch = h("input", { type: "search", id: "search-username", placeholder: "Search name", "aria-label": "Search by name" });
  const holder = h("div", { id: "users-table" });
  const create = ctx.isAdmin ? button("CREATE USER", async () => {
    const created = await createUserDialog(ctx);
    if (created) {
      toast(`User ${created.user.email} created`);
      await load();
    }
  }, { id: "create-user" }) : null;
  let seq = 0;
  const columns = [
    { title: "ID", head: h("div", { class: "th-search" }, h("span", {}, "ID (email)"), emailSearch), cell: (u) => clip(u.email) },
    { title: "Name", head: h("div", { class: "th-search" }, h("span", {}, "Name"), nameSearch), cell: (u) => clip(u.username, { class: "narrow" }) },
    { title: "Full name", cell: (u) => clip(u.full_name, { class: "narrow" }) },
    { title: "Role", cell: (u) => u.role },
    { title: "Groups", cell: (u) => h("span", { class: "wrap" }, (u.groups || []).join(", ")) },
    { title: "Created", cell: (u) => time(u.created_at) },
    { title: "Controls", class: "controls", cell: (u) => h("span", { class: "controls" },
      iconButton("info", `Details of ${u.email}`, () => userDetailsDialog(u.email), { class: "green", "data-action": "details", "data-user": u.email }),
      ctx.isAdmin ? iconButton("gear", `Update ${u.email}`, async () => {
        if (await updateUserDialog(ctx, u.email)) await load();
      }, { "data-action": "update", "data-user": u.email }) : null,
      ctx.isAdmin && u.status === "active" ? iconButton("trash", `Deactivate ${u.email}`, async () => {
        if (!(await confirmDeactivate(u.email))) return;
        try {
          await api.patch(`/v1/users/${encodeURIComponent(u.email)}`, { status: "inactive" });
          toast(`User ${u.email} deactivated; it is in the Inactive tab`);
          await load();
        } catch (e) {
          clear(msg, notice("error", `Cannot deactivate ${u.email}: ${errorText(e)}`));
        }
      }, { class: "danger", "data-action": "deactivate", "data-user": u.email }) : null),
    },
  ];
  const tbl = table(columns, [], { id: "users-list", empty: "Loading…" });
  holder.append(tbl);
  const load = async () => {
    const mine = ++seq;
    const q = new URLSearchParams({ status });
    if (emailSearch.value.trim()) q.set("email", emailSearch.value.trim());
    if (nameSearch.value.trim()) q.set("username", nameSearch.value.trim());
    let users;
    try {
      users = await api.listAll(`/v1/users?${q}`);
    } catch (e) {
      clear(msg, notice("error", `Cannot list users: ${errorText(e)}`));
      return;
    }
    if (mine !== seq) return; // a newer search answered first
    // Only the rows change: the header, with the search boxes being typed
    // in, stays as it is.
    const old = tbl.tBodies[0];
    old.replaceWith(tableBody(columns, users, status === "active" ? "No active users match." : "No inactive users match."));
  };
  let timer;
  const onSearch = () => { clearTimeout(timer); timer = setTimeout(load, 250); };
  emailSearch.addEventListener("input", onSearch);
  nameSearch.addEventListener("input", onSearch);
  body.append(subTabs(status, selectStatus, [create, more]), msg, holder);
  await load();
}

function confirmDeactivate(email) {
  return confirmDialog("Deactivate user",
    `Deactivate ${email}? The user can no longer log in and every one of their keypairs is deactivated. Users are never deleted; an admin can reactivate them from the Inactive tab.`);
}

async function credentialsTab(body, ctx, status, selectStatus, more) {
  const msg = h("div", { id: "credentials-message" });
  const holder = h("div");
  const load = async () => {
    let keypairs, policies;
    try {
      [keypairs, policies] = await Promise.all([
        api.listAll(`/v1/keypairs?is_active=${status === "active"}`),
        api.listAll("/v1/resource-policies"),
      ]);
    } catch (e) {
      clear(msg, notice("error", `Cannot list credentials: ${errorText(e)}`));
      return;
    }
    const byName = Object.fromEntries(policies.map((p) => [p.name, p]));
    clear(holder, table([
      { title: "Access key", cell: (k) => shortId(k.access_key, 12) },
      { title: "User", cell: (k) => h("div", { class: "stack" }, clip(k.user, { class: "narrow" }), k.is_admin ? h("span", { class: "badge" }, "admin keypair") : null) },
      { title: "Resource policy", cell: (k) => k.resource_policy },
      { title: "Resources", cell: (k) => (byName[k.resource_policy] ? resourcesCell(byName[k.resource_policy]) : "") },
      { title: "Rate limit", cell: (k) => (k.rate_limit ? `${k.rate_limit} / 15 min` : "none") },
      { title: "Sessions", cell: (k) => h("span", { "data-sessions": k.access_key }, String(k.concurrency_used)) },
      { title: "Created", cell: (k) => time(k.created_at) },
      { title: "Last used", cell: (k) => time(k.last_used) || "never" },
      ctx.isAdmin ? { title: "Controls", class: "controls", cell: (k) => h("span", { class: "controls" },
        iconButton("gear", `Update ${k.access_key}`, async () => {
          if (await keypairUpdateDialog(k, policies)) await load();
        }, { "data-action": "update", "data-key": k.access_key }),
        iconButton("trash", `Delete ${k.access_key}`, async () => {
          if (!(await confirmDialog("Delete credential", `Delete the keypair ${k.access_key} of ${k.user}? Programs using it stop working.`))) return;
          try {
            await api.del(`/v1/keypairs/${encodeURIComponent(k.access_key)}`);
            toast(`Keypair ${k.access_key} deleted`);
            await load();
          } catch (e) {
            clear(msg, notice("error", `Cannot delete ${k.access_key}: ${errorText(e)}`));
          }
        }, { class: "danger", "data-action": "delete", "data-key": k.access_key })),
      } : null,
    ].filter(Boolean), keypairs, { id: "credentials-list", empty: `No ${status} credentials.` }));
  };
  const add = ctx.isAdmin ? button("ADD CREDENTIAL", async () => {
    const policies = await api.listAll("/v1/resource-policies").catch(() => []);
    if (await keypairCreateDialog(policies)) await load();
  }, { id: "create-keypair" }) : null;
  body.append(subTabs(status, selectStatus, [add, more]), msg, holder);
  await load();
}

async function policiesTab(body, ctx, more) {
  const msg = h("div", { id: "policies-message" });
  const holder = h("div");
  const load = async () => {
    let policies;
    try {
      policies = await api.listAll("/v1/resource-policies");
    } catch (e) {
      clear(msg, notice("error", `Cannot list resource policies: ${errorText(e)}`));
      return;
    }
    clear(holder, table([
      { title: "Name", cell: (p) => clip(p.name, { class: "narrow" }) },
      { title: "Resources", cell: (p) => resourcesCell(p) },
      { title: "Containers / session", cell: (p) => String(p.max_containers_per_session) },
      { title: "Idle timeout", cell: (p) => seconds(p.idle_timeout) },
      { title: "Concurrent jobs", cell: (p) => (p.max_concurrent_sessions == null ? INF : String(p.max_concurrent_sessions)) },
      { title: "Max lifetime", cell: (p) => (p.max_session_lifetime ? seconds(p.max_session_lifetime) : INF) },
      { title: "Allowed hosts", cell: (p) => (p.allowed_vfolder_hosts || []).join(", ") || "none" },
      { title: "Folder capacity", cell: (p) => (p.max_vfolder_size == null ? INF : bytes(p.max_vfolder_size)) },
      { title: "Max folders", cell: (p) => String(p.max_vfolder_count) },
      // Policies are the whole cluster's: only a superadmin changes them.
      ctx.isSuperadmin ? { title: "Controls", class: "controls", cell: (p) => h("span", { class: "controls" },
        iconButton("gear", `Update ${p.name}`, async () => {
          if (await policyDialog(p)) await load();
        }, { "data-action": "update", "data-policy": p.name }),
        iconButton("trash", `Delete ${p.name}`, async () => {
          if (!(await confirmDialog("Delete resource policy", `Delete the resource policy ${p.name}?`))) return;
          try {
            await api.del(`/v1/resource-policies/${encodeURIComponent(p.name)}`);
            clear(msg);
            toast(`Resource policy ${p.name} deleted`);
            await load();
          } catch (e) {
            clear(msg, notice("error", `Cannot delete ${p.name}: ${errorText(e)}`));
          }
        }, { class: "danger", "data-action": "delete", "data-policy": p.name })),
      } : null,
    ].filter(Boolean), policies, { id: "policies-list", empty: "No resource policies." }));
  };
  const create = ctx.isSuperadmin ? button("CREATE POLICY", async () => {
    if (await policyDialog(null)) await load();
  }, { id: "create-policy" }) : null;
  const readOnly = h("div", { id: "policies-read-only" }, ctx.isSuperadmin ? null
    : notice("info", "Resource policies apply to the whole cluster: only a superadmin may create, change or delete them."));
  body.append(h("div", { class: "toolbar" }, h("span", { class: "spacer" }), create, more), readOnly, msg, holder);
  await load();
}
