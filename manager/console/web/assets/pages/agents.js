// Agents page (Administration > Agents): the nodes by ALIVE / DISCONNECTED
// (silent past the heartbeat timeout, its sessions kept for the grace: the
// manager's status_info says since when and until when) / LOST (a
// simulated one, berth-agent -runtime sim, marked so: nothing runs there),
// each with what it offers, what sessions occupy of it and what it measured,
// with bars; its GPUs with the shares allocated; the schedulable switch
// (drain: running sessions stay), which only a superadmin turns, after a
// confirmation; and APPROVE for an agent that registered but waits for a
// superadmin's approval.
import * as api from "../api.js";
import { h, clear, button, notice, table, tabs, toast, errorText, confirmDialog, shortId, meter, switchInput } from "../ui.js";
import { amount, withUnit, bytes, duration, since, time } from "../format.js";

const statuses = [{ key: "ALIVE", label: "ALIVE" }, { key: "DISCONNECTED", label: "DISCONNECTED" }, { key: "LOST", label: "LOST" }];
const empty = { ALIVE: "No agent is alive.", DISCONNECTED: "No agent is disconnected.", LOST: "No agent is lost." };

export async function render(main, ctx) {
  const status = statuses.some((s) => s.key === ctx.params.get("status")) ? ctx.params.get("status") : "ALIVE";
  const msg = h("div", { id: "agents-message" });
  const holder = h("div", { id: "agents-table" });
  main.append(tabs(statuses, status, (k) => ctx.navigate(new URLSearchParams({ status: k }))), msg);
  if (!ctx.isSuperadmin) main.append(notice("info", "Taking agents in or out of scheduling and approving new ones is a superadmin's."));
  main.append(holder);

  const load = async () => {
    let agents;
    try {
      agents = await api.listAll(`/v1/agents?status=${status}`);
    } catch (e) {
      clear(msg, notice("error", `Cannot list agents: ${errorText(e)}`));
      return;
    }
    clear(holder, table([
      { title: "Agent", cell: (a) => h("div", { class: "stack" }, shortId(a.id, 14),
        a.simulated ? h("span", { class: "badge", "data-simulated": a.id, title: "berth-agent -runtime sim: sessions placed here only pretend to run" }, "simulated") : null,
        h("span", { class: "hint" }, a.address),
        a.status === "DISCONNECTED" ? h("span", { class: "status pending", "data-disconnected": a.id, title: a.status_info || "" }, "disconnected") : null,
        a.status_info ? h("span", { class: "hint", "data-status-info": a.id }, a.status_info) : null,
        a.node && a.node.hostname ? h("span", { class: "hint" }, `${a.node.hostname} · ${a.node.arch || ""} · ${a.version || ""}`) : null) },
      { title: "Scheduling", cell: (a) => schedulingCell(a, ctx, msg, load) },
      { title: "Occupied of capacity", cell: (a) => h("div", { class: "meters" }, slotMeters(a)) },
      { title: "Measured", cell: (a) => h("div", { class: "meters" },
        meter("RAM", (a.used || {}).memory_working_set_bytes || 0, (a.capacity || {}).mem || 0,
          `${bytes((a.used || {}).memory_working_set_bytes || 0)} of ${withUnit("mem", (a.capacity || {}).mem || 0)}`, { "data-meter": "used-mem" }),
        h("div", { class: "hint" }, `CPU time ${duration((a.used || {}).cpu_seconds || 0)} · ${(a.used || {}).containers || 0} container${(a.used || {}).containers === 1 ? "" : "s"}`)) },
      { title: "GPUs", cell: (a) => gpuCell(a) },
      { title: "Heartbeat", cell: (a) => h("span", { title: time(a.last_heartbeat_at) }, since(a.last_heartbeat_at)) },
    ], agents, { id: "agents-list", empty: empty[status] }));
  };
  await load();
  const timer = setInterval(() => {
    if (!main.isConnected) { clearInterval(timer); return; }
    load();
  }, 10000);
}

function slotMeters(a) {
  const cap = a.capacity || {};
  const occ = a.occupied || {};
  const rows = [
    ["CPU", "cpu", `${amount("cpu", occ.cpu || 0)} of ${amount("cpu", cap.cpu || 0)} cores`],
    ["RAM", "mem", `${withUnit("mem", occ.mem || 0)} of ${withUnit("mem", cap.mem || 0)}`],
  ];
  if (cap["cuda.device"]) rows.push(["GPU", "cuda.device", `${amount("cuda.device", occ["cuda.device"] || 0)} of ${amount("cuda.device", cap["cuda.device"])}`]);
  if (cap["cuda.shares"]) rows.push(["fGPU", "cuda.shares", `${amount("cuda.shares", occ["cuda.shares"] || 0)} of ${amount("cuda.shares", cap["cuda.shares"])}`]);
  return rows.map(([label, k, text]) => meter(label, occ[k] || 0, cap[k] || 0, text, { "data-meter": `occupied-${k}` }));
}

function gpuCell(a) {
  const gpus = a.gpus || [];
  if (!gpus.length) return h("span", { class: "hint" }, "none");
  return h("div", { class: "meters" }, gpus.map((g) => meter(
    h("span", { title: g.uuid }, `${g.name || "GPU"}${g.fake ? " (fake)" : ""}`),
    g.shares_allocated || 0, g.shares_total || 0,
    `${+Number(g.shares_allocated || 0).toFixed(2)} of ${+Number(g.shares_total || 0).toFixed(2)} · ${bytes(g.memory_bytes || 0)}`,
    { "data-gpu": g.uuid })));
}

function schedulingCell(a, ctx, msg, reload) {
  const sw = switchInput(a.schedulable ? "schedulable" : "drained", a.schedulable, `schedulable-${a.id}`);
  sw.input.dataset.agent = a.id;
  sw.input.disabled = !ctx.isSuperadmin;
  sw.input.addEventListener("change", async () => {
    const on = sw.input.checked;
    sw.input.checked = !on; // until confirmed and done
    const ok = await confirmDialog(on ? "Schedule on agent" : "Drain agent",
      on ? `Let the scheduler place new sessions on ${a.id} (${a.address})?`
        : `Stop placing new sessions on ${a.id} (${a.address})? Sessions running there stay until they end.`,
      on ? "SCHEDULE" : "DRAIN");
    if (!ok) return;
    try {
      await api.patch(`/v1/agents/${encodeURIComponent(a.id)}`, { schedulable: on });
      toast(on ? `${a.id} takes new sessions` : `${a.id} is drained: no new sessions`);
    } catch (e) {
      clear(msg, notice("error", `Cannot change ${a.id}: ${errorText(e)}`));
    }
    await reload();
  });
  // approved is absent on managers that let every agent in at once.
  const waiting = a.approved === false;
  return h("div", { class: "stack" }, sw.el,
    waiting ? h("span", { class: "status pending", "data-approval": a.id }, "waiting for approval") : null,
    waiting && ctx.isSuperadmin ? button("APPROVE", async () => {
      if (!(await confirmDialog("Approve agent", `Approve ${a.id} (${a.address})? Once approved it may run users' sessions.`, "APPROVE"))) return;
      try {
        await api.post(`/v1/agents/${encodeURIComponent(a.id)}/approve`);
        toast(`${a.id} approved`);
      } catch (e) {
        clear(msg, notice("error", `Cannot approve ${a.id}: ${errorText(e)}`));
      }
      await reload();
    }, { class: "small", "data-action": "approve", "data-agent": a.id }) : null);
}
