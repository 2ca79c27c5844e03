// The file browser of one folder (#/data?folder=ID&path=DIR) through the
// files API: list a directory, upload files with a progress bar, download,
// delete, and make a directory. What the caller may do follows their
// permission on the folder (ro: list and download only); the API decides
// anyway.
import * as api from "../api.js";
import { h, clear, button, icon, iconButton, notice, table, toast, errorText, field, openDialog, confirmDialog } from "../ui.js";
import { bytes, time, permLabel, permTitle } from "../format.js";

// filePath is the URL of a file: each part of its path escaped.
function filePath(folder, p) {
  return `/v1/folders/${encodeURIComponent(folder)}/files/${p.split("/").map(encodeURIComponent).join("/")}`;
}

function join(dir, name) {
  return dir && dir !== "." ? `${dir}/${name}` : name;
}

export async function render(main, ctx) {
  const id = ctx.params.get("folder");
  const dir = (ctx.params.get("path") || "").replace(/^\/+|\/+$/g, "");
  const open = (p) => ctx.navigate(new URLSearchParams(p ? { folder: id, path: p } : { folder: id }));
  const back = h("a", { href: "#/data", id: "back-to-folders" }, "← Folders");
  let f;
  try {
    f = await api.get(`/v1/folders/${encodeURIComponent(id)}`);
  } catch (e) {
    main.append(back, notice("error", `Cannot open folder ${id}: ${errorText(e)}`));
    return;
  }
  const writable = f.permission === "rw" || f.permission === "wd";
  const msg = h("div", { id: "files-message" });
  const holder = h("div", { id: "files-table" });
  const uploads = h("div", { id: "uploads" });
  const picker = h("input", { type: "file", id: "upload-input", multiple: true, hidden: true });
  // The path as links: the folder, then each directory down to this one.
  const crumbs = [h("a", { href: `#/data?folder=${encodeURIComponent(id)}`, class: "crumb", "data-path": "" }, f.name)];
  let acc = "";
  for (const part of dir ? dir.split("/") : []) {
    acc = join(acc, part);
    crumbs.push(" / ", h("a", { href: `#/data?folder=${encodeURIComponent(id)}&path=${encodeURIComponent(acc)}`, class: "crumb", "data-path": acc }, part));
  }
  const load = async () => {
    let items;
    try {
      items = (await api.get(`/v1/folders/${encodeURIComponent(id)}/files${dir ? `?path=${encodeURIComponent(dir)}` : ""}`)).items || [];
    } catch (e) {
      clear(holder, notice("error", `Cannot list ${dir || "the folder"}: ${errorText(e)}`));
      return;
    }
    items.sort((a, b) => (a.type === "dir") === (b.type === "dir") ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1);
    clear(holder, table([
      { title: "Name", cell: (e) => (e.type === "dir"
        ? h("a", { href: "#", class: "dir-link", "data-path": e.path, onclick: (ev) => { ev.preventDefault(); open(e.path); } }, `${e.name}/`)
        : h("span", { class: "wrap" }, e.name)) },
      { title: "Type", cell: (e) => e.type },
      { title: "Size", cell: (e) => (e.type === "file" ? bytes(e.size) : "") },
      { title: "Modified", cell: (e) => time(e.modified_at) },
      { title: "Controls", class: "controls", cell: (e) => h("span", { class: "controls" },
        e.type === "file" ? h("a", { class: "icon-link", href: filePath(id, e.path), download: e.name, title: `Download ${e.name}`,
          "aria-label": `Download ${e.name}`, "data-action": "download", "data-file": e.path }, icon("download")) : null,
        writable ? iconButton("trash", `Delete ${e.name}`, async () => {
          const what = e.type === "dir" ? `the directory ${e.path} and everything in it` : e.path;
          if (!(await confirmDialog("Delete", `Delete ${what}?`))) return;
          try {
            await api.del(filePath(id, e.path));
            toast(`Deleted ${e.path}`);
            await load();
          } catch (err) {
            clear(msg, notice("error", `Cannot delete ${e.path}: ${errorText(err)}`));
          }
        }, { class: "danger", "data-action": "delete-file", "data-file": e.path }) : null) },
    ], items, { id: "files-list", empty: "This directory is empty." }));
  };

  const uploadAll = async () => {
    const chosen = [...picker.files];
    picker.value = "";
    for (const file of chosen) {
      const p = join(dir, file.name);
      const fill = h("div", { class: "fill", style: { width: "0%" } });
      const pct = h("span", { class: "upload-pct" }, "0%");
      const row = h("div", { class: "upload", "data-file": p }, h("span", { class: "upload-name" }, file.name, ` (${bytes(file.size)})`),
        h("div", { class: "bar" }, fill), pct);
      uploads.append(row);
      try {
        await api.upload(filePath(id, p), file, (x) => { fill.style.width = `${Math.round(x * 100)}%`; pct.textContent = `${Math.round(x * 100)}%`; });
        row.classList.add("done");
        pct.textContent = "done";
      } catch (e) {
        row.classList.add("failed");
        pct.textContent = "failed";
        row.append(h("div", { class: "field-error" }, errorText(e)));
      }
    }
    await load();
  };
  picker.addEventListener("change", uploadAll);

  const mkdir = button("NEW DIRECTORY", async () => {
    if (await mkdirDialog(id, dir)) await load();
  }, { id: "new-directory", class: "secondary", disabled: !writable });
  const up = button("UPLOAD", () => picker.click(), { id: "upload-files", disabled: !writable });
  main.append(
    h("div", { class: "toolbar" }, back),
    h("div", { class: "toolbar" }, h("h2", { class: "crumbs", id: "folder-path" }, crumbs),
      h("span", { class: "perm", title: permTitle[f.permission] || "" }, permLabel[f.permission] || f.permission),
      h("span", { class: "spacer" }), picker, mkdir, up));
  if (!writable) main.append(notice("info", "This folder is read-only for you: you may list and download its files."));
  main.append(msg, uploads, holder);
  await load();
}

function mkdirDialog(id, dir) {
  const name = field("Directory name", h("input", { type: "text", id: "directory-name", autocomplete: "off" }),
    `Made in /${dir}; a/b makes both.`);
  const msg = h("div", { class: "dialog-message" });
  return openDialog({ title: "New directory", id: "mkdir-dialog" }, (close) => {
    const go = async () => {
      name.setError();
      clear(msg);
      const v = name.input.value.trim().replace(/^\/+|\/+$/g, "");
      if (!v) { name.setError("Name the directory."); return; }
      try {
        close(await api.post(`/v1/folders/${encodeURIComponent(id)}/directories`, { path: join(dir, v) }));
      } catch (e) {
        const fe = e.fieldErrors ? e.fieldErrors() : {};
        if (fe.path) name.setError(fe.path);
        else name.setError(errorText(e));
      }
    };
    name.input.addEventListener("keydown", (e) => { if (e.key === "Enter") go(); });
    return { body: [msg, name], actions: [button("CANCEL", () => close(), { class: "secondary" }), button("CREATE", go, { id: "mkdir-submit" })] };
  });
}
