// Sessions page: the resource indicator (GET /v1/resources/me), the START
// dialog whose sliders stop at `allocatable`, the session list with status
// and reasons, terminate, and for admins the "..." → export CSV menu on the
// right of the OTHERS tab.
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, tabs, moreMenu, toast, errorText, field, openDialog, confirmDialog } from "../ui.js";
import { exportDialog } from "../export.js";
import { slotNames, amount, withUnit, time, GiB, INF } from "../format.js";

const groups = [
  { key: "running", label: "RUNNING", has: (s) => ["PENDING", "SCHEDULED", "PREPARING", "RUNNING", "TERMINATING"].includes(s) },
  { key: "finished", label: "FINISHED", has: (s) => ["TERMINATED", "CANCELLED"].includes(s) },
  { key: "others", label: "OTHERS", has: (s) => !["PENDING", "SCHEDULED", "PREPARING", "RUNNING", "TERMINATING", "TERMINATED", "CANCELLED"].includes(s) },
];
const finished = new Set(["TERMINATED", "CANCELLED", "ERROR"]);

export async function render(main, ctx) {
  const group = groups.find((g) => g.key === ctx.params.get("tab")) || groups[0];
  const indicator = h("section", { class: "indicator", id: "resource-indicator" });
  const msg = h("div", { id: "sessions-message" });
  const list = h("div", { id: "sessions-table" });
  let res = null;

  const loadIndicator = async () => {
    try {
      res = await api.get("/v1/resources/me");
    } catch (e) {
      clear(indicator, notice("error", `Cannot read your resources: ${errorText(e)}`));
      return;
    }
    drawIndicator(indicator, res);
  };
  const loadList = async () => {
    let sessions;
    try {
      sessions = await api.listAll(ctx.isAdmin ? "/v1/sessions?all=true" : "/v1/sessions");
    } catch (e) {
      clear(msg, notice("error", `Cannot list sessions: ${errorText(e)}`));
      return;
    }
    sessions = sessions.filter((s) => group.has(s.status)).reverse();
    clear(list, table([
      { title: "Name", cell: (s) => h("span", { title: s.id }, s.name || s.id) },
      ctx.isAdmin ? { title: "Owner", cell: (s) => s.owner } : null,
      { title: "Image", cell: (s) => s.image },
      { title: "Type", cell: (s) => s.type },
      { title: "Status", cell: (s) => h("span", { class: `status ${s.status.toLowerCase()}`, "data-status": s.status }, s.status) },
      { title: "Reason", cell: (s) => reason(s) },
      { title: "Resources", cell: (s) => slotNames.filter((n) => (s.requested || {})[n.key]).map((n) => `${n.label} ${withUnit(n.key, s.requested[n.key])}`).join(", ") },
      { title: "Created", cell: (s) => time(s.created_at) },
      { title: "Controls", class: "controls", cell: (s) => (finished.has(s.status) || s.status === "TERMINATING" ? "" :
        iconButton("stop", `Terminate ${s.name || s.id}`, async () => {
          if (!(await confirmDialog("Terminate session", `Terminate ${s.name || s.id}? Its containers are stopped.`))) return;
          try {
            await api.del(`/v1/sessions/${encodeURIComponent(s.id)}`);
            toast(`Terminating ${s.name || s.id}`);
          } catch (e) {
            clear(msg, notice("error", `Cannot terminate ${s.name || s.id}: ${errorText(e)}`));
          }
          await Promise.all([loadList(), loadIndicator()]);
        }, { class: "danger", "data-action": "terminate", "data-session": s.id })) },
    ].filter(Boolean), sessions, { id: "sessions-list", empty: "No sessions here." }));
  };

  const start = button("START", async () => {
    await loadIndicator();
    if (!res) return;
    const created = await startDialog(res);
    if (created) {
      toast(`Session ${created.name || created.id} is ${created.status}`);
      await Promise.all([loadList(), loadIndicator()]);
    }
  }, { id: "start-session" });
  const refresh = button("REFRESH", () => Promise.all([loadList(), loadIndicator()]), { class: "secondary", id: "refresh-sessions" });
  const more = ctx.isAdmin
    ? moreMenu("sessions-more", [{ id: "export-sessions", label: "Export CSV", action: () => exportDialog({
      title: "Export sessions as CSV", path: "/v1/export/sessions.csv", query: { all: "true" }, defaultName: "sessions", buttonLabel: "EXPORT",
    }) }])
    : null;
  main.append(indicator, h("div", { class: "toolbar" }, start, refresh),
    tabs(groups, group.key, (k) => ctx.navigate(new URLSearchParams({ tab: k })), more), msg, list);
  await Promise.all([loadIndicator(), loadList()]);
  // Statuses move on their own (the scheduler, the agents): follow them
  // while this page is on screen.
  const timer = setInterval(() => {
    if (!main.isConnected) { clearInterval(timer); return; }
    loadList();
    loadIndicator();
  }, 10000);
}

function reason(s) {
  const hist = s.status_history || [];
  const last = hist.length ? hist[hist.length - 1].reason : "";
  const parts = [s.status_info, last && last !== s.status_info ? last : ""].filter(Boolean);
  if (s.exit_code !== null && s.exit_code !== undefined) parts.push(`exit code ${s.exit_code}`);
  return parts.join("; ");
}

// maxOf is the indicator's total for a slot: the policy's limit, or, when
// unlimited, what the cluster holds.
function maxOf(res, slot) {
  const lim = (res.limits || {})[slot];
  return lim === null || lim === undefined ? null : lim;
}

function drawIndicator(el, res) {
  const cells = slotNames.map((n) => {
    const used = (res.occupied || {})[n.key] || 0;
    const lim = maxOf(res, n.key);
    const total = ((res.cluster || {}).total || {})[n.key] || 0;
    const max = lim === null ? total : lim;
    const pct = max > 0 ? Math.min(100, (used / max) * 100) : 0;
    return h("div", { class: "gauge", "data-slot": n.key },
      h("div", { class: "gauge-label" }, n.label),
      h("div", { class: "bar" }, h("div", { class: "fill", style: { width: `${pct}%` } })),
      h("div", { class: "gauge-figures" },
        h("span", { id: `indicator-${n.key.replace(".", "-")}-used` }, amount(n.key, used)), " / ",
        h("span", { id: `indicator-${n.key.replace(".", "-")}-max` }, amount(n.key, max)), ` ${n.unit}`),
      h("div", { class: "gauge-note" }, lim === null ? `policy: ${INF} (cluster holds ${amount(n.key, total)})` : `policy limit ${amount(n.key, lim)}`),
      h("div", { class: "gauge-note" }, "allocatable now ", h("span", { id: `allocatable-${n.key.replace(".", "-")}` }, amount(n.key, (res.allocatable || {})[n.key] || 0))));
  });
  const c = res.concurrency || {};
  clear(el,
    h("div", { class: "indicator-head" }, h("b", {}, "Resources"), ` of keypair ${res.access_key || ""} (policy ${res.resource_policy})`,
      h("span", { class: "spacer" }), `Sessions ${c.used || 0} / ${c.max === null || c.max === undefined ? INF : c.max}`),
    h("div", { class: "gauges" }, cells));
}

// The sliders are in the units the indicator shows; their maxima are what
// one new session could get now (allocatable), so they cannot go past it.
const sliderSpec = {
  cpu: { step: 0.1, def: 1, toWire: (v) => v, fromWire: (v) => v },
  mem: { step: 0.125, def: 1, toWire: (v) => Math.round(v * GiB), fromWire: (v) => v / GiB },
  "cuda.device": { step: 1, def: 0, toWire: (v) => v, fromWire: (v) => v },
  "cuda.shares": { step: 0.1, def: 0, toWire: (v) => v, fromWire: (v) => v },
};

function startDialog(res) {
  const image = field("Image", h("input", { type: "text", id: "session-image", value: "berth/base:latest" }));
  const name = field("Session name (optional)", h("input", { type: "text", id: "session-name" }));
  const type = field("Type", h("select", { id: "session-type" }, h("option", { value: "interactive" }, "interactive"), h("option", { value: "batch" }, "batch")));
  const command = field("Command (batch; words separated by spaces)", h("input", { type: "text", id: "session-command", placeholder: "sleep 60" }));
  const sliders = {};
  const sliderFields = slotNames.map((n) => {
    const spec = sliderSpec[n.key];
    const max = spec.fromWire((res.allocatable || {})[n.key] || 0);
    const input = h("input", { type: "range", id: `slider-${n.key.replace(".", "-")}`, min: 0, max, step: spec.step, value: Math.min(spec.def, max), disabled: max <= 0 });
    const out = h("output", { for: input.id, id: `slider-${n.key.replace(".", "-")}-value` });
    const show = () => { out.value = `${+Number(input.value).toFixed(3)} ${n.unit}`; };
    input.addEventListener("input", show);
    show();
    sliders[n.key] = input;
    const f = field(`${n.label} (at most ${+max.toFixed(3)} ${n.unit} now)`, input);
    f.insertBefore(out, f.lastChild);
    return f;
  });
  const msg = h("div", { class: "dialog-message", id: "start-message" });
  return openDialog({ title: "Start a session", id: "start-dialog" }, (close) => ({
    body: [msg, image, name, type, command, h("fieldset", {}, h("legend", {}, "Resources per container"), sliderFields)],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("LAUNCH", async () => {
      clear(msg);
      image.setError();
      if (!image.input.value.trim()) { image.setError("Image is required."); return; }
      const resources = {};
      for (const [k, input] of Object.entries(sliders)) {
        const v = Number(input.value);
        if (v > 0 || k === "cpu" || k === "mem") resources[k] = sliderSpec[k].toWire(v);
      }
      const body = { image: image.input.value.trim(), type: type.input.value, resources };
      if (name.input.value.trim()) body.name = name.input.value.trim();
      const cmd = command.input.value.trim();
      if (cmd) body.command = cmd.split(/\s+/);
      try {
        close(await api.post("/v1/sessions", body));
      } catch (e) {
        clear(msg, notice("error", errorText(e)));
      }
    }, { id: "start-submit" })],
  }));
}
