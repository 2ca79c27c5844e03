// Small DOM helpers. Text always goes in as text nodes (never innerHTML),
// so nothing a user typed can become markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    // Through the CSSOM: the CSP allows no inline style attributes.
    else if (k === "style") Object.assign(el.style, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function button(label, onclick, attrs = {}) {
  return h("button", { type: "button", ...attrs, onclick }, label);
}

// Icons are drawn as inline SVG: no icon font or emoji font is needed, and
// the CSP (no inline style, own origin only) has nothing to object to.
const iconPaths = {
  trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13", "M10 11v6", "M14 11v6"],
  gear: ["M12 9a3 3 0 1 0 0 6a3 3 0 1 0 0-6z",
    "M12 2v3M12 19v3M2 12h3M19 12h3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M4.9 19.1l2.1-2.1M17 7l2.1-2.1"],
  info: ["M12 11v6", "M12 7v.01", "M12 3a9 9 0 1 0 0 18a9 9 0 1 0 0-18z"],
  stop: ["M7 7h10v10H7z"],
  share: ["M4 12v7h16v-7", "M12 3v12", "M8 7l4-4 4 4"],
  copy: ["M9 9h11v11H9z", "M5 15H4V4h11v1"],
  download: ["M4 17v3h16v-3", "M12 4v12", "M8 12l4 4 4-4"],
  folder: ["M3 6h6l2 2h10v11H3z"],
  file: ["M6 3h8l4 4v14H6z", "M14 3v4h4"],
  users: ["M9 11a3 3 0 1 0 0-6a3 3 0 1 0 0 6z", "M3 20c0-3 3-5 6-5s6 2 6 5", "M16 5a3 3 0 0 1 0 6", "M18 15c2 .5 3 2 3 5"],
  undo: ["M9 14L4 9l5-5", "M4 9h11a5 5 0 0 1 0 10h-3"],
};

export function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "svg-icon");
  for (const d of iconPaths[name] || []) {
    const p = document.createElementNS(ns, "path");
    p.setAttribute("d", d);
    svg.append(p);
  }
  return svg;
}

// iconButton is a small button showing an icon (a name of iconPaths, or text).
export function iconButton(glyph, title, onclick, attrs = {}) {
  const { class: extra, ...rest } = attrs;
  return h("button", { type: "button", class: `icon ${extra || ""}`.trim(), title, "aria-label": title, ...rest, onclick },
    iconPaths[glyph] ? icon(glyph) : glyph);
}

// copyText puts text on the clipboard (the Clipboard API where the page
// may use it, else a selected hidden field) and says so.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { class: "copy-buffer", readonly: true }, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast(`Copied ${text.length > 40 ? text.slice(0, 40) + "…" : text}`);
}

// shortId shows a long id shortened, the whole of it on hover, with a copy
// button: tables stay narrow and nothing is lost.
export function shortId(id, keep = 10) {
  if (!id) return "";
  const text = id.length > keep + 1 ? `${id.slice(0, keep)}…` : id;
  return h("span", { class: "short-id", title: id, "data-id": id },
    h("code", {}, text),
    iconButton("copy", `Copy ${id}`, (e) => { e.stopPropagation(); copyText(id); }, { class: "copy", "data-copy": id }));
}

// clip shows text on one line cut with "…" where it is too long for its
// column, the whole of it on hover (names, emails, images).
export function clip(text, attrs = {}) {
  const { class: extra, ...rest } = attrs;
  return h("span", { class: `clip ${extra || ""}`.trim(), title: text, ...rest }, text);
}

// meter is a labelled bar: used of max (max 0 or null: no bar fill).
export function meter(label, used, max, text, attrs = {}) {
  const pct = max > 0 ? Math.min(100, (used / max) * 100) : 0;
  return h("div", { class: "meter", ...attrs },
    h("div", { class: "meter-head" }, h("span", { class: "meter-label" }, label), h("span", { class: "meter-text" }, text)),
    h("div", { class: "bar" }, h("div", { class: `fill${pct >= 90 ? " high" : ""}`, style: { width: `${pct}%` } })));
}

// notice shows a message block: kind is "info", "error" or "ok".
export function notice(kind, ...text) {
  return h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, ...text);
}

let toastBox;
export function toast(text, kind = "ok") {
  if (!toastBox) {
    toastBox = h("div", { class: "toasts", "aria-live": "polite" });
    document.body.append(toastBox);
  }
  // A long name (an export of 255 characters) is shown by its ends.
  const shown = text.length > 140 ? `${text.slice(0, 90)}…${text.slice(-40)}` : text;
  const t = h("div", { class: `toast ${kind}`, title: text }, shown);
  toastBox.append(t);
  // A few at a time: older news gives way.
  while (toastBox.children.length > maxToasts) toastBox.firstChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 4000);
}

const maxToasts = 3;

// clearToasts drops every toast (at logout: the next user must not read
// the last one's news).
export function clearToasts() {
  if (toastBox) toastBox.replaceChildren();
}

// table renders rows with columns [{title, cell(row) -> node|string, head?: node}].
export function table(columns, rows, { empty = "Nothing here yet.", id } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.class }, c.head || c.title)));
  return h("table", { class: "list", id }, h("thead", {}, head), tableBody(columns, rows, empty));
}

// tableBody renders only the rows, for a table whose header stays (one
// with inputs in it).
export function tableBody(columns, rows, empty = "Nothing here yet.") {
  const body = rows.length
    ? rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: c.class, "data-col": c.title }, c.cell(r)))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty))];
  return h("tbody", {}, body);
}

// openDialog shows a modal <dialog>; content(close) returns its body and
// actions. It resolves with what close was called with.
export function openDialog({ title, id, wide = false }, content) {
  return new Promise((resolve) => {
    const dlg = h("dialog", { class: wide ? "wide" : "", id });
    let done = false;
    const close = (value) => {
      if (done) return;
      done = true;
      dlg.close();
      dlg.remove();
      resolve(value);
    };
    const { body, actions } = content(close);
    dlg.append(
      h("header", {}, h("h2", {}, title), iconButton("×", "Close", () => close(undefined), { class: "close" })),
      h("div", { class: "dialog-body" }, body),
      h("footer", {}, actions),
    );
    dlg.addEventListener("cancel", (e) => { e.preventDefault(); close(undefined); });
    document.body.append(dlg);
    dlg.showModal();
    const first = dlg.querySelector("input:not([disabled]), select, textarea");
    if (first) first.focus();
  });
}

export function confirmDialog(title, text, okLabel = "OKAY") {
  return openDialog({ title, id: "confirm-dialog" }, (close) => ({
    body: h("p", {}, text),
    actions: [button("CANCEL", () => close(false), { class: "secondary" }), button(okLabel, () => close(true), { class: "danger", id: "confirm-ok" })],
  }));
}

// field is a labelled input with its own error line under it.
export function field(label, input, hint) {
  const err = h("div", { class: "field-error", role: "alert" });
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  const wrap = h("div", { class: "field" }, h("label", { for: id }, label), input, hint ? h("div", { class: "hint" }, hint) : null, err);
  wrap.setError = (msgs) => {
    const list = Array.isArray(msgs) ? msgs : msgs ? [msgs] : [];
    clear(err, list.map((m) => h("div", {}, m)));
    input.classList.toggle("invalid", list.length > 0);
    input.setAttribute("aria-invalid", list.length > 0 ? "true" : "false");
  };
  wrap.input = input;
  return wrap;
}

export function switchInput(label, checked, id) {
  const input = h("input", { type: "checkbox", role: "switch", id, checked });
  return { input, el: h("label", { class: "switch" }, input, h("span", { class: "slider-knob" }), h("span", {}, label)) };
}

// tabs renders a tab bar; extra is placed on its far right.
export function tabs(items, active, onSelect, extra) {
  return h("div", { class: "tabs", role: "tablist" },
    items.map((t) => h("button", {
      type: "button", role: "tab", class: t.key === active ? "tab active" : "tab", "aria-selected": t.key === active ? "true" : "false",
      id: `tab-${t.key}`, onclick: () => onSelect(t.key),
    }, t.label)),
    h("span", { class: "spacer" }),
    extra || null);
}

// menu is a "..." button that opens a small list of actions.
export function moreMenu(id, items) {
  const list = h("div", { class: "menu-list", hidden: true, role: "menu" },
    items.map((it) => h("button", { type: "button", role: "menuitem", id: it.id, onclick: () => { list.hidden = true; it.action(); } }, it.label)));
  const btn = iconButton("⋯", "More", (e) => {
    e.stopPropagation();
    list.hidden = !list.hidden;
    if (!list.hidden) document.addEventListener("click", () => { list.hidden = true; }, { once: true });
  }, { id, class: "more" });
  return h("span", { class: "menu" }, btn, list);
}

// showError writes an API error into a message area.
export function errorText(err) {
  if (!err) return "";
  const fields = err.problem && err.problem.errors ? err.problem.errors.map((e) => `${e.field}: ${e.reason}`) : [];
  return [err.message, ...fields].filter(Boolean).join("; ");
}

// follow keeps a page's data fresh while the page is on screen: load runs
// every `every` ms, and every `soon` ms while busy() says something on the
// page is moving (a session starting, an image being pulled) or for
// `soonFor` ms after the returned hurry() — called after the user acted,
// whose result the agents bring a moment later. A page that does nothing
// costs one request per `every`; one the user watches follows within a
// second.
export function follow(main, load, { every = 10000, soon = 1000, soonFor = 15000, busy = () => false } = {}) {
  let until = 0;
  let timer = null;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(tick, busy() || Date.now() < until ? soon : every);
  };
  const tick = async () => {
    if (!main.isConnected) return;
    await load();
    schedule();
  };
  schedule();
  return () => {
    until = Date.now() + soonFor;
    schedule();
  };
}
