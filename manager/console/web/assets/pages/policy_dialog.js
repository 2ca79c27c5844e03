// Create / update resource policy dialog. Every numeric field has the
// maximum of the reference manual; CPU, RAM, GPU and fGPU (and the other
// nullable limits) have an "Unlimited" checkbox under them. The name is the
// policy's key: fixed on update.
import * as api from "../api.js";
import { h, clear, button, field, switchInput, openDialog, notice, errorText } from "../ui.js";
import { GiB, amount } from "../format.js";

// The manual's maxima, in the units the dialog shows.
const slotFields = [
  { slot: "cpu", label: "CPU (cores)", max: 512, step: "0.001", toWire: (v) => v, fromWire: (v) => v },
  { slot: "mem", label: "RAM (GiB)", max: 1024, step: "any", toWire: (v) => Math.round(v * GiB), fromWire: (v) => +(v / GiB).toFixed(3) },
  { slot: "cuda.device", label: "GPU", max: 64, step: "1", toWire: (v) => v, fromWire: (v) => v },
  { slot: "cuda.shares", label: "fGPU", max: 256, step: "0.01", toWire: (v) => v, fromWire: (v) => v },
];

// resourcesCell is the Resources column: each slot's limit, ∞ when unlimited.
export function resourcesCell(p) {
  const l = p.total_resource_slots || {};
  return h("span", { class: "resources", "data-policy": p.name },
    [["cpu", "Cores"], ["mem", "RAM"], ["cuda.device", "GPU"], ["cuda.shares", "fGPU"]].map(([k, label]) =>
      h("span", { class: "res", "data-slot": k }, h("b", {}, label), " ", l[k] === null || l[k] === undefined ? "∞" : amount(k, l[k]) + (k === "mem" ? " GiB" : ""))));
}

function numberField(label, id, { min = 0, max, step = "1", value, unlimited = null, hint }) {
  const input = h("input", { type: "number", id, min, max, step, value: value ?? "" });
  const f = field(label, input, hint || (max !== undefined ? `From ${min} to ${max}.` : undefined));
  if (unlimited !== null) {
    const box = h("input", { type: "checkbox", id: `${id}-unlimited`, checked: unlimited });
    const sync = () => { input.disabled = box.checked; };
    box.addEventListener("change", sync);
    sync();
    f.append(h("label", { class: "checkbox" }, box, " Unlimited"));
    f.unlimited = box;
  }
  return f;
}

// read returns [ok, value]: null when unlimited, a number within range, or
// an error put under the field.
function read(f, { min, max, whole = false }) {
  if (f.unlimited && f.unlimited.checked) return [true, null];
  const raw = f.input.value.trim();
  if (raw === "") { f.setError("Enter a value or tick Unlimited."); return [false]; }
  const n = Number(raw);
  if (!Number.isFinite(n)) { f.setError("Enter a number."); return [false]; }
  if (whole && !Number.isInteger(n)) { f.setError("Enter a whole number."); return [false]; }
  if (n < min || n > max) { f.setError(`Must be from ${min} to ${max}.`); return [false]; }
  return [true, n];
}

export function policyDialog(existing) {
  const p = existing || { total_resource_slots: {}, max_containers_per_session: 1, idle_timeout: 0, max_concurrent_sessions: null,
    max_session_lifetime: null, allowed_vfolder_hosts: [], max_vfolder_size: null, max_vfolder_count: 10, allow_root: false };
  const slotsNow = p.total_resource_slots || {};
  const name = field("Policy name", h("input", { type: "text", id: "policy-name", value: p.name || "", disabled: !!existing }),
    existing ? "The name identifies the policy and cannot change." : undefined);
  const sf = Object.fromEntries(slotFields.map((s) => {
    const v = slotsNow[s.slot];
    const unl = v === null || v === undefined;
    return [s.slot, numberField(s.label, `policy-${s.slot.replace(".", "-")}`, { max: s.max, step: s.step, value: unl ? "" : s.fromWire(v), unlimited: unl })];
  }));
  const containers = numberField("Containers per session", "policy-containers", { min: 1, max: 100, value: p.max_containers_per_session });
  const idle = numberField("Idle timeout (sec.)", "policy-idle", { max: 15552000, value: p.idle_timeout, hint: "0 = never; at most 15552000 (about 180 days)." });
  const concurrent = numberField("Concurrent jobs", "policy-concurrent", { min: 1, max: 100, value: p.max_concurrent_sessions ?? "", unlimited: p.max_concurrent_sessions == null });
  const lifetime = numberField("Max session lifetime (sec.)", "policy-lifetime", { value: p.max_session_lifetime ?? "", unlimited: !p.max_session_lifetime, hint: "Seconds a session may live." });
  const hosts = field("Allowed hosts", h("input", { type: "text", id: "policy-hosts", value: (p.allowed_vfolder_hosts || []).join(", ") }), "Folder hosts, separated by commas.");
  const capacity = numberField("Capacity (GiB)", "policy-capacity", { max: 1024, step: "any", value: p.max_vfolder_size == null ? "" : +(p.max_vfolder_size / GiB).toFixed(3), unlimited: p.max_vfolder_size == null,
    hint: "From 0 to 1024 GiB (the manual's GB: 1 GiB = 1024³ bytes)." });
  const count = numberField("Max. # of folders", "policy-folders", { max: 50, value: p.max_vfolder_count });
  // Off by default: sessions run as an unprivileged user unless the policy lets them ask for root.
  const root = switchInput("Allow root in containers?", !!p.allow_root, "policy-allow-root");
  const byWire = {
    name, "total_resource_slots.cpu": sf.cpu, "total_resource_slots.mem": sf.mem, "total_resource_slots.cuda.device": sf["cuda.device"],
    "total_resource_slots.cuda.shares": sf["cuda.shares"], max_containers_per_session: containers, idle_timeout: idle,
    max_concurrent_sessions: concurrent, max_session_lifetime: lifetime, allowed_vfolder_hosts: hosts, max_vfolder_size: capacity, max_vfolder_count: count,
  };
  const msg = h("div", { class: "dialog-message", id: "policy-message" });
  return openDialog({ title: existing ? "Update resource policy" : "Create resource policy", id: "policy-dialog", wide: true }, (close) => {
    const submit = async () => {
      for (const f of Object.values(byWire)) f.setError();
      clear(msg);
      let ok = true;
      const take = (f, rule) => { const [good, v] = read(f, rule); ok = ok && good; return v; };
      const body = { total_resource_slots: {} };
      if (!existing) {
        body.name = name.input.value.trim();
        if (!body.name) { name.setError("Policy name is required."); ok = false; }
      }
      for (const s of slotFields) {
        const v = take(sf[s.slot], { min: 0, max: s.max, whole: s.slot === "cuda.device" });
        body.total_resource_slots[s.slot] = v === null || v === undefined ? null : s.toWire(v);
      }
      body.max_containers_per_session = take(containers, { min: 1, max: 100, whole: true });
      body.idle_timeout = take(idle, { min: 0, max: 15552000, whole: true });
      body.max_concurrent_sessions = take(concurrent, { min: 1, max: 100, whole: true });
      body.max_session_lifetime = take(lifetime, { min: 0, max: Number.MAX_SAFE_INTEGER, whole: true });
      const cap = take(capacity, { min: 0, max: 1024 });
      body.max_vfolder_size = cap === null || cap === undefined ? null : Math.round(cap * GiB);
      body.max_vfolder_count = take(count, { min: 0, max: 50, whole: true });
      body.allowed_vfolder_hosts = hosts.input.value.split(",").map((x) => x.trim()).filter(Boolean);
      body.allow_root = root.input.checked;
      if (!ok) return;
      try {
        const out = existing
          ? await api.patch(`/v1/resource-policies/${encodeURIComponent(existing.name)}`, body)
          : await api.post("/v1/resource-policies", body);
        close(out);
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        let placed = false;
        for (const [k, reasons] of Object.entries(fe)) {
          if (byWire[k]) { byWire[k].setError(reasons); placed = true; }
        }
        if (!placed) clear(msg, notice("error", errorText(e)));
      }
    };
    return {
      body: [msg, name,
        h("fieldset", {}, h("legend", {}, "Resource Policy"), h("div", { class: "grid" }, slotFields.map((s) => sf[s.slot]))),
        h("fieldset", {}, h("legend", {}, "Sessions"), h("div", { class: "grid" }, containers, idle, concurrent, lifetime),
          h("div", { class: "switches" }, root.el)),
        h("fieldset", {}, h("legend", {}, "Folders"), h("div", { class: "grid" }, hosts, capacity, count))],
      actions: [button("CANCEL", () => close(), { class: "secondary" }), button(existing ? "UPDATE" : "CREATE", submit, { id: "policy-submit" })],
    };
  });
}
