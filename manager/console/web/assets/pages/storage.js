// Data & Storage page: the caller's folders (own, shared, and their groups'
// folders without invitation) with type and permission, NEW FOLDER (type
// Group, target group and permission for admins), sharing by invitation,
// and the invitations sent to the caller.
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, toast, errorText, field, openDialog, confirmDialog } from "../ui.js";
import { bytes, time } from "../format.js";

const permLabel = { ro: "R", rw: "RW", wd: "RW-D" };
const permTitle = { ro: "Read only", rw: "Read & write", wd: "Read, write & delete" };

// notOffered is the page's message when this manager has no folder API yet.
function notOffered(what, e) {
  return notice("info", `${what} is not available on this manager: ${e.message} (HTTP ${e.status}). `,
    "Storage folders need a manager version that serves /v1/folders.");
}

export async function render(main, ctx) {
  const msg = h("div", { id: "storage-message" });
  const folders = h("div", { id: "folders-table" });
  const invitations = h("section", { id: "invitations" });
  const newFolder = button("NEW FOLDER", async () => {
    if (await newFolderDialog(ctx)) await load();
  }, { id: "new-folder" });
  main.append(h("div", { class: "toolbar" }, h("h2", {}, "Folders"), h("span", { class: "spacer" }), newFolder), msg, folders,
    h("h2", {}, "Invitations"), invitations);

  const load = async () => {
    clear(msg);
    let items;
    try {
      items = (await api.get("/v1/folders")).items || [];
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
      { title: "Name", cell: (f) => f.name },
      { title: "Host", cell: (f) => f.host },
      { title: "Type", cell: (f) => (f.type === "group" ? `Group${f.group ? ` (${f.group})` : ""}` : "User") },
      { title: "Owner", cell: (f) => f.owner || "" },
      { title: "Permission", cell: (f) => h("span", { class: "perm", title: permTitle[f.permission] || f.permission, "data-permission": f.permission }, permLabel[f.permission] || f.permission) },
      { title: "Usage", cell: (f) => bytes(f.usage_bytes || 0) },
      { title: "Created", cell: (f) => time(f.created_at) },
      { title: "Controls", class: "controls", cell: (f) => h("span", { class: "controls" },
        f.type === "user" && f.owner === ctx.me.email ? iconButton("share", `Share ${f.name}`, () => inviteDialog(f), { "data-action": "share", "data-folder": f.name }) : null,
        iconButton("trash", `Delete ${f.name}`, async () => {
          if (!(await confirmDialog("Delete folder", `Delete the folder ${f.name} and every file in it?`))) return;
          try {
            await api.del(`/v1/folders/${encodeURIComponent(f.id)}`);
            toast(`Folder ${f.name} deleted`);
            await load();
          } catch (e) {
            clear(msg, notice("error", `Cannot delete ${f.name}: ${errorText(e)}`));
          }
        }, { class: "danger", "data-action": "delete", "data-folder": f.name })) },
    ], items, { id: "folders-list", empty: "No folders yet: NEW FOLDER makes one." }));
    await loadInvitations();
  };

  const loadInvitations = async () => {
    let items;
    try {
      items = (await api.get("/v1/invitations")).items || [];
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
    clear(invitations, table([
      { title: "Folder", cell: (i) => i.folder_name || i.folder || i.folder_id || "" },
      { title: "From", cell: (i) => i.inviter || "" },
      { title: "To", cell: (i) => i.invitee || "" },
      { title: "Permission", cell: (i) => permLabel[i.permission] || i.permission || "" },
      { title: "Status", cell: (i) => i.state || i.status || "" },
      { title: "Controls", class: "controls", cell: (i) => (i.invitee === ctx.me.email && ((i.state || i.status || "pending") === "pending")
        ? h("span", { class: "controls" }, button("ACCEPT", answer(i, "accept"), { class: "small" }), button("REJECT", answer(i, "reject"), { class: "small secondary" }))
        : "") },
    ], items, { id: "invitations-list", empty: "No invitations." }));
  };
  await load();
}

function hostNames(answer) {
  const list = Array.isArray(answer) ? answer : (answer && (answer.items || answer.hosts)) || [];
  return list.map((x) => (typeof x === "string" ? x : x.name || x.host || x.id)).filter(Boolean);
}

async function newFolderDialog(ctx) {
  let hosts = [];
  let groups = [];
  try {
    hosts = hostNames(await api.get("/v1/folder-hosts"));
  } catch { /* the host field says there is none */ }
  if (ctx.isAdmin) {
    groups = await api.listAll(`/v1/domains/${encodeURIComponent(ctx.me.domain)}/groups`).catch(() => []);
  }
  const name = field("Folder name", h("input", { type: "text", id: "folder-name" }));
  const host = field("Host", h("select", { id: "folder-host" }, hosts.length ? hosts.map((x) => h("option", { value: x }, x)) : h("option", { value: "" }, "no host is allowed for you")));
  const typeSel = h("select", { id: "folder-type" }, h("option", { value: "user" }, "User"), ctx.isAdmin ? h("option", { value: "group" }, "Group") : null);
  const type = field("Type", typeSel, ctx.isAdmin ? undefined : "Group folders are created by administrators.");
  const group = field("Target group", h("select", { id: "folder-group" }, groups.map((g) => h("option", { value: g.name }, g.name))));
  const perm = field("Permission", h("select", { id: "folder-permission" },
    h("option", { value: "rw" }, "Read & write"), h("option", { value: "ro" }, "Read only"), h("option", { value: "wd" }, "Read, write & delete")));
  const syncType = () => { group.hidden = typeSel.value !== "group"; };
  typeSel.addEventListener("change", syncType);
  syncType();
  const msg = h("div", { class: "dialog-message", id: "folder-message" });
  const fields = { name, host, type, group, permission: perm };
  return openDialog({ title: "Create a new storage folder", id: "folder-dialog" }, (close) => ({
    body: [msg, name, host, type, group, perm],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CREATE", async () => {
      for (const f of Object.values(fields)) f.setError();
      clear(msg);
      const body = { name: name.input.value.trim(), host: host.input.value, type: typeSel.value, permission: perm.input.value };
      if (!body.name) { name.setError("Folder name is required."); return; }
      if (!body.host) { host.setError("No folder host is allowed for you; ask an administrator."); return; }
      if (body.type === "group") {
        body.group = group.input.value;
        if (!body.group) { group.setError("Choose the group the folder belongs to."); return; }
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
  const invitee = field("Invitee (email)", h("input", { type: "email", id: "invitee" }));
  const perm = field("Permission", h("select", { id: "invite-permission" },
    h("option", { value: "ro" }, "Read only"), h("option", { value: "rw" }, "Read & write"), h("option", { value: "wd" }, "Read, write & delete")));
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: `Share ${folder.name}`, id: "invite-dialog" }, (close) => ({
    body: [msg, invitee, perm],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("INVITE", async () => {
      invitee.setError();
      clear(msg);
      if (!invitee.input.value.trim()) { invitee.setError("Whom to invite is required."); return; }
      try {
        await api.post(`/v1/folders/${encodeURIComponent(folder.id)}/invitations`, { invitee: invitee.input.value.trim(), permission: perm.input.value });
        toast(`Invited ${invitee.input.value.trim()}`);
        close(true);
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.invitee) invitee.setError(fe.invitee);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "invite-submit" })],
  }));
}
