// Sessions page: the resource indicator (GET /v1/resources/me), the START
// dialog (image from the agents' images or typed, type, command split as a
// shell would, environment, folders to mount, cluster size within the
// policy, and sliders that stop at `allocatable`), the session list newest
// first with status and reasons (a failed batch session shows its last log
// lines), terminate, a click on a session opens its detail, and for admins
// the "..." → export CSV menu on the right of the OTHERS tab.
import * as api from "../api.js";
import { h, clear, button, iconButton, notice, table, tabs, moreMenu, toast, errorText, field, openDialog, confirmDialog, shortId, clip, switchInput, follow } from "../ui.js";
import { exportDialog } from "../export.js";
import { slotNames, amount, slotsText, time, GiB, INF } from "../format.js";
import { splitWords } from "../shellwords.js";
import { sessionStatuses, ended, endingOrEnded } from "../status.js";

// The manual's tabs: sessions that have not ended, those that ended without
// an error, and the rest (ERROR, and any status this console does not know).
const live = (s) => sessionStatuses.includes(s) && !ended.has(s);
const finishedWell = (s) => ended.has(s) && s !== "ERROR";
const groups = [
  { key: "running", label: "RUNNING", has: live },
  { key: "finished", label: "FINISHED", has: finishedWell },
  { key: "others", label: "OTHERS", has: (s) => !live(s) && !finishedWell(s) },
];
// At most this many failed batch sessions of a page have their logs read
// for the list (one request each).
const maxLogTails = 10;

export function sessionLink(s) {
  return h("a", { href: `#/session?id=${encodeURIComponent(s.id)}`, class: "session-link clip narrow", title: s.name || s.id, "data-session": s.id }, s.name || s.id);
}

export function statusBadge(status) {
  return h("span", { class: `status ${status.toLowerCase()}`, "data-status": status }, status);
}

// reason is why the session is where it is: its status_info, the last
// change's reason and, once it ended, the exit code.
export function reason(s) {
  const hist = s.status_history || [];
  const last = hist.length ? hist[hist.length - 1].reason : "";
  const parts = [s.status_info, last && last !== s.status_info ? last : ""].filter(Boolean);
  if (s.exit_code !== null && s.exit_code !== undefined) parts.push(`exit code ${s.exit_code}`);
  return parts.join("; ");
}

// failedBatch: a batch session whose command ended with a code other than 0.
export function failedBatch(s) {
  return s.type === "batch" && s.exit_code !== null && s.exit_code !== undefined && s.exit_code !== 0;
}

// lastLines is the end of a log: its last n lines that are not empty.
export function lastLines(text, n) {
  return String(text || "").split("\n").filter((l) => l.trim() !== "").slice(-n).join("\n");
}

export async function render(main, ctx) {
  const group = groups.find((g) => g.key === ctx.params.get("tab")) || groups[0];
  const indicator = h("section", { class: "indicator", id: "resource-indicator" });
  const msg = h("div", { id: "sessions-message" });
  const list = h("div", { id: "sessions-table" });
  let res = null;
  // moving: a listed session is on its way somewhere (placed, starting,
  // ending): the list follows it closely.
  let moving = false;
  let hurry = () => {};
  const tails = new Map(); // session id → its last log lines, read once

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
      sessions = await api.listAll(ctx.isWatcher ? "/v1/sessions?all=true" : "/v1/sessions");
    } catch (e) {
      clear(msg, notice("error", `Cannot list sessions: ${errorText(e)}`));
      return;
    }
    // Of all the user's sessions, not only this tab's: one that leaves
    // the RUNNING tab arrives in another.
    moving = sessions.some((s) => !ended.has(s.status) && s.status !== "RUNNING");
    // The API lists newest first.
    sessions = sessions.filter((s) => group.has(s.status));
    const mine = (s) => s.owner === ctx.me.email;
    const wanted = sessions.filter((s) => failedBatch(s) && !tails.has(s.id) && (mine(s) || ctx.isAdmin)).slice(0, maxLogTails);
    await Promise.all(wanted.map(async (s) => {
      try {
        tails.set(s.id, lastLines(await api.get(`/v1/sessions/${encodeURIComponent(s.id)}/logs`), 3));
      } catch (e) {
        tails.set(s.id, `(its log cannot be read: ${errorText(e)})`);
      }
    }));
    clear(list, table([
      { title: "Session", cell: (s) => h("div", { class: "stack" }, sessionLink(s), shortId(s.id)) },
      ctx.isWatcher ? { title: "Owner", cell: (s) => clip(s.owner, { class: "narrow" }) } : null,
      { title: "Image", cell: (s) => clip(s.image, { class: "narrow" }) },
      { title: "Type", cell: (s) => s.type },
      { title: "Status", cell: (s) => h("div", { class: "stack" }, statusBadge(s.status),
        h("span", { class: "reason clamp", title: reason(s) }, reason(s)),
        tails.get(s.id) ? h("pre", { class: "log-tail", title: "The last lines of its log" }, tails.get(s.id)) : null) },
      { title: "Resources", cell: (s) => h("span", { class: "wrap" }, slotsText(s.requested) + ((s.cluster_size || 1) > 1 ? ` × ${s.cluster_size}` : "")) },
      { title: "Created", cell: (s) => time(s.created_at) },
      { title: "Controls", class: "controls", cell: (s) => (endingOrEnded.has(s.status) ? "" :
        iconButton("stop", `Terminate ${s.name || s.id}`, async () => {
          if (!(await confirmDialog("Terminate session", `Terminate ${s.name || s.id}? Its containers are stopped.`))) return;
          try {
            await api.del(`/v1/sessions/${encodeURIComponent(s.id)}`);
            toast(`Terminating ${s.name || s.id}`);
          } catch (e) {
            clear(msg, notice("error", `Cannot terminate ${s.name || s.id}: ${errorText(e)}`));
          }
          await Promise.all([loadList(), loadIndicator()]);
          hurry();
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
      hurry();
    }
  }, { id: "start-session" });
  const refresh = button("REFRESH", () => Promise.all([loadList(), loadIndicator()]), { class: "secondary", id: "refresh-sessions" });
  const more = ctx.isWatcher
    ? moreMenu("sessions-more", [{ id: "export-sessions", label: "Export CSV", action: () => exportDialog({
      title: "Export sessions as CSV", path: "/v1/export/sessions.csv", query: { all: "true" }, defaultName: "sessions", buttonLabel: "EXPORT",
    }) }])
    : null;
  main.append(indicator, h("div", { class: "toolbar" }, start, refresh),
    tabs(groups, group.key, (k) => ctx.navigate(new URLSearchParams({ tab: k })), more), msg, list);
  await Promise.all([loadIndicator(), loadList()]);
  // Statuses move on their own (the scheduler, the agents): follow them
  // while this page is on screen.
  hurry = follow(main, () => Promise.all([loadList(), loadIndicator()]), { busy: () => moving });
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
    h("div", { class: "indicator-head" }, h("b", {}, "Resources"), h("span", {}, ` of keypair ${res.access_key || ""} (policy ${res.resource_policy})`),
      h("span", { class: "spacer" }), h("span", { id: "indicator-sessions" }, `Sessions ${c.used || 0} / ${c.max === null || c.max === undefined ? INF : c.max}`)),
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

const envName = /^[A-Za-z_][A-Za-z0-9_]*$/;

// parseEnv reads NAME=value lines; it returns [env, problems].
export function parseEnv(text) {
  const env = {};
  const bad = [];
  String(text || "").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    const eq = line.indexOf("=");
    const name = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (eq < 0) bad.push(`line ${i + 1}: write NAME=value`);
    else if (!envName.test(name)) bad.push(`line ${i + 1}: ${name || "(empty)"} is not a variable name (letters, digits, _; not starting with a digit)`);
    else if (name in env) bad.push(`line ${i + 1}: ${name} is set twice`);
    else env[name] = line.slice(eq + 1);
  });
  return [env, bad];
}

const permWords = { ro: "read-only", rw: "read & write", wd: "read & write" };

async function startDialog(res) {
  const [images, folders] = await Promise.all([
    // The images the caller's policy allows (allowed_images).
    api.listAll("/v1/images?allowed=true").catch(() => []),
    api.listAll("/v1/folders").catch(() => []),
  ]);
  const imageNames = [...new Set(images.map((i) => i.name))].sort();
  const list = h("datalist", { id: "session-image-list" }, imageNames.map((n) => h("option", { value: n })));
  const image = field("Image", h("input", { type: "text", id: "session-image", list: "session-image-list", autocomplete: "off",
    value: imageNames.includes("berth/base:latest") || !imageNames.length ? "berth/base:latest" : imageNames[0] }),
  imageNames.length ? `${imageNames.length} image${imageNames.length === 1 ? "" : "s"} on the agents (pick one or type another name).` : "No agent reports an image yet: type its name.");
  image.append(list);
  const name = field("Session name (optional)", h("input", { type: "text", id: "session-name" }));
  const type = field("Type", h("select", { id: "session-type" }, h("option", { value: "interactive" }, "interactive"), h("option", { value: "batch" }, "batch")),
    "A batch session ends when its command ends; an interactive one runs until you terminate it.");
  const command = field("Command (optional)", h("input", { type: "text", id: "session-command", placeholder: "sh -c 'echo hi; exit 3'", autocomplete: "off" }),
    "Split into words as a shell splits them ('…' and \"…\" group words, \\ escapes); no shell runs it unless you write sh -c '…'.");
  const words = h("div", { class: "hint words", id: "session-command-words" });
  command.insertBefore(words, command.lastChild);
  const showWords = () => {
    command.setError();
    clear(words);
    const raw = command.input.value.trim();
    if (!raw) return null;
    try {
      const w = splitWords(raw);
      clear(words, "Runs: ", w.map((x) => h("code", { class: "word" }, x)));
      return w;
    } catch (e) {
      command.setError(`The command cannot be read: ${e.message}.`);
      return undefined;
    }
  };
  command.input.addEventListener("input", showWords);
  const env = field("Environment variables (optional)", h("textarea", { id: "session-env", rows: 2, placeholder: "NAME=value, one a line", spellcheck: "false" }),
    "The session shows their names only, never the values.");
  const maxSize = Math.max(1, res.max_containers_per_session || 1);
  const size = field("Cluster size", h("input", { type: "number", id: "session-cluster-size", min: 1, max: maxSize, step: 1, value: 1 }),
    `Containers in the session: 1 to ${maxSize} (your policy); the resources below are per container.`);
  // Root only where the policy allows it; the API refuses it otherwise.
  const root = res.allow_root ? switchInput("Run as root in the containers (your policy allows it)", false, "session-root") : null;
  const mountBoxes = folders.map((f) => {
    const ro = f.permission === "ro" || f.over_quota;
    const box = h("input", { type: "checkbox", value: f.id, "data-folder": f.name, id: `mount-${f.id}` });
    return { box, el: h("label", { class: "checkbox mount", for: box.id }, box,
      h("span", {}, h("b", {}, f.name), ` at /home/work/${f.name}, `, h("span", { class: `perm-word ${ro ? "ro" : "rw"}` }, ro ? "read-only" : permWords[f.permission] || f.permission),
        f.type === "group" ? ` (group ${f.group})` : "")) };
  });
  const mounts = h("fieldset", { id: "session-mounts" }, h("legend", {}, "Folders to mount"),
    mountBoxes.length ? h("div", { class: "mount-list" }, mountBoxes.map((m) => m.el))
      : h("div", { class: "hint" }, "You have no folders yet (Data & Storage → NEW FOLDER)."));
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
  return openDialog({ title: "Start a session", id: "start-dialog", wide: true }, (close) => ({
    body: [msg,
      h("div", { class: "two-col" }, image, name, type, size),
      command, env, mounts, root ? root.el : null,
      h("fieldset", {}, h("legend", {}, "Resources per container"), h("div", { class: "grid" }, sliderFields))],
    actions: [button("CANCEL", () => close(), { class: "secondary" }), button("LAUNCH", async () => {
      clear(msg);
      for (const f of [image, env, size]) f.setError();
      let bad = false;
      if (!image.input.value.trim()) { image.setError("Image is required."); bad = true; }
      const cmd = showWords();
      if (cmd === undefined) bad = true;
      const [vars, envBad] = parseEnv(env.input.value);
      if (envBad.length) { env.setError(envBad); bad = true; }
      const n = Number(size.input.value);
      if (!Number.isInteger(n) || n < 1 || n > maxSize) { size.setError(`From 1 to ${maxSize}.`); bad = true; }
      if (bad) return;
      const resources = {};
      for (const [k, input] of Object.entries(sliders)) {
        const v = Number(input.value);
        if (v > 0 || k === "cpu" || k === "mem") resources[k] = sliderSpec[k].toWire(v);
      }
      const body = { image: image.input.value.trim(), type: type.input.value, resources };
      if (name.input.value.trim()) body.name = name.input.value.trim();
      if (cmd && cmd.length) body.command = cmd;
      if (Object.keys(vars).length) body.env = vars;
      if (n > 1) body.cluster_size = n;
      if (root && root.input.checked) body.run_as_root = true;
      const chosen = mountBoxes.filter((m) => m.box.checked).map((m) => m.box.value);
      if (chosen.length) body.mounts = chosen;
      try {
        close(await api.post("/v1/sessions", body));
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        const byField = { image, command, env, cluster_size: size };
        let placed = false;
        for (const [k, r] of Object.entries(fe)) if (byField[k]) { byField[k].setError(r); placed = true; }
        if (!placed || Object.keys(fe).some((k) => !byField[k])) clear(msg, notice("error", errorText(e)));
      }
    }, { id: "start-submit" })],
  }));
}
