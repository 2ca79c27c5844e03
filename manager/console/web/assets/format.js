// How slots and times read on screen. On the wire cpu is cores, mem is
// bytes, cuda.device whole GPUs and cuda.shares fractions of a GPU (fGPU);
// a null limit is unlimited (∞).

export const GiB = 1024 ** 3;

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

export function withUnit(slot, v) {
  if (v === null || v === undefined) return INF;
  const s = slotNames.find((x) => x.key === slot);
  const a = amount(slot, v);
  const unit = slot === "cpu" && a === "1" ? "core" : s ? s.unit : "";
  return `${a} ${unit}`.trim();
}

// bytes formats a size in B, KiB, MiB, GiB or TiB.
export function bytes(n) {
  if (n === null || n === undefined) return INF;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${trim(v, i ? 1 : 0)} ${units[i]}`;
}

export function time(s) {
  if (!s) return "";
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function seconds(n) {
  if (n === null || n === undefined) return INF;
  if (n === 0) return "never";
  return `${n} s`;
}
