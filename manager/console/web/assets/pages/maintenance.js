// Maintenance page: RECALCULATE USAGE (superadmin) asks the manager to
// compare what it has recorded as occupied with what the sessions hold, and
// shows what it found and fixed.
import * as api from "../api.js";
import { h, clear, button, notice, table, errorText } from "../ui.js";
import { amount } from "../format.js";

export async function render(main, ctx) {
  const out = h("div", { id: "recalculate-result" });
  const run = button("RECALCULATE USAGE", async () => {
    run.disabled = true;
    clear(out, notice("info", "Recalculating…"));
    try {
      const r = await api.post("/v1/maintenance/recalculate-usage");
      showResult(out, r);
    } catch (e) {
      clear(out, e.status === 404
        ? notice("info", "This manager does not offer usage recalculation yet: POST /v1/maintenance/recalculate-usage answered 404. ",
          "It comes with a later manager version.")
        : notice("error", `Recalculation failed: ${errorText(e)}`));
    } finally {
      run.disabled = !ctx.isSuperadmin;
    }
  }, { id: "recalculate-usage", disabled: !ctx.isSuperadmin });
  main.append(h("section", { class: "card" },
    h("h2", {}, "Recalculate usage"),
    h("p", {}, "When what the cluster records as occupied drifts from what the sessions really hold (after lost agents or "
      + "interrupted container operations), recalculating counts it again from the sessions and corrects the records."),
    ctx.isSuperadmin ? null : notice("info", "Only a superadmin may recalculate usage."),
    run, out));
}

function showResult(out, r) {
  const checked = r.checked || {};
  const drift = r.drift || [];
  const fixed = r.fixed ?? drift.length;
  clear(out,
    notice(drift.length ? "ok" : "info",
      `Checked ${checked.agents ?? 0} agents and ${checked.keypairs ?? 0} keypairs. `,
      drift.length ? `Fixed ${fixed} record${fixed === 1 ? "" : "s"} that had drifted.` : "Nothing had drifted; nothing was changed."),
    drift.length ? table([
      { title: "Scope", cell: (d) => d.scope },
      { title: "Slot", cell: (d) => d.slot },
      { title: "Recorded", cell: (d) => amount(d.slot, Number(d.recorded)) },
      { title: "Actual", cell: (d) => amount(d.slot, Number(d.actual)) },
    ], drift, { id: "drift-list" }) : null);
}
