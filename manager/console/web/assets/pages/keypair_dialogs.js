// Credentials tab dialogs: add a keypair for a user (the secret is shown
// once), and update a keypair's policy, rate limit and activity.
import * as api from "../api.js";
import { h, clear, button, field, switchInput, openDialog, notice, errorText } from "../ui.js";

function policySelect(id, policies, value) {
  return h("select", { id }, policies.map((p) => h("option", { value: p.name, selected: p.name === value }, p.name)));
}

export function keypairCreateDialog(policies) {
  const user = field("User (email)", h("input", { type: "email", id: "keypair-user" }));
  const policy = field("Resource policy", policySelect("keypair-policy", policies, "default"));
  const admin = switchInput("Admin keypair? (only for admin users)", false, "keypair-admin");
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "Add credential", id: "keypair-create-dialog" }, (close) => ({
    body: [msg, user, policy, admin.el],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("ADD", async () => {
      user.setError();
      clear(msg);
      if (!user.input.value.trim()) { user.setError("User is required."); return; }
      try {
        const kp = await api.post("/v1/keypairs", { user: user.input.value.trim(), resource_policy: policy.input.value, is_admin: admin.input.checked });
        clear(msg, notice("ok", "Keypair created. The secret key is shown only now: ", h("code", {}, kp.access_key), " / ", h("code", { id: "new-secret" }, kp.secret_key)));
        user.input.disabled = true;
        return;
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.user) user.setError(fe.user);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "keypair-create-submit" }), button("DONE", () => close(true), { class: "secondary" })],
  }));
}

export function keypairUpdateDialog(k, policies) {
  const ak = field("Access key", h("input", { type: "text", value: k.access_key, disabled: true }));
  const policy = field("Resource policy", policySelect("keypair-edit-policy", policies, k.resource_policy));
  const rate = field("Rate limit (requests per 15 minutes, 0 = none)", h("input", { type: "number", id: "keypair-rate", min: 0, step: 1, value: k.rate_limit }));
  const active = switchInput("Active?", k.is_active, "keypair-active");
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "Update credential", id: "keypair-update-dialog" }, (close) => ({
    body: [msg, ak, policy, rate, active.el],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("UPDATE", async () => {
      rate.setError();
      clear(msg);
      const r = Number(rate.input.value);
      if (!Number.isInteger(r) || r < 0) { rate.setError("Enter a whole number, 0 or more."); return; }
      const body = {};
      if (policy.input.value !== k.resource_policy) body.resource_policy = policy.input.value;
      if (r !== k.rate_limit) body.rate_limit = r;
      if (active.input.checked !== k.is_active) body.is_active = active.input.checked;
      if (!Object.keys(body).length) { close(false); return; }
      try {
        close(await api.patch(`/v1/keypairs/${encodeURIComponent(k.access_key)}`, body));
      } catch (e) {
        const fe = e.fieldErrors();
        if (fe.rate_limit) rate.setError(fe.rate_limit);
        else clear(msg, notice("error", errorText(e)));
      }
    }, { id: "keypair-update-submit" })],
  }));
}
