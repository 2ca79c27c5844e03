// Session detail (#/session?id=ID): what the session is and was (status
// history with reasons, containers with their agent and GPU slices, mounts,
// command, environment names, exit code), its log (read again every few
// seconds while it runs), and a box to run a command in its first
// container (POST /v1/sessions/{id}/exec).
import * as api from "../api.js";
import { h, clear, button, notice, table, toast, errorText, confirmDialog, shortId, field } from "../ui.js";
import { slotsText, time, timeSec, duration } from "../format.js";
import { splitWords } from "../shellwords.js";
import { ended, endingOrEnded } from "../status.js";
import { statusBadge, reason, failedBatch } from "./sessions.js";

const refreshEvery = 3000;

export async function render(main, ctx) {
  const id = ctx.params.get("id") || "";
  const back = h("a", { href: "#/sessions", id: "back-to-sessions" }, "← Sessions");
  if (!id) {
    main.append(back, notice("error", "No session named: open one from the Sessions page."));
    return;
  }
  const head = h("section", { class: "card", id: "session-summary" });
  const history = h("section", { class: "card", id: "session-history" });
  const containers = h("section", { class: "card", id: "session-containers" });
  const logs = h("pre", { class: "logs", id: "session-logs" }, "Loading…");
  const logNote = h("span", { class: "hint", id: "session-logs-note" });
  const logCard = h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Log"), logNote, h("span", { class: "spacer" }),
    button("REFRESH", () => loadLogs(), { class: "secondary small", id: "refresh-logs" })), logs);
  const execCard = h("section", { class: "card", id: "session-exec" });
  const msg = h("div", { id: "session-message" });
  main.append(h("div", { class: "toolbar" }, back), msg, head, h("div", { class: "detail-grid" }, history, containers), logCard, execCard);

  let s = null;
  const load = async () => {
    try {
      s = await api.get(`/v1/sessions/${encodeURIComponent(id)}`);
    } catch (e) {
      clear(msg, notice("error", `Cannot read session ${id}: ${errorText(e)}`));
      return false;
    }
    drawSummary(head, s, ctx, async () => { await load(); await loadLogs(); });
    drawHistory(history, s);
    drawContainers(containers, s);
    return true;
  };
  const loadLogs = async () => {
    if (!s) return;
    if (!(s.containers || []).length) {
      clear(logs, "No container yet: the log starts once the session is placed.");
      return;
    }
    try {
      const text = await api.get(`/v1/sessions/${encodeURIComponent(id)}/logs`);
      const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
      clear(logs, text || "(nothing written yet)");
      if (atEnd) logs.scrollTop = logs.scrollHeight;
      clear(logNote, ended.has(s.status) ? `ended ${time(s.terminated_at)}` : `read ${new Date().toLocaleTimeString()}, again every ${refreshEvery / 1000}s while it runs`);
    } catch (e) {
      clear(logs, `The log cannot be read: ${errorText(e)}`);
    }
  };
  if (!(await load())) return;
  drawExec(execCard, s, id);
  await loadLogs();
  const timer = setInterval(async () => {
    if (!main.isConnected) { clearInterval(timer); return; }
    if (!s || ended.has(s.status)) return;
    const was = s.status;
    await load();
    await loadLogs();
    if (s.status !== was) drawExec(execCard, s, id);
  }, refreshEvery);
}

function drawSummary(el, s, ctx, reload) {
  const row = (k, v, id) => [h("dt", {}, k), h("dd", { id }, v === undefined || v === null || v === "" ? "—" : v)];
  const mine = s.owner === ctx.me.email;
  const canEnd = (mine || ctx.isAdmin) && !endingOrEnded.has(s.status);
  const exit = s.exit_code === null || s.exit_code === undefined ? null
    : h("span", { class: s.exit_code === 0 ? "exit ok" : "exit bad" }, String(s.exit_code));
  const lifetime = s.started_at ? duration(((s.terminated_at ? new Date(s.terminated_at) : new Date()) - new Date(s.started_at)) / 1000) : null;
  clear(el,
    h("div", { class: "card-head" }, h("h2", { id: "session-name" }, s.name || s.id), statusBadge(s.status), h("span", { class: "spacer" }),
      canEnd ? button("TERMINATE", async () => {
        if (!(await confirmDialog("Terminate session", `Terminate ${s.name || s.id}? Its containers are stopped.`))) return;
        try {
          await api.del(`/v1/sessions/${encodeURIComponent(s.id)}`);
          toast(`Terminating ${s.name || s.id}`);
        } catch (e) {
          toast(`Cannot terminate: ${errorText(e)}`, "error");
        }
        await reload();
      }, { class: "danger", id: "terminate-session" }) : null),
    h("dl", { class: "details two" },
      row("Id", shortId(s.id, 24), "session-id"), row("Owner", s.owner), row("Image", s.image), row("Type", s.type),
      row("Status", reason(s) || s.status, "session-reason"), row("Exit code", exit, "session-exit-code"),
      row("Command", (s.command || []).length ? h("span", { class: "words" }, s.command.map((w) => h("code", { class: "word" }, w))) : "the image's default", "session-command"),
      row("Environment", (s.env_names || []).length ? (s.env_names || []).join(", ") : "none set", "session-env"),
      row("Requested", `${slotsText(s.requested)} per container × ${s.cluster_size || 1}`),
      row("Occupied now", slotsText(s.occupied) || "nothing"),
      row("Mounts", (s.mounts || []).length ? h("ul", { class: "plain", id: "session-mounts-list" }, s.mounts.map((m) =>
        h("li", {}, h("code", {}, m.target), ` ← ${m.host}:`, shortId(m.folder), m.read_only ? " (read-only)" : " (read & write)"))) : "none"),
      row("Created", time(s.created_at)), row("Started", time(s.started_at)), row("Ended", time(s.terminated_at)),
      row("Ran for", lifetime), row("Last activity", time(s.last_activity_at))),
    failedBatch(s) ? notice("error", `The command ended with exit code ${s.exit_code}: its log is below.`) : null);
}

function drawHistory(el, s) {
  const rows = [...(s.status_history || [])].reverse();
  clear(el, h("h2", {}, "Status history"),
    table([
      { title: "At", cell: (c) => timeSec(c.at) },
      { title: "Status", cell: (c) => statusBadge(c.status) },
      { title: "Reason", cell: (c) => h("span", { class: "wrap" }, c.reason || "") },
    ], rows, { id: "status-history", empty: "No change recorded yet." }));
}

function drawContainers(el, s) {
  const rows = (s.containers || []).map((c, i) => ({ ...c, index: i }));
  clear(el, h("h2", {}, "Containers"),
    table([
      { title: "#", cell: (c) => String(c.index) },
      { title: "Agent", cell: (c) => shortId(c.agent, 12) },
      { title: "Status", cell: (c) => c.status || "" },
      { title: "Slots", cell: (c) => h("span", { class: "wrap" }, slotsText(c.slots)) },
      { title: "GPU slices", cell: (c) => ((c.gpus || []).length
        ? h("span", { class: "wrap" }, c.gpus.map((g) => `${g.uuid} × ${+Number(g.share).toFixed(2)}`).join(", ")) : "none") },
    ], rows, { id: "containers-list", empty: s.status === "PENDING" ? "Waiting to be placed." : "No containers." }));
}

function drawExec(el, s, id) {
  const input = h("input", { type: "text", id: "exec-command", placeholder: "ls -la /home/work", autocomplete: "off", spellcheck: "false" });
  const f = field("In the first container", input,
    "Split into words as a shell splits them; write sh -c '…' for pipes and variables. It may run for 30s at most.");
  const out = h("div", { id: "exec-result" });
  const running = s.status === "RUNNING";
  const go = async () => {
    f.setError();
    let cmd;
    try {
      cmd = splitWords(input.value.trim());
    } catch (e) {
      f.setError(`The command cannot be read: ${e.message}.`);
      return;
    }
    if (!cmd.length) { f.setError("Type a command."); return; }
    run.disabled = true;
    clear(out, notice("info", "Running…"));
    try {
      const r = await api.post(`/v1/sessions/${encodeURIComponent(id)}/exec`, { command: cmd });
      clear(out,
        h("div", { class: "exec-code" }, "exit code ", h("span", { id: "exec-exit-code", class: r.exit_code === 0 ? "exit ok" : "exit bad" }, String(r.exit_code))),
        h("pre", { class: "logs small", id: "exec-stdout" }, r.stdout || "(no output)"),
        r.stderr ? h("pre", { class: "logs small stderr", id: "exec-stderr" }, r.stderr) : null);
    } catch (e) {
      clear(out, notice("error", errorText(e)));
    } finally {
      run.disabled = false;
    }
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
  const run = button("RUN", go, { id: "exec-run" });
  // Only a RUNNING session takes commands; an ended one has nothing to
  // offer here (its log above says what it did).
  el.hidden = ended.has(s.status);
  input.disabled = !running;
  run.disabled = !running;
  clear(el, h("h2", {}, "Run a command"), running ? null : h("p", { class: "hint" }, `Commands run once the session is RUNNING; it is ${s.status}.`),
    h("div", { class: "inline-form" }, f, run), out);
}
