// Groups page (Administration > Groups, the manual's projects): the groups
// of a domain with their members; admins create, update, deactivate and
// reactivate groups and add and remove members (searching users by email
// or name); monitors read. Superadmins also see every domain and create
// domains (#/groups?domain=NAME picks one).
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, toast, errorText, field, openDialog, switchInput, confirmDialog } from "../ui.js";
import { time } from "../format.js";

const enc = encodeURIComponent;

export async function render(main, ctx) {
  const msg = h("div", { id: "groups-message" });
  let domains = [{ name: ctx.me.domain }];
  if (ctx.isSuperadmin) {
    try {
      domains = await api.listAll("/v1/domains");
    } catch (e) {
      main.append(notice("error", `Cannot list domains: ${errorText(e)}`));
    }
  }
  const wanted = ctx.params.get("domain");
  const domain = domains.some((d) => d.name === wanted) ? wanted : ctx.me.domain;
  const pick = (d) => ctx.navigate(new URLSearchParams({ domain: d }));

  if (ctx.isSuperadmin) {
    const create = button("CREATE DOMAIN", async () => {
      const d = await domainDialog();
      if (d) pick(d.name);
    }, { id: "create-domain" });
    main.append(h("section", { class: "card", id: "domains-card" },
      h("div", { class: "card-head" }, h("h2", {}, "Domains"), h("span", { class: "spacer" }), create),
      table([
        { title: "Domain", cell: (d) => (d.name === domain ? h("b", { class: "current" }, d.name)
          : h("a", { href: `#/groups?domain=${enc(d.name)}`, class: "domain-link", "data-domain": d.name }, d.name)) },
        { title: "Description", cell: (d) => h("span", { class: "wrap" }, d.description || "") },
        { title: "Active", cell: (d) => (d.is_active === false ? "no" : "yes") },
        { title: "Created", cell: (d) => time(d.created_at) },
      ], domains, { id: "domains-list", empty: "No domains." })));
  }

  const holder = h("div", { id: "groups-table" });
  const create = ctx.isAdmin ? button("CREATE GROUP", async () => {
    const g = await groupDialog(domain, null);
    if (g) { toast(`Group ${g.name} created in ${domain}`); await load(); }
  }, { id: "create-group" }) : null;
  main.append(h("div", { class: "toolbar" }, h("h2", { id: "groups-heading" }, `Groups of domain ${domain}`), h("span", { class: "spacer" }), create), msg, holder);

  const load = async () => {
    let groups;
    try {
      groups = await api.listAll(`/v1/domains/${enc(domain)}/groups`);
    } catch (e) {
      clear(msg, notice("error", `Cannot list the groups of ${domain}: ${errorText(e)}`));
      return;
    }
    const details = await Promise.all(groups.map((g) => api.get(`/v1/domains/${enc(domain)}/groups/${enc(g.name)}`).catch(() => ({ ...g, members: null }))));
    clear(holder, table([
      { title: "Group", cell: (g) => h("b", {}, g.name) },
      { title: "Description", cell: (g) => h("span", { class: "wrap" }, g.description || "") },
      { title: "Status", cell: (g) => h("span", { class: `state ${g.is_active ? "active" : "inactive"}` }, g.is_active ? "active" : "inactive") },
      { title: "Members", cell: (g) => (g.members === null ? "?" : h("span", { class: "wrap", "data-members": g.name },
        g.members.length ? g.members.join(", ") : "none")) },
      { title: "Created", cell: (g) => time(g.created_at) },
      { title: "Controls", class: "controls", cell: (g) => h("span", { class: "controls" },
        iconButton("users", ctx.isAdmin ? `Members of ${g.name}` : `Members of ${g.name} (read-only)`, async () => {
          await membersDialog(ctx, domain, g.name);
          await load();
        }, { class: "green", "data-action": "members", "data-group": g.name }),
        ctx.isAdmin ? iconButton("gear", `Update ${g.name}`, async () => {
          if (await groupDialog(domain, g)) await load();
        }, { "data-action": "update", "data-group": g.name }) : null,
        ctx.isAdmin && g.is_active ? iconButton("trash", `Deactivate ${g.name}`, async () => {
          if (!(await confirmDialog("Deactivate group", `Deactivate ${g.name}? Its members keep their membership; the group can be made active again.`))) return;
          await patchGroup(domain, g.name, { is_active: false }, msg, `Group ${g.name} deactivated`);
          await load();
        }, { class: "danger", "data-action": "deactivate", "data-group": g.name }) : null,
        ctx.isAdmin && !g.is_active ? iconButton("undo", `Reactivate ${g.name}`, async () => {
          await patchGroup(domain, g.name, { is_active: true }, msg, `Group ${g.name} is active again`);
          await load();
        }, { "data-action": "reactivate", "data-group": g.name }) : null) },
    ], details, { id: "groups-list", empty: `No groups in ${domain} yet.` }));
  };
  await load();
}

async function patchGroup(domain, name, body, msg, done) {
  try {
    await api.patch(`/v1/domains/${enc(domain)}/groups/${enc(name)}`, body);
    toast(done);
  } catch (e) {
    clear(msg, notice("error", `Cannot change ${name}: ${errorText(e)}`));
  }
}

function domainDialog() {
  const name = field("Domain name", h("input", { type: "text", id: "domain-name" }), "Letters, digits, '.', '_' or '-'; it cannot change later.");
  const desc = field("Description (optional)", h("input", { type: "text", id: "domain-description" }));
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "Create domain", id: "domain-dialog" }, (close) => ({
    body: [msg, name, desc],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CREATE", async () => {
      name.setError();
      clear(msg);
      if (!name.input.value.trim()) { name.setError("Name the domain."); return; }
      try {
        const d = await api.post("/v1/domains", { name: name.input.value.trim(), description: desc.input.value.trim() });
        toast(`Domain ${d.name} created`);
        close(d);
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.name) name.setError(fe.name);
        else if (fe.description) desc.setError(fe.description);
        else if (e.status === 409) name.setError(e.message);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "domain-submit" })],
  }));
}

// groupDialog creates a group (existing null) or updates one's description
// and activity.
function groupDialog(domain, existing) {
  const name = field("Group name", h("input", { type: "text", id: "group-name", value: existing ? existing.name : "", disabled: !!existing }),
    existing ? "The name identifies the group and cannot change." : "Letters, digits, '.', '_' or '-'.");
  const desc = field("Description", h("input", { type: "text", id: "group-description", value: existing ? existing.description : "" }));
  const active = existing ? switchInput("Active group?", existing.is_active, "group-active") : null;
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: existing ? `Update group ${existing.name}` : `Create a group in ${domain}`, id: "group-dialog" }, (close) => ({
    body: [msg, name, desc, active ? h("div", { class: "switches" }, active.el) : null],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button(existing ? "UPDATE" : "CREATE", async () => {
      name.setError();
      desc.setError();
      clear(msg);
      try {
        if (existing) {
          const body = {};
          if (desc.input.value !== existing.description) body.description = desc.input.value;
          if (active.input.checked !== existing.is_active) body.is_active = active.input.checked;
          if (!Object.keys(body).length) { close(false); return; }
          close(await api.patch(`/v1/domains/${enc(domain)}/groups/${enc(existing.name)}`, body));
        } else {
          if (!name.input.value.trim()) { name.setError("Name the group."); return; }
          close(await api.post(`/v1/domains/${enc(domain)}/groups`, { name: name.input.value.trim(), description: desc.input.value.trim() }));
        }
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.name) name.setError(fe.name);
        else if (fe.description) desc.setError(fe.description);
        else if (e.status === 409) name.setError(e.message);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "group-submit" })],
  }));
}

// searchUsers finds users of the domain whose email or name contains text.
async function searchUsers(domain, text) {
  const q = (k) => api.get(`/v1/users?status=active&limit=20&${k}=${enc(text)}`).then((l) => l.items || []).catch(() => []);
  const [byEmail, byName] = await Promise.all([q("email"), q("username")]);
  const seen = new Map();
  for (const u of [...byEmail, ...byName]) if (u.domain === domain && !seen.has(u.email)) seen.set(u.email, u);
  return [...seen.values()];
}

async function membersDialog(ctx, domain, group) {
  const path = `/v1/domains/${enc(domain)}/groups/${enc(group)}`;
  const list = h("div", { id: "members-list" });
  const results = h("div", { id: "member-search-results" });
  const msg = h("div", { class: "dialog-message", id: "members-message" });
  const search = h("input", { type: "search", id: "member-search", placeholder: "Search users by email or name", autocomplete: "off" });
  let members = [];
  const change = async (body, done) => {
    clear(msg);
    try {
      members = (await api.post(`${path}/members`, body)).members || [];
      toast(done);
      draw();
      await find();
    } catch (e) {
      clear(msg, notice("error", errorText(e)));
    }
  };
  const draw = () => {
    clear(list, members.length
      ? h("ul", { class: "people" }, members.map((m) => h("li", { "data-member": m }, h("span", {}, m),
        ctx.isAdmin ? button("REMOVE", () => change({ remove: [m] }, `${m} removed from ${group}`), { class: "small secondary", "data-action": "remove-member", "data-user": m }) : null)))
      : h("p", { class: "hint" }, "No members yet."));
  };
  let seq = 0;
  const find = async () => {
    const text = search.value.trim();
    const mine = ++seq;
    if (!text) { clear(results); return; }
    const users = await searchUsers(domain, text);
    if (mine !== seq) return;
    const candidates = users.filter((u) => !members.includes(u.email));
    clear(results, candidates.length
      ? h("ul", { class: "people" }, candidates.map((u) => h("li", { "data-candidate": u.email },
        h("span", {}, u.email, h("span", { class: "hint" }, ` ${u.username}${u.full_name ? ` (${u.full_name})` : ""}`)),
        button("ADD", () => change({ add: [u.email] }, `${u.email} added to ${group}`), { class: "small", "data-action": "add-member", "data-user": u.email }))))
      : h("p", { class: "hint" }, `No user of ${domain} outside the group matches "${text}".`));
  };
  let timer;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(find, 200); });
  try {
    members = (await api.get(path)).members || [];
  } catch (e) {
    clear(msg, notice("error", errorText(e)));
  }
  draw();
  return openDialog({ title: `Members of ${group}`, id: "members-dialog" }, (close) => ({
    body: [msg, h("h3", {}, "Members"), list,
      ctx.isAdmin ? [h("h3", {}, "Add a member"), search, results] : null],
    actions: [button("DONE", () => close(true), { id: "members-done" })],
  }));
}
