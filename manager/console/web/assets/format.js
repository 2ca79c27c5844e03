// How slots, sizes and times read on screen. On the wire cpu is cores, mem
// is bytes, cuda.device whole GPUs and cuda.shares fractions of a GPU
// (fGPU); a null limit is unlimited (∞). Memory and sizes are binary: the
// manual's "GB" is a GiB (1024³ bytes), and the console says GiB or MiB.
// Durations read as 1h, 30m, 2d; the console never shows raw bytes or
// seconds.

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export const slotNames = [
  { key: "cpu", label: "CPU", unit: "cores" },
  { key: "mem", label: "RAM", unit: "GiB" },
  { key: "cuda.device", label: "GPU", unit: "GPU" },
  { key: "cuda.shares", label: "fGPU", unit: "fGPU" },
];

export const INF = "∞";

function trim(n, digits) {
  return Number(n.toFixed(digits)).toString();
}

// amount formats a slot value in the unit of slotNames (no unit suffix).
export function amount(slot, v) {
  if (v === null || v === undefined) return INF;
  if (slot === "mem") return trim(v / GiB, 2);
  if (slot === "cpu") return trim(v, 3);
  return trim(v, 2);
}

// withUnit is a slot value with its unit; memory below 1 GiB is in MiB.
export function withUnit(slot, v) {
  if (v === null || v === undefined) return INF;
  if (slot === "mem") return v !== 0 && Math.abs(v) < GiB ? `${trim(v / MiB, 1)} MiB` : `${trim(v / GiB, 2)} GiB`;
  const s = slotNames.find((x) => x.key === slot);
  const a = amount(slot, v);
  const unit = slot === "cpu" && a === "1" ? "core" : s ? s.unit : "";
  return `${a} ${unit}`.trim();
}

// slotsText is "CPU 2 cores · RAM 4 GiB · fGPU 0.5" for the slots that
// are not zero (a GPU count needs no unit after its label).
export function slotsText(s) {
  return slotNames.filter((n) => (s || {})[n.key])
    .map((n) => `${n.label} ${n.unit === n.label ? amount(n.key, s[n.key]) : withUnit(n.key, s[n.key])}`).join(" · ");
}

// bytes formats a size in B, KiB, MiB, GiB or TiB.
export function bytes(n) {
  if (n === null || n === undefined) return INF;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${trim(v, i ? 1 : 0)} ${units[i]}`;
}

export function time(s) {
  if (!s) return "";
  const d = new Date(s);
  // A no-break space: a time never splits over two lines.
  return isNaN(d) ? s : d.toISOString().replace("T", "\u00a0").replace(/\.\d+Z$/, "Z").replace(/:\d\dZ$/, "Z");
}

// timeSec is time() to the second (a status history's steps).
export function timeSec(s) {
  if (!s) return "";
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace("T", "\u00a0").replace(/\.\d+Z$/, "Z");
}

// duration is a number of seconds as "1h", "1h30m", "2d3h", "45s".
export function duration(n) {
  if (n === null || n === undefined) return INF;
  let rest = Math.round(n);
  if (rest === 0) return "0s";
  const out = [];
  for (const [u, secs] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]]) {
    const q = Math.floor(rest / secs);
    if (q > 0) { out.push(`${q}${u}`); rest -= q * secs; }
  }
  return out.join("");
}

// seconds is a limit in seconds: ∞ when unset, "never" when 0.
export function seconds(n) {
  if (n === null || n === undefined) return INF;
  if (n === 0) return "never";
  return duration(n);
}

// since is how long ago a time was, as a duration ("5m ago").
export function since(s) {
  if (!s) return "";
  const d = new Date(s);
  if (isNaN(d)) return s;
  return `${duration(Math.max(0, (Date.now() - d.getTime()) / 1000))} ago`;
}

// Folder permissions as the manual writes them, and in words.
export const permLabel = { ro: "R", rw: "RW", wd: "RW-D" };
export const permTitle = { ro: "Read only", rw: "Read & write", wd: "Read, write & delete" };
