// Information page: version, licence, the managers of the cluster and the
// agents, with APPROVE (superadmin) for an agent that joined with a token
// that did not approve it.
import * as api from "../api.js";
<<<<<<< HEAD
import { h, clear, button, notice, table, toast, errorText } from "../ui.js";
=======
import { h, notice, table, errorText, shortId } from "../ui.js";
>>>>>>> i16-console
import { withUnit, slotNames, time } from "../format.js";

export async function render(main, ctx) {
  let info;
  try {
    info = await api.get("/v1/info");
  } catch (e) {
    main.append(notice("error", `Cannot read the cluster information: ${errorText(e)}`));
    return;
  }
  const row = (k, v, id) => [h("dt", {}, k), h("dd", { id }, v)];
  const c = info.cluster || {};
  main.append(
    h("section", { class: "card" }, h("h2", {}, "Berth"),
      h("dl", { class: "details" },
        row("Version", info.version, "info-version"), row("Commit", info.commit), row("API version", info.api_version),
        row("License", info.license, "info-license"), row("Leader", c.leader), row("Raft index", String(c.raft_index ?? "")),
        row("Agents", `${info.agents.alive} alive, ${info.agents.lost} lost`),
        row("Sessions", `${info.sessions.running} running, ${info.sessions.pending} pending`))),
    h("section", { class: "card" }, h("h2", {}, "Cluster members"),
      table([
        { title: "ID", cell: (m) => m.id },
        { title: "Address", cell: (m) => m.address },
        { title: "State", cell: (m) => m.state },
        { title: "Voter", cell: (m) => (m.voter ? "yes" : "no") },
      ], c.members || [], { id: "members-list" })));
  const agents = h("section", { class: "card" }, h("h2", {}, "Agents"));
  main.append(agents);
  await showAgents(agents, ctx);
}

// showAgents (re)draws the agents card.
async function showAgents(card, ctx) {
  let list;
  try {
<<<<<<< HEAD
    list = await api.listAll("/v1/agents");
  } catch (e) {
    clear(card, h("h2", {}, "Agents"), notice("error", `Cannot list agents: ${errorText(e)}`));
    return;
  }
  const waiting = list.filter((a) => a.approved === false);
  clear(card, h("h2", {}, "Agents"),
    waiting.length ? notice("info", `${waiting.length} agent${waiting.length === 1 ? " awaits" : "s await"} approval: `,
      "nothing is placed on an agent until a superadmin approves it. Check that it is your node (address, host name) first.") : null,
    table([
      { title: "ID", cell: (a) => a.id },
=======
    const list = await api.listAll("/v1/agents");
    agents.append(table([
      { title: "ID", cell: (a) => shortId(a.id, 14) },
>>>>>>> i16-console
      { title: "Address", cell: (a) => a.address },
      { title: "Status", cell: (a) => a.status },
      { title: "Schedulable", cell: (a) => (a.schedulable ? "yes" : "no") },
      { title: "Approved", cell: (a) => approval(a, card, ctx) },
      { title: "Host", cell: (a) => (a.node || {}).hostname || "" },
      { title: "Capacity", cell: (a) => slotNames.filter((n) => (a.capacity || {})[n.key]).map((n) => `${n.label} ${withUnit(n.key, a.capacity[n.key])}`).join(", ") },
      { title: "Occupied", cell: (a) => slotNames.filter((n) => (a.occupied || {})[n.key]).map((n) => `${n.label} ${withUnit(n.key, a.occupied[n.key])}`).join(", ") || "nothing" },
      { title: "GPUs", cell: (a) => (a.gpus || []).map((g) => g.name).join(", ") || "none" },
      { title: "Version", cell: (a) => a.version },
      { title: "Last heartbeat", cell: (a) => time(a.last_heartbeat_at) },
    ], list, { id: "agents-list", empty: "No agents have registered." }));
}

// approval is "yes", or for an agent awaiting approval "no" and, for a
// superadmin, the APPROVE button.
function approval(a, card, ctx) {
  if (a.approved !== false) return "yes";
  if (!ctx.isSuperadmin) return "no (awaiting a superadmin)";
  const b = button("APPROVE", async () => {
    b.disabled = true;
    try {
      await api.post(`/v1/agents/${encodeURIComponent(a.id)}/approve`);
      toast(`Agent ${a.id} approved: sessions may be placed on it.`);
      await showAgents(card, ctx);
    } catch (e) {
      b.disabled = false;
      toast(`Cannot approve ${a.id}: ${errorText(e)}`, "error");
    }
  }, { id: `approve-${a.id}`, class: "small" });
  return h("span", {}, "no ", b);
}
