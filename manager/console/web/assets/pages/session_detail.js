// Session detail (#/session?id=ID): what the session is and was (status
// history with reasons, containers with their agent, address and GPU
// slices, mounts, ports, command, environment names, exit code), its apps
// with an OPEN button, a terminal (xterm.js over the terminal WebSocket), a
// container's log (followed while the session runs and the page is open),
// and a box to run a command in its first container (POST
// /v1/sessions/{id}/exec).
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
  const logContainer = h("select", { id: "logs-container", hidden: true });
  const logCard = h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", {}, "Log"), logContainer, logNote, h("span", { class: "spacer" }),
    button("REFRESH", () => loadLogs(), { class: "secondary small", id: "refresh-logs" })), logs);
  const appsCard = h("section", { class: "card", id: "session-apps" });
  const termCard = h("section", { class: "card", id: "session-terminal-card" });
  const execCard = h("section", { class: "card", id: "session-exec" });
  const msg = h("div", { id: "session-message" });
  main.append(h("div", { class: "toolbar" }, back), msg, head, h("div", { class: "detail-grid" }, history, containers), appsCard, termCard, logCard, execCard);

  let s = null;
  const load = async () => {
    try {
      s = await api.get(`/v1/sessions/${encodeURIComponent(id)}`);
    } catch (e) {
      clear(msg, notice("error", `Cannot read session ${id}: ${errorText(e)}`));
      return false;
    }
    drawSummary(head, s, ctx, async () => { await load(); loadLogs(); });
    drawHistory(history, s);
    drawContainers(containers, s);
    drawApps(appsCard, s, ctx);
    return true;
  };

  // The log: read whole once the session has ended; while it runs,
  // followed (GET …/logs?follow=true) for as long as the page is open, the
  // text arriving as the container writes it.
  let following = null; // the AbortController of the followed read
  const stopFollowing = () => { if (following) { following.abort(); following = null; } };
  const loadLogs = async () => {
    stopFollowing();
    if (!s) return;
    if (!(s.containers || []).length) {
      clear(logs, "No container yet: the log starts once the session is placed.");
      return;
    }
    const index = logContainer.value || "0";
    const path = `/v1/sessions/${encodeURIComponent(id)}/logs?container=${index}`;
    if (ended.has(s.status) || s.status === "TERMINATING") {
      try {
        const text = await api.get(path);
        clear(logs, text || "(nothing written yet)");
        clear(logNote, s.terminated_at ? `ended ${time(s.terminated_at)}` : "");
      } catch (e) {
        clear(logs, `The log cannot be read: ${errorText(e)}`);
      }
      return;
    }
    const ctl = new AbortController();
    following = ctl;
    clear(logs);
    clear(logNote, "following while it runs");
    try {
      const resp = await fetch(`${path}&follow=true`, { credentials: "same-origin", signal: ctl.signal });
      if (!resp.ok) throw new api.ApiError(resp.status, await resp.json().catch(() => ({})));
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atEnd = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        logs.append(decoder.decode(value, { stream: true }));
        if (atEnd) logs.scrollTop = logs.scrollHeight;
      }
      if (following === ctl) {
        following = null;
        clear(logNote, "the container ended");
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      if (following === ctl) following = null;
      clear(logNote, `no longer following: ${errorText(e)}`);
    }
    if (!logs.textContent) logs.textContent = "(nothing written yet)";
  };
  logContainer.addEventListener("change", () => loadLogs());
  if (!(await load())) return;
  drawLogContainers(logContainer, s);
  drawExec(execCard, s, id);
  drawTerminal(termCard, s, ctx);
  loadLogs();
  // A session on its way (placed, starting, ending) is read every second,
  // so the page shows the moment it runs or ends; one that runs, every
  // refreshEvery.
  let last = Date.now();
  let loading = false;
  const timer = setInterval(async () => {
    if (!main.isConnected) { clearInterval(timer); stopFollowing(); closeTerminal(termCard); return; }
    if (!s || ended.has(s.status) || loading) return;
    if (s.status === "RUNNING" && Date.now() - last < refreshEvery) return;
    last = Date.now();
    loading = true;
    const was = s.status;
    try {
      await load();
    } finally {
      loading = false;
    }
    if (s.status !== was) {
      drawLogContainers(logContainer, s);
      drawExec(execCard, s, id);
      drawTerminal(termCard, s, ctx);
      if (!following) loadLogs();
    }
  }, 1000);
}

// drawLogContainers offers a choice of container when there is more than one.
function drawLogContainers(sel, s) {
  const n = (s.containers || []).length;
  sel.hidden = n < 2;
  if (sel.options.length === n) return;
  const was = sel.value || "0";
  clear(sel, (s.containers || []).map((_, i) => h("option", { value: String(i) }, i === 0 ? "main1" : `sub${i}`)));
  sel.value = was;
}

// drawApps lists the ports the session declared: an http port is an app
// its owner opens on the apps origin (a site of its own, apart from the
// console) with a one-time link; a tcp port is reached with the CLI.
function drawApps(el, s, ctx) {
  const ports = s.ports || [];
  el.hidden = ports.length === 0;
  if (!ports.length) return;
  const mine = s.owner === ctx.me.email;
  const running = s.status === "RUNNING";
  clear(el, h("h2", {}, "Apps and ports"),
    table([
      { title: "Name", cell: (p) => h("code", {}, p.name) },
      { title: "Port", cell: (p) => `${p.port}/${p.protocol}` },
      { title: "", cell: (p) => {
        if (p.protocol !== "http") return h("span", { class: "hint" }, `berth session port-forward ${s.id} LOCAL:${p.name}`);
        if (!mine) return h("span", { class: "hint" }, "its owner opens it");
        return button("OPEN", () => openApp(s, p.name), { class: "small", id: `open-app-${p.name}`, disabled: !running });
      } },
    ], ports, { id: "apps-list" }),
    running ? null : h("p", { class: "hint" }, "Apps open while the session is RUNNING."));
}

// openApp opens the app in a new tab: the tab is opened at the click (a
// tab opened after waiting for the token would be blocked as a pop-up),
// then sent to the link, which sets the app's cookie on the apps origin.
async function openApp(s, name) {
  const tab = window.open("", "_blank");
  if (tab) tab.opener = null;
  try {
    const tok = await api.post(`/v1/sessions/${encodeURIComponent(s.id)}/apps/${encodeURIComponent(name)}/token`);
    if (tab) tab.location.href = tok.url;
    else location.href = tok.url;
  } catch (e) {
    if (tab) tab.close();
    toast(`Cannot open ${name}: ${errorText(e)}`, "error");
  }
}

// drawTerminal offers a terminal in a RUNNING session to its owner and to
// admins (whose use of it the manager records).
function drawTerminal(el, s, ctx) {
  const running = s.status === "RUNNING";
  const mayUse = s.owner === ctx.me.email || ctx.isAdmin;
  el.hidden = !mayUse || ended.has(s.status);
  if (el.hidden) { closeTerminal(el); return; }
  if (el.dataset.open === "yes") return;
  const n = (s.containers || []).length;
  const which = h("select", { id: "terminal-container", hidden: n < 2 },
    (s.containers || []).map((_, i) => h("option", { value: String(i) }, i === 0 ? "main1" : `sub${i}`)));
  const note = h("span", { class: "hint", id: "terminal-note" });
  const screen = h("div", { class: "terminal", id: "session-terminal", hidden: true });
  const open = button("OPEN TERMINAL", async () => {
    closeTerminal(el);
    open.disabled = true;
    let openTerminal;
    try {
      // xterm.js is loaded when a terminal is first opened, not with the page.
      ({ openTerminal } = await import("../terminal.js"));
    } catch (e) {
      clear(note, `The terminal cannot be loaded: ${errorText(e)}`);
      open.disabled = false;
      return;
    }
    screen.hidden = false;
    el.dataset.open = "yes";
    clear(note, "connected; what you type goes to the container");
    close.hidden = false;
    el.closeTerminal = openTerminal(screen, s.id, Number(which.value || 0), (text) => {
      clear(note, text);
      el.dataset.open = "";
      open.disabled = false;
      close.hidden = true;
    });
  }, { id: "open-terminal", disabled: !running });
  const close = button("CLOSE", () => { closeTerminal(el); screen.hidden = true; clear(note, "closed"); open.disabled = false; close.hidden = true; },
    { class: "secondary small", id: "close-terminal", hidden: true });
  clear(el, h("div", { class: "card-head" }, h("h2", {}, "Terminal"), which, open, close, note),
    running ? null : h("p", { class: "hint" }, `A terminal opens once the session is RUNNING; it is ${s.status}.`), screen);
}

function closeTerminal(el) {
  if (el.closeTerminal) {
    el.closeTerminal();
    el.closeTerminal = null;
  }
  el.dataset.open = "";
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
      { title: "Address", cell: (c) => c.address || "—" },
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
