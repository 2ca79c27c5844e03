// Information page: version, licence, the managers of the cluster and the
// agents.
import * as api from "../api.js";
import { h, notice, table, errorText, shortId } from "../ui.js";
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
        row("Agents", `${info.agents.alive} alive, ${info.agents.disconnected || 0} disconnected, ${info.agents.lost} lost`, "info-agents"),
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
  try {
    const list = await api.listAll("/v1/agents");
    agents.append(table([
      { title: "ID", cell: (a) => shortId(a.id, 14) },
      { title: "Address", cell: (a) => a.address },
      { title: "Status", cell: (a) => (a.simulated ? `${a.status} (simulated)` : a.status) },
      { title: "Schedulable", cell: (a) => (a.schedulable ? "yes" : "no") },
      { title: "Capacity", cell: (a) => slotNames.filter((n) => (a.capacity || {})[n.key]).map((n) => `${n.label} ${withUnit(n.key, a.capacity[n.key])}`).join(", ") },
      { title: "Occupied", cell: (a) => slotNames.filter((n) => (a.occupied || {})[n.key]).map((n) => `${n.label} ${withUnit(n.key, a.occupied[n.key])}`).join(", ") || "nothing" },
      { title: "GPUs", cell: (a) => (a.gpus || []).map((g) => g.name).join(", ") || "none" },
      { title: "Version", cell: (a) => a.version },
      { title: "Last heartbeat", cell: (a) => time(a.last_heartbeat_at) },
    ], list, { id: "agents-list", empty: "No agents have registered." }));
  } catch (e) {
    agents.append(notice("error", `Cannot list agents: ${errorText(e)}`));
  }
}
