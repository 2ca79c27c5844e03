// Statistics page: usage over time (GET /v1/usage) as a stacked bar chart
// per day or month, drawn here as SVG, and a table of the totals per user,
// group, domain or keypair over the range, with the CSV export. What the
// page shows is what the API lets the caller see: users their own usage,
// admins and monitors their domain's, superadmins everyone's.
import * as api from "../api.js";
import { h, clear, button, notice, table, errorText, field, clip } from "../ui.js";
import { exportDialog } from "../export.js";
import { GiB, bytes, duration } from "../format.js";

const groupings = [
  { key: "user", label: "User" },
  { key: "group", label: "Group" },
  { key: "domain", label: "Domain" },
  { key: "keypair", label: "Keypair" },
];
const steps = [{ key: "day", label: "Day" }, { key: "month", label: "Month" }];

// The measures the chart can show: each an item's value in a unit people
// read (slot-seconds as hours).
export const measures = [
  { key: "cpu", label: "CPU", unit: "core-hours", value: (it) => Number(it.allocated.cpu) / 3600 },
  { key: "mem", label: "RAM", unit: "GiB-hours", value: (it) => Number(it.allocated.mem) / GiB / 3600 },
  { key: "cuda.device", label: "GPU", unit: "GPU-hours", value: (it) => Number(it.allocated["cuda.device"]) / 3600 },
  { key: "cuda.shares", label: "fGPU", unit: "fGPU-hours", value: (it) => Number(it.allocated["cuda.shares"]) / 3600 },
  { key: "started", label: "Sessions started", unit: "sessions", value: (it) => it.sessions.started },
  { key: "cpu_seconds", label: "CPU time used", unit: "CPU-hours", value: (it) => Number(it.measured.cpu_seconds) / 3600 },
];

// At most this many keys get a colour of their own in the chart; the rest
// are summed as "others".
const maxSeries = 8;
const palette = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#65a30d", "#db2777"];
const othersColour = "#9ca3af";

function isoDay(d) { return d.toISOString().slice(0, 10); }

// defaults: the last 30 days up to today (UTC), per user, per day.
function query(params) {
  const today = new Date();
  const from = new Date(today.getTime() - 29 * 86400000);
  return {
    from: params.get("from") || isoDay(from),
    to: params.get("to") || isoDay(today),
    group_by: groupings.some((g) => g.key === params.get("group_by")) ? params.get("group_by") : "user",
    step: steps.some((s) => s.key === params.get("step")) ? params.get("step") : "day",
    measure: measures.some((m) => m.key === params.get("measure")) ? params.get("measure") : "cpu",
  };
}

export async function render(main, ctx) {
  const q = query(ctx.params);
  const from = h("input", { type: "date", id: "usage-from", value: q.from });
  const to = h("input", { type: "date", id: "usage-to", value: q.to });
  const groupBy = h("select", { id: "usage-group-by" }, groupings.map((g) => h("option", { value: g.key, selected: g.key === q.group_by }, g.label)));
  const step = h("select", { id: "usage-step" }, steps.map((s) => h("option", { value: s.key, selected: s.key === q.step }, s.label)));
  const measure = h("select", { id: "usage-measure" }, measures.map((m) => h("option", { value: m.key, selected: m.key === q.measure }, `${m.label} (${m.unit})`)));
  const fields = [field("From", from), field("To", to), field("Per", groupBy), field("Step", step), field("Chart", measure)];
  const apply = () => ctx.navigate(new URLSearchParams({ from: from.value, to: to.value, group_by: groupBy.value, step: step.value, measure: measure.value }));
  const apiQuery = () => ({ from: from.value, to: to.value, group_by: groupBy.value, step: step.value });
  const msg = h("div", { id: "usage-message" });
  main.append(
    h("section", { class: "card" },
      h("div", { class: "usage-form" }, fields,
        button("SHOW", apply, { id: "usage-apply" }),
        button("EXPORT CSV", () => exportDialog({ title: "Export usage", path: "/v1/export/usage.csv", query: apiQuery(), defaultName: `usage-${from.value}-${to.value}` }),
          { id: "usage-export", class: "secondary" })),
      h("p", { class: "hint" }, ctx.isWatcher
        ? (ctx.isSuperadmin ? "Everyone's usage." : "The usage of your domain's users.")
        : "Your own usage.",
      " Allocated resources count from a session's placement to its end (a running one up to now), in UTC days.")),
    msg);
  const fe = (e) => (e.fieldErrors ? e.fieldErrors() : {});
  let usage;
  try {
    usage = await api.get(`/v1/usage?${new URLSearchParams(apiQuery())}`);
  } catch (e) {
    const errs = fe(e);
    fields[0].setError(errs.from);
    fields[1].setError(errs.to);
    fields[2].setError(errs.group_by);
    fields[3].setError(errs.step);
    main.append(notice("error", `Cannot read the usage: ${errorText(e)}`));
    return;
  }
  const m = measures.find((x) => x.key === q.measure);
  const items = usage.items || [];
  main.append(
    h("section", { class: "card" },
      h("h2", {}, `${m.label} per ${q.step}, ${m.unit}`),
      items.length ? chart(items, m, periods(q.from, q.to, q.step)) : notice("info", "No usage in this range.")),
    h("section", { class: "card" },
      h("h2", {}, `Totals per ${groupings.find((g) => g.key === q.group_by).label.toLowerCase()}, ${q.from} to ${q.to}`),
      totalsTable(items)));
}

// periods lists every period of the range, so days without usage show.
export function periods(from, to, step) {
  const out = [];
  const end = new Date(`${to}T00:00:00Z`);
  let d = new Date(`${from}T00:00:00Z`);
  if (isNaN(d) || isNaN(end)) return out;
  if (step === "month") d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  while (d <= end && out.length < 800) {
    out.push(step === "month" ? isoDay(d).slice(0, 7) : isoDay(d));
    d = step === "month" ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)) : new Date(d.getTime() + 86400000);
  }
  return out;
}

// series orders the keys by their total, largest first; past maxSeries
// they are "others".
export function series(items, m) {
  const totals = new Map();
  for (const it of items) totals.set(it.key, (totals.get(it.key) || 0) + m.value(it));
  const keys = [...totals.keys()].sort((a, b) => totals.get(b) - totals.get(a) || (a < b ? -1 : 1));
  const shown = keys.slice(0, keys.length > maxSeries ? maxSeries - 1 : maxSeries);
  const colour = new Map(shown.map((k, i) => [k, palette[i]]));
  return { shown, colour, others: keys.length > shown.length };
}

// niceMax is a round number at or above v for the y axis.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= v) return f * p;
  return 10 * p;
}

function fmt(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString("en");
  return Number(v.toPrecision(3)).toString();
}

const svgNS = "http://www.w3.org/2000/svg";
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// chart is a stacked bar chart: one bar per period, one segment per key.
export function chart(items, m, periodList) {
  const { shown, colour, others } = series(items, m);
  const byPeriod = new Map(periodList.map((p) => [p, new Map()]));
  for (const it of items) {
    const row = byPeriod.get(it.period) || new Map();
    byPeriod.set(it.period, row);
    const key = colour.has(it.key) ? it.key : "others";
    row.set(key, (row.get(key) || 0) + m.value(it));
  }
  const order = [...shown, ...(others ? ["others"] : [])];
  const list = [...byPeriod.keys()].sort();
  const top = niceMax(Math.max(0, ...list.map((p) => [...byPeriod.get(p).values()].reduce((a, b) => a + b, 0))));
  const W = 760, H = 280, left = 64, bottom = 40, right = 12, topPad = 12;
  const plotW = W - left - right, plotH = H - bottom - topPad;
  const slot = plotW / Math.max(1, list.length);
  const barW = Math.max(2, Math.min(40, slot * 0.7));
  const y = (v) => topPad + plotH - (v / top) * plotH;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "usage-chart", id: "usage-chart", role: "img",
    "aria-label": `${m.label} per period in ${m.unit}` });
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    svg.append(s("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), class: "grid-line" }),
      s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis-label" }, fmt(v)));
  }
  const labelEvery = Math.ceil(list.length / 12);
  list.forEach((p, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let base = 0;
    const bar = s("g", { class: "usage-bar", "data-period": p });
    for (const key of order) {
      const v = byPeriod.get(p).get(key) || 0;
      if (v <= 0) continue;
      const rect = s("rect", { x, y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)),
        fill: colour.get(key) || othersColour, "data-key": key, "data-value": v },
      s("title", {}, `${p} · ${key}: ${fmt(v)} ${m.unit}`));
      bar.append(rect);
      base += v;
    }
    svg.append(bar);
    if (i % labelEvery === 0) {
      svg.append(s("text", { x: left + i * slot + slot / 2, y: H - bottom + 16, "text-anchor": "middle", class: "axis-label" },
        list.length > 20 ? p.slice(5) : p));
    }
  });
  svg.append(s("line", { x1: left, x2: W - right, y1: y(0), y2: y(0), class: "axis" }));
  const legend = h("div", { class: "legend", id: "usage-legend" },
    order.map((k) => h("span", { class: "legend-item", "data-key": k },
      s("svg", { width: 12, height: 12, viewBox: "0 0 12 12", "aria-hidden": "true" },
        s("rect", { width: 12, height: 12, rx: 2, fill: colour.get(k) || othersColour })), clip(k))));
  return h("div", { class: "usage-chart-wrap" }, svg, legend);
}

// totalsTable sums the items of each key over the range.
export function totalsTable(items) {
  const rows = new Map();
  for (const it of items) {
    let r = rows.get(it.key);
    if (!r) {
      r = { key: it.key, cpu: 0, mem: 0, gpu: 0, fgpu: 0, started: 0, finished: 0, failed: 0, cpuTime: 0, peak: 0 };
      rows.set(it.key, r);
    }
    r.cpu += Number(it.allocated.cpu);
    r.mem += Number(it.allocated.mem);
    r.gpu += Number(it.allocated["cuda.device"]);
    r.fgpu += Number(it.allocated["cuda.shares"]);
    r.started += it.sessions.started;
    r.finished += it.sessions.finished;
    r.failed += it.sessions.failed;
    r.cpuTime += Number(it.measured.cpu_seconds);
    r.peak = Math.max(r.peak, it.measured.peak_mem_bytes);
  }
  const hours = (v) => fmt(v / 3600);
  return table([
    { title: "Key", cell: (r) => clip(r.key, { "data-key": r.key }) },
    { title: "CPU core-hours", class: "num", cell: (r) => hours(r.cpu) },
    { title: "RAM GiB-hours", class: "num", cell: (r) => hours(r.mem / GiB) },
    { title: "GPU-hours", class: "num", cell: (r) => hours(r.gpu) },
    { title: "fGPU-hours", class: "num", cell: (r) => hours(r.fgpu) },
    { title: "Sessions started", class: "num", cell: (r) => String(r.started) },
    { title: "Finished", class: "num", cell: (r) => String(r.finished) },
    { title: "Failed", class: "num", cell: (r) => String(r.failed) },
    { title: "CPU time used", class: "num", cell: (r) => duration(r.cpuTime) },
    { title: "Peak RAM of a session", class: "num", cell: (r) => (r.peak ? bytes(r.peak) : "") },
  ], [...rows.values()].sort((a, b) => b.cpu - a.cpu || (a.key < b.key ? -1 : 1)), { id: "usage-table", empty: "No usage in this range." });
}
