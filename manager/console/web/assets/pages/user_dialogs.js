// The user dialogs of the Users tab: create (inline validation under each
// field), details (domain, groups) and update (user id disabled, "Active
// user?" and "Require password change?" switches).
import * as api from "../api.js";
import { h, clear, button, field, switchInput, openDialog, notice, errorText } from "../ui.js";
import { time } from "../format.js";

const maxLen = 64;

function roleSelect(ctx, value) {
  const roles = ["user", "admin", "monitor"];
  if (ctx.isSuperadmin) roles.push("superadmin");
  return h("select", { id: "user-role" }, roles.map((r) => h("option", { value: r, selected: r === value }, r)));
}

// applyProblem puts the API's field reasons under their fields and returns
// whether any field took one; the rest goes to the dialog's message line.
function applyProblem(err, fields, msg) {
  const fe = err.fieldErrors ? err.fieldErrors() : {};
  let placed = false;
  for (const [name, reasons] of Object.entries(fe)) {
    if (fields[name]) {
      fields[name].setError(reasons);
      placed = true;
    }
  }
  if (!placed) {
    // A 409 names the field it is about in its detail ("... email ..." or "... username ...").
    const d = (err.message || "").toLowerCase();
    if (err.status === 409 && d.includes("email") && fields.email) fields.email.setError(err.message);
    else if (err.status === 409 && d.includes("username") && fields.username) fields.username.setError(err.message);
    else clear(msg, notice("error", errorText(err)));
  }
}

export function createUserDialog(ctx) {
  const f = {
    email: field("Email (user ID)", h("input", { type: "email", id: "new-user-email", autocomplete: "off" })),
    username: field("Username", h("input", { type: "text", id: "new-user-username", autocomplete: "off" })),
    full_name: field("Full name (optional)", h("input", { type: "text", id: "new-user-fullname", autocomplete: "off" })),
    password: field("Password", h("input", { type: "password", id: "new-user-password", autocomplete: "new-password" }),
      "At least 8 characters with at least one letter, one digit and one special character."),
    confirm: field("Password confirmation", h("input", { type: "password", id: "new-user-confirm", autocomplete: "new-password" })),
    role: field("Role", roleSelect(ctx, "user")),
    resource_policy: field("Resource policy of the first keypair", h("select", { id: "new-user-policy" }, h("option", { value: "default" }, "default"))),
  };
  api.listAll("/v1/resource-policies").then((ps) => {
    clear(f.resource_policy.input, ps.map((p) => h("option", { value: p.name, selected: p.name === "default" }, p.name)));
  }).catch(() => {});
  const msg = h("div", { class: "dialog-message", id: "create-user-message" });
  return openDialog({ title: "Create user", id: "create-user-dialog" }, (close) => {
    const submit = async () => {
      for (const x of Object.values(f)) x.setError();
      clear(msg);
      const v = (k) => f[k].input.value;
      const bad = {};
      const req = (k, label) => { if (!v(k).trim()) bad[k] = `${label} is required.`; };
      req("email", "Email");
      req("username", "Username");
      if (!v("password")) bad.password = "Password is required.";
      if (!v("confirm")) bad.confirm = "Confirm the password: type it again.";
      else if (v("password") !== v("confirm")) bad.confirm = "The passwords do not match.";
      if ([...v("email").trim()].length > maxLen) bad.email = `Email must be at most ${maxLen} characters.`;
      if ([...v("username").trim()].length > maxLen) bad.username = `Username must be at most ${maxLen} characters.`;
      if ([...v("full_name").trim()].length > maxLen) bad.full_name = `Full name must be at most ${maxLen} characters.`;
      if (Object.keys(bad).length) {
        for (const [k, m] of Object.entries(bad)) f[k].setError(m);
        return;
      }
      const body = {
        email: v("email").trim(), username: v("username").trim(), password: v("password"),
        role: v("role"), resource_policy: v("resource_policy"),
      };
      if (v("full_name").trim()) body.full_name = v("full_name").trim();
      try {
        const created = await api.post("/v1/users", body);
        close(created);
        await showSecret(created);
      } catch (e) {
        applyProblem(e, f, msg);
      }
    };
    return {
      body: [msg, ...Object.values(f)],
      actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CREATE USER", submit, { id: "create-user-submit" })],
    };
  });
}

function showSecret(created) {
  const kp = created.keypair || {};
  return openDialog({ title: "User created", id: "user-created-dialog" }, (close) => ({
    body: [
      h("p", {}, `${created.user.email} can log in now. Its first keypair is below; the secret key is shown only this once.`),
      h("dl", { class: "details" }, h("dt", {}, "Access key"), h("dd", { id: "created-access-key" }, h("code", {}, kp.access_key)),
        h("dt", {}, "Secret key"), h("dd", {}, h("code", {}, kp.secret_key))),
    ],
    actions: [button("OKAY", () => close(true), { id: "user-created-ok" })],
  }));
}

export async function userDetailsDialog(email) {
  let u;
  try {
    u = await api.get(`/v1/users/${encodeURIComponent(email)}`);
  } catch (e) {
    return openDialog({ title: "User details" }, (close) => ({ body: notice("error", errorText(e)), actions: [button("CLOSE", () => close())] }));
  }
  const row = (k, v) => [h("dt", {}, k), h("dd", { "data-field": k }, v === undefined || v === null || v === "" ? "—" : v)];
  return openDialog({ title: `User ${u.email}`, id: "user-details-dialog" }, (close) => ({
    body: h("dl", { class: "details" },
      row("Email", u.email), row("Username", u.username), row("Full name", u.full_name), row("Role", u.role),
      row("Status", u.status), row("Domain", u.domain), row("Groups", (u.groups || []).join(", ")),
      row("Keypairs", (u.keypairs || []).join(", ")), row("Require password change", u.need_password_change ? "yes" : "no"),
      row("Description", u.description), row("Created", time(u.created_at)), row("Modified", time(u.modified_at))),
    actions: [button("CLOSE", () => close(), { id: "user-details-close" })],
  }));
}

export async function updateUserDialog(ctx, email) {
  const u = await api.get(`/v1/users/${encodeURIComponent(email)}`);
  const active = switchInput("Active user?", u.status === "active", "user-active");
  const needPw = switchInput("Require password change?", u.need_password_change, "user-need-password-change");
  const f = {
    email: field("Email (user ID)", h("input", { type: "email", id: "edit-user-email", value: u.email, disabled: true })),
    username: field("Username", h("input", { type: "text", id: "edit-user-username", value: u.username })),
    full_name: field("Full name", h("input", { type: "text", id: "edit-user-fullname", value: u.full_name })),
    password: field("New password (leave empty to keep)", h("input", { type: "password", id: "edit-user-password", autocomplete: "new-password" })),
    confirm: field("New password confirmation", h("input", { type: "password", id: "edit-user-confirm", autocomplete: "new-password" })),
    role: field("Role", roleSelect(ctx, u.role)),
    description: field("Description", h("input", { type: "text", id: "edit-user-description", value: u.description })),
  };
  f.status = { setError: (m) => f.description.setError(m) };
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "Update user", id: "update-user-dialog" }, (close) => {
    const submit = async () => {
      for (const x of Object.values(f)) x.setError();
      clear(msg);
      const v = (k) => f[k].input.value;
      const bad = {};
      if (!v("username").trim()) bad.username = "Username is required.";
      if (v("password") || v("confirm")) {
        if (!v("confirm")) bad.confirm = "Confirm the new password: type it again.";
        else if (v("password") !== v("confirm")) bad.confirm = "The passwords do not match.";
      }
      for (const k of ["username", "full_name"]) if ([...v(k).trim()].length > maxLen) bad[k] = `At most ${maxLen} characters.`;
      if (Object.keys(bad).length) {
        for (const [k, m] of Object.entries(bad)) f[k].setError(m);
        return;
      }
      const body = {};
      if (v("username").trim() !== u.username) body.username = v("username").trim();
      if (v("full_name").trim() !== u.full_name) body.full_name = v("full_name").trim();
      if (v("description") !== u.description) body.description = v("description");
      if (v("role") !== u.role) body.role = v("role");
      if (v("password")) body.password = v("password");
      const status = active.input.checked ? "active" : "inactive";
      if (status !== u.status) body.status = status;
      if (needPw.input.checked !== u.need_password_change) body.need_password_change = needPw.input.checked;
      if (!Object.keys(body).length) { close(false); return; }
      try {
        close(await api.patch(`/v1/users/${encodeURIComponent(u.email)}`, body));
      } catch (e) {
        applyProblem(e, f, msg);
      }
    };
    return {
      body: [msg, ...Object.values(f).filter((x) => x.input), h("div", { class: "switches" }, active.el, needPw.el)],
      actions: [button("CANCEL", () => close(), { class: "secondary" }), button("UPDATE", submit, { id: "update-user-submit" })],
    };
  });
}
