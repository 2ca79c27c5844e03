// Data & Storage page: the caller's folders newest first (own, shared, and
// their groups' folders without invitation) with type and permission, NEW
// FOLDER (a user folder is its owner's; a group folder, for admins, names
// its group and what the members may do: read only or read & write),
// sharing by invitation (read only or read & write), the invitations sent
// and received with accept, reject and revoke, and a file browser per
// folder (#/data?folder=ID&path=DIR, pages/files.js).
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, toast, errorText, field, openDialog, confirmDialog, shortId, clip } from "../ui.js";
import { bytes, time, permLabel, permTitle } from "../format.js";
import * as files from "./files.js";

// notOffered is the page's message when this manager has no folder API yet.
function notOffered(what, e) {
  return notice("info", `${what} is not available on this manager: ${e.message} (HTTP ${e.status}). `,
    "Storage folders need a manager version that serves /v1/folders.");
}

export async function render(main, ctx) {
  if (ctx.params.get("folder")) {
    await files.render(main, ctx);
    return;
  }
  const msg = h("div", { id: "storage-message" });
  const folders = h("div", { id: "folders-table" });
  const invitations = h("section", { id: "invitations" });
  const newFolder = button("NEW FOLDER", async () => {
    if (await newFolderDialog(ctx)) await load();
  }, { id: "new-folder" });
  main.append(h("div", { class: "toolbar" }, h("h2", {}, "Folders"), h("span", { class: "spacer" }), newFolder), msg, folders,
    h("div", { class: "toolbar section" }, h("h2", {}, "Invitations")), invitations);

  const browse = (f) => ctx.navigate(new URLSearchParams({ folder: f.id }));
  const load = async () => {
    clear(msg);
    let items;
    try {
      items = await api.listAll("/v1/folders");
    } catch (e) {
      if (e.status === 404) {
        clear(folders, notOffered("Data & Storage", e));
        newFolder.disabled = true;
        return;
      }
      clear(msg, notice("error", `Cannot list folders: ${errorText(e)}`));
      return;
    }
    clear(folders, table([
      { title: "Name", cell: (f) => h("div", { class: "stack" },
        h("a", { href: `#/data?folder=${encodeURIComponent(f.id)}`, class: "folder-link clip narrow", title: f.name, "data-folder": f.name }, f.name), shortId(f.id)) },
      { title: "Host", cell: (f) => f.host },
      { title: "Type", cell: (f) => (f.type === "group" ? `Group${f.group ? ` (${f.group})` : ""}` : "User") },
      { title: "Owner", cell: (f) => clip(f.owner || "", { class: "narrow" }) },
      { title: "Permission", cell: (f) => h("span", { class: "perm", title: permTitle[f.permission] || f.permission, "data-permission": f.permission }, permLabel[f.permission] || f.permission) },
      { title: "Usage", cell: (f) => h("span", { class: f.over_quota ? "over-quota" : "" }, bytes(f.usage_bytes || 0), f.over_quota ? " (over quota)" : "") },
      { title: "Created", cell: (f) => time(f.created_at) },
      { title: "Controls", class: "controls", cell: (f) => h("span", { class: "controls" },
        iconButton("folder", `Browse ${f.name}`, () => browse(f), { "data-action": "browse", "data-folder": f.name }),
        f.type === "user" && f.owner === ctx.me.email ? iconButton("share", `Share ${f.name}`, async () => {
          if (await inviteDialog(f)) await loadInvitations();
        }, { "data-action": "share", "data-folder": f.name }) : null,
        f.permission === "wd" || ctx.isAdmin ? iconButton("trash", `Delete ${f.name}`, async () => {
          if (!(await confirmDialog("Delete folder", `Delete the folder ${f.name} and every file in it?`))) return;
          try {
            await api.del(`/v1/folders/${encodeURIComponent(f.id)}`);
            toast(`Folder ${f.name} deleted`);
            await load();
          } catch (e) {
            clear(msg, notice("error", `Cannot delete ${f.name}: ${errorText(e)}`));
          }
        }, { class: "danger", "data-action": "delete", "data-folder": f.name }) : null) },
    ], items, { id: "folders-list", empty: "No folders yet: NEW FOLDER makes one." }));
    await loadInvitations();
  };

  const loadInvitations = async () => {
    let items;
    try {
      items = await api.listAll("/v1/invitations");
    } catch (e) {
      clear(invitations, e.status === 404 ? notOffered("Invitations", e) : notice("error", `Cannot list invitations: ${errorText(e)}`));
      return;
    }
    const answer = (inv, verb) => async () => {
      try {
        await api.post(`/v1/invitations/${encodeURIComponent(inv.id)}/${verb}`);
        toast(verb === "accept" ? "Invitation accepted" : "Invitation rejected");
        await load();
      } catch (e) {
        clear(msg, notice("error", `Cannot ${verb} the invitation: ${errorText(e)}`));
      }
    };
    const revoke = (inv, leaving) => async () => {
      const what = leaving ? `Leave the shared folder ${inv.folder_name}? It is no longer listed for you.`
        : `Revoke the invitation of ${inv.invitee} to ${inv.folder_name}? ${inv.state === "accepted" ? "They lose access to the folder." : ""}`;
      if (!(await confirmDialog(leaving ? "Leave folder" : "Revoke invitation", what, leaving ? "LEAVE" : "REVOKE"))) return;
      try {
        await api.del(`/v1/invitations/${encodeURIComponent(inv.id)}`);
        toast(leaving ? `You left ${inv.folder_name}` : `Invitation of ${inv.invitee} revoked`);
        await load();
      } catch (e) {
        clear(msg, notice("error", `Cannot ${leaving ? "leave" : "revoke"}: ${errorText(e)}`));
      }
    };
    const me = ctx.me.email;
    clear(invitations, table([
      { title: "Folder", cell: (i) => clip(i.folder_name || i.folder || "", { class: "narrow" }) },
      { title: "From", cell: (i) => clip(i.inviter || "", { class: "narrow" }) },
      { title: "To", cell: (i) => clip(i.invitee || "", { class: "narrow" }) },
      { title: "Permission", cell: (i) => h("span", { class: "perm", title: permTitle[i.permission] || "" }, permLabel[i.permission] || i.permission || "") },
      { title: "State", cell: (i) => h("span", { class: `state ${i.state}`, "data-state": i.state }, i.state || "") },
      { title: "Sent", cell: (i) => time(i.created_at) },
      { title: "Controls", class: "controls", cell: (i) => h("span", { class: "controls" },
        i.invitee === me && i.state === "pending" ? [button("ACCEPT", answer(i, "accept"), { class: "small", "data-action": "accept", "data-invitation": i.id }),
          button("REJECT", answer(i, "reject"), { class: "small secondary", "data-action": "reject", "data-invitation": i.id })] : null,
        i.invitee === me && i.state === "accepted" ? button("LEAVE", revoke(i, true), { class: "small secondary", "data-action": "leave", "data-invitation": i.id }) : null,
        i.inviter === me && i.state !== "rejected" ? button("REVOKE", revoke(i, false), { class: "small danger", "data-action": "revoke", "data-invitation": i.id }) : null) },
    ], items, { id: "invitations-list", empty: "No invitations sent to you or by you." }));
  };
  await load();
}

function hostNames(answer) {
  const list = Array.isArray(answer) ? answer : (answer && (answer.items || answer.hosts)) || [];
  return list.map((x) => (typeof x === "string" ? x : x.name || x.host || x.id)).filter(Boolean);
}

// targetGroups are the groups an admin may make a folder for: their
// domain's, or every domain's for a superadmin (value "domain/group").
async function targetGroups(ctx) {
  if (!ctx.isAdmin) return [];
  let domains = [ctx.me.domain];
  if (ctx.isSuperadmin) domains = (await api.listAll("/v1/domains").catch(() => [])).map((d) => d.name);
  const per = await Promise.all(domains.map((d) => api.listAll(`/v1/domains/${encodeURIComponent(d)}/groups`).catch(() => [])));
  return per.flat().filter((g) => g.is_active !== false).map((g) => ({ domain: g.domain, name: g.name }));
}

async function newFolderDialog(ctx) {
  let hosts = [];
  try {
    hosts = hostNames(await api.get("/v1/folder-hosts"));
  } catch { /* the host field says there is none */ }
  const groups = await targetGroups(ctx);
  const name = field("Folder name", h("input", { type: "text", id: "folder-name" }));
  const host = field("Host", h("select", { id: "folder-host" }, hosts.length ? hosts.map((x) => h("option", { value: x }, x)) : h("option", { value: "" }, "no host is allowed for you")));
  const typeSel = h("select", { id: "folder-type" }, h("option", { value: "user" }, "User"), ctx.isAdmin ? h("option", { value: "group" }, "Group") : null);
  const type = field("Type", typeSel, ctx.isAdmin ? undefined : "Group folders are created by administrators.");
  const multiDomain = new Set(groups.map((g) => g.domain)).size > 1 || (groups[0] && groups[0].domain !== ctx.me.domain);
  const group = field("Target group", h("select", { id: "folder-group" },
    groups.length ? groups.map((g) => h("option", { value: `${g.domain}/${g.name}` }, multiDomain ? `${g.name} (domain ${g.domain})` : g.name))
      : h("option", { value: "" }, "no group yet: make one in Administration → Groups")),
  "Every member of the group sees the folder, without an invitation.");
  const perm = field("Members' permission", h("select", { id: "folder-permission" },
    h("option", { value: "ro" }, "Read only"), h("option", { value: "rw" }, "Read & write")));
  const ownNote = h("div", { class: "hint", id: "folder-user-note" }, "A user folder is yours (read, write & delete); share it with others by invitation.");
  const syncType = () => {
    const isGroup = typeSel.value === "group";
    group.hidden = !isGroup;
    perm.hidden = !isGroup;
    ownNote.hidden = isGroup;
  };
  typeSel.addEventListener("change", syncType);
  syncType();
  const msg = h("div", { class: "dialog-message", id: "folder-message" });
  const fields = { name, host, type, group, domain: group, permission: perm };
  return openDialog({ title: "Create a new storage folder", id: "folder-dialog" }, (close) => ({
    body: [msg, name, host, type, ownNote, group, perm],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CREATE", async () => {
      for (const f of [name, host, type, group, perm]) f.setError();
      clear(msg);
      const body = { name: name.input.value.trim(), host: host.input.value, type: typeSel.value };
      if (!body.name) { name.setError("Folder name is required."); return; }
      if (!body.host) { host.setError("No folder host is allowed for you; ask an administrator."); return; }
      if (body.type === "group") {
        const v = group.input.value;
        if (!v) { group.setError("Choose the group the folder belongs to."); return; }
        const [domain, g] = [v.slice(0, v.indexOf("/")), v.slice(v.indexOf("/") + 1)];
        body.group = g;
        if (domain !== ctx.me.domain) body.domain = domain;
        body.permission = perm.input.value;
      }
      try {
        close(await api.post("/v1/folders", body));
      } catch (e) {
        const fe = e.fieldErrors();
        let placed = false;
        for (const [k, r] of Object.entries(fe)) if (fields[k]) { fields[k].setError(r); placed = true; }
        if (!placed) clear(msg, notice("error", e.status === 404 ? `Storage folders are not available on this manager (${e.message}).` : errorText(e)));
      }
    }, { id: "folder-submit" })],
  }));
}

function inviteDialog(folder) {
  const invitee = field("Invitee (email)", h("input", { type: "email", id: "invitee" }), "A user of your domain.");
  const perm = field("Permission", h("select", { id: "invite-permission" },
    h("option", { value: "ro" }, "Read only"), h("option", { value: "rw" }, "Read & write")),
  "The folder stays yours: only you delete it.");
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: `Share ${folder.name}`, id: "invite-dialog" }, (close) => ({
    body: [msg, invitee, perm],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("INVITE", async () => {
      invitee.setError();
      perm.setError();
      clear(msg);
      if (!invitee.input.value.trim()) { invitee.setError("Whom to invite is required."); return; }
      try {
        await api.post(`/v1/folders/${encodeURIComponent(folder.id)}/invitations`, { invitee: invitee.input.value.trim(), permission: perm.input.value });
        toast(`Invited ${invitee.input.value.trim()}`);
        close(true);
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.invitee) invitee.setError(fe.invitee);
        else if (fe.permission) perm.setError(fe.permission);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "invite-submit" })],
  }));
}
